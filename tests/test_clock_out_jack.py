"""`musegen live --clock-out` as a MIDI clock master on a real JACK server: jack_midi_dump
records Start, steady ticks at the tempo and Stop on 'musegen out', and a second
`musegen live --clock midi`, fed that port, plays on the first one's grid."""

from __future__ import annotations

import socket
import statistics
import time

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from bench.rig.jack_tools import JackServer
from tests.jack_rig import JackTool, connect
from tests.test_live_jack import (
    RATE,
    START,
    STOP,
    TICK,
    Live,
    beat_of,
    grid,
    live_procs,  # noqa: F401  (a fixture, found by name)
    note_ons,
)

pytestmark = pytest.mark.jack

PERIOD = 64  # frames: the rig's jackd -p 64


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_second_musegen_follows_the_first_ones_clock_out(
        jack: JackServer, jack_tool: JackTool, live_procs: list[Live]) -> None:  # noqa: F811
    osc = free_udp_port()
    leader = Live(jack, "--clock-out", "--bpm", "120", "--no-record", "--humanize", "0",
                  "--density", "24", "--osc", str(osc))
    live_procs.append(leader)
    assert any("MIDI clock out on" in line for line in leader.lines), leader.lines
    # the follower plays a melody (channel 1), so its notes and the leader's drums (channel
    # 10) can share one dump, on one frame count
    follower = Live(jack, "--clock", "midi", "--model", "melody-lstm", "--no-record",
                    "--humanize", "0")
    live_procs.append(follower)
    connect(jack.env, leader.output, follower.input)
    dump = jack_tool.dump()
    dump.connect(leader.output, follower.output)
    remote = SimpleUDPClient("127.0.0.1", osc)
    for address in ("/musegen/stop", "/musegen/rewind", "/musegen/play"):  # a Start, heard
        remote.send_message(address, [])
        time.sleep(0.1)
    time.sleep(4.6)  # a little over two bars at 120 BPM
    remote.send_message("/musegen/stop", [])
    time.sleep(0.6)
    records = dump.records()

    start = max(i for i, r in enumerate(records) if r.status == START)
    after = records[start:]
    assert any(r.status == STOP for r in after), "no Stop after the run"
    stop = next(i for i, r in enumerate(after) if r.status == STOP)
    ticks = np.array([r.frame for r in after[:stop] if r.status == TICK], dtype=float)
    assert len(ticks) >= 24 * 8  # two bars of ticks
    fit = grid(records[: start + stop])
    assert 60 * RATE / (fit[1] * 24) == pytest.approx(120.0, rel=0.01)
    # python-rtmidi has no timestamped send: a tick sent at its time reaches the port at the
    # next period (0..1 period late), plus the sending thread's wake-up; two periods bound both
    residuals = ticks - (fit[0] + fit[1] * np.arange(len(ticks)))
    print(f"\nticks: {len(ticks)}, off the line: median {np.median(np.abs(residuals)):.1f}, "
          f"max {np.max(np.abs(residuals)):.1f} frames")
    assert np.max(np.abs(residuals)) <= 2 * PERIOD

    ons = [r for r in note_ons(after[:stop], channel=0)]
    assert len(ons) >= 4, "the follower did not play"
    errors_ms = []
    for r in ons:
        sixteenths = beat_of(r, fit) * 4
        errors_ms.append(abs(sixteenths - round(sixteenths)) * 125.0)  # a 16th is 125 ms
    print(f"follower's notes off the leader's 16ths: median {statistics.median(errors_ms):.2f}"
          f" ms, max {max(errors_ms):.2f} ms")
    assert statistics.median(errors_ms) < 2.0 and max(errors_ms) < 6.0, errors_ms
