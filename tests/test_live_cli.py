"""`musegen live` without any MIDI system: it still plays (internal clock, recording) and says
so in one line; impossible requests are one clear error line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mido
import pytest

ROOT = Path(__file__).resolve().parent.parent


def musegen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridges", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_backend_none_plays_on_the_internal_clock_and_records(tmp_path: Path) -> None:
    take = tmp_path / "take.mid"
    done = musegen("live", "--backend", "none", "--no-web", "--bpm", "240", "--seconds", "3",
                   "--record", str(take))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "musegen: no MIDI (--backend none): internal clock only"
    assert lines[1].startswith("musegen: playing drums=drums-lstm")
    assert lines[-1] == f"musegen: session recorded in {take}"
    ons = [m for m in mido.MidiFile(take).tracks[1] if m.type == "note_on" and m.velocity]
    assert len(ons) >= 8  # a few bars at 240 BPM


def test_impossible_requests_are_one_line_errors(tmp_path: Path) -> None:
    cases = [
        (["--clock", "midi", "--backend", "none"], "--clock midi needs MIDI"),
        (["--model", "no-such-model"], "no model 'no-such-model'"),
        (["--model", "drums-lstm", "--model", "drums-wavenet"], "one model per part"),
        (["--bpm", "0"], "tempo 0.0 BPM outside"),
        (["--respond", "melody"], "no part 'melody'"),
    ]
    for args, message in cases:
        done = musegen("live", "--backend", "none", "--no-web", "--no-record", "--seconds",
                       "0", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_open_live_is_the_front_door_a_bench_can_hook_into(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`open_live` opens what `musegen live` would, up to the engine's start; a caller adds
    outputs and its own timebase (left open for it), and `start` plays an internal clock."""
    import argparse
    import time as wall

    from bridges.cli import add_live
    from bridges.live import LiveHooks, open_live
    from bridges.midi.timebase import Timebase
    from musegen.engine import NOTE_ON, ScheduledEvent

    parser = argparse.ArgumentParser()
    add_live(parser.add_subparsers())
    args = parser.parse_args(["live", "--backend", "none", "--no-web", "--no-record",
                              "--bpm", "240"])

    class Log:
        def __init__(self) -> None:
            self.ons: list[ScheduledEvent] = []

        def send(self, events: list[ScheduledEvent], at: float) -> None:
            self.ons.extend(e for e in events if e.kind == NOTE_ON)

    closed: list[bool] = []

    class OwnTimebase(Timebase):
        def close(self) -> None:
            closed.append(True)

    log = Log()
    said: list[str] = []
    running = open_live(args, LiveHooks(timebase=OwnTimebase(), outputs=[log],
                                        say=said.append))
    # what opened is reported to the hook, not printed: a bench's stdout stays its own
    assert said == ["musegen: no MIDI (--backend none): internal clock only"]
    assert capsys.readouterr().out == ""
    try:
        assert running.midi is None and running.session.clock.kind == "internal"
        assert not running.session.clock.playing
        running.start()
        assert running.session.clock.playing  # our own clock: started with the engine
        deadline = wall.monotonic() + 10.0
        while not log.ons and wall.monotonic() < deadline:
            wall.sleep(0.05)
        assert log.ons
    finally:
        running.close()
    assert not closed  # the caller's timebase is the caller's to close
