"""`musegen live` as a DAW sees it, on a real JACK server: jack_midi_clock is the DAW's clock,
jack_midi_dump records what comes out with frame times, a python-rtmidi client plays the
player's part, fluidsynth turns the output into audio that jack_capture records.

The engine runs as its own process (`python -m bridges live ...`), exactly as a user starts
it; everything it is asserted on is what crossed JACK.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path

import mido
import numpy as np
import pytest

from bench.rig.jack_tools import (
    DumpRecord,
    JackServer,
    JackTransport,
    MidiDump,
    stop_process,
)
from tests.jack_rig import JackTool, connect, lsp, wait_port, wait_until
from tests.scheduling import allowed_fifo, fifo_threads

# `make test` runs these in its JACK pass; `make test-live-jack` runs only these
pytestmark = pytest.mark.jack

RATE = 48000
TICK, START, STOP = 0xF8, 0xFA, 0xFC
ROOT = Path(__file__).resolve().parent.parent
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


class Live:
    """A `musegen live` process on the test's JACK server, with its port names."""

    def __init__(self, jack: JackServer, *args: str, wait: bool = True) -> None:
        before = set(_ports(jack))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridges", "live", "--backend", "jack", "--no-web", *args],
            env={**jack.env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.output = wait_port(jack.env, "musegen out", timeout=60, exclude=sorted(before))
        self.input = wait_port(jack.env, "musegen in", timeout=10, exclude=sorted(before))
        self.jack = jack
        self.lines: list[str] = []
        self.playing = threading.Event()
        # Read everything it prints, always: a full pipe would block a JACK thread of it that
        # logs, and a synchronous JACK server then waits for that client forever.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            assert self.playing.wait(60), "".join(self.lines)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("musegen: playing"):  # generating, ports open
                self.playing.set()

    def stop(self) -> None:
        stop_process(self.proc)


def _ports(jack: JackServer) -> list[str]:
    return lsp(jack.env)


@pytest.fixture
def live_procs() -> Iterator[list[Live]]:
    started: list[Live] = []
    yield started
    for live in started:
        live.stop()


def grid(records: Sequence[DumpRecord]) -> tuple[float, float]:
    """(frame of tick 0, frames per tick) fitted to the clock ticks after the last start."""
    start = max(i for i, r in enumerate(records) if r.status == START)
    frames = np.array([r.frame for r in records[start:] if r.status == TICK], dtype=float)
    slope, intercept = np.polyfit(np.arange(len(frames)), frames, 1)
    return float(intercept), float(slope)


def note_ons(records: Sequence[DumpRecord], channel: int | None = None) -> list[DumpRecord]:
    return [r for r in records if len(r.data) == 3 and r.status & 0xF0 == 0x90 and r.data[2] > 0
            and (channel is None or r.status & 0x0F == channel)]


def beat_of(record: DumpRecord, fit: tuple[float, float]) -> float:
    return (record.frame - fit[0]) / fit[1] / 24.0


def hanging(records: Sequence[DumpRecord]) -> dict[tuple[int, int], int]:
    """Keys whose note_ons outnumber their note_offs at the end."""
    count: dict[tuple[int, int], int] = {}
    for r in records:
        if len(r.data) != 3 or r.status & 0xF0 not in (0x80, 0x90):
            continue
        key = (r.status & 0x0F, r.data[1])
        on = r.status & 0xF0 == 0x90 and r.data[2] > 0
        count[key] = count.get(key, 0) + (1 if on else -1)
    return {k: v for k, v in count.items() if v > 0}


def play_busy_drums_on_the_daw_clock(
        jack: JackServer, jack_tool: JackTool, live_procs: list[Live],
        take: Path, sync: str = "line") -> tuple[Live, MidiDump, JackTransport]:
    """`musegen live` on jack_midi_clock at 120 BPM, busy drums on the 16th grid, recording
    to `take`; a dump of the clock and the engine's output; the transport rolling."""
    live = Live(jack, "--clock", "midi", "--humanize", "0", "--density", "24",
                "--record", str(take), "--sync", sync)
    live_procs.append(live)
    clock = jack_tool.clock(120)
    connect(jack.env, clock.port, live.input)
    dump = jack_tool.dump()
    dump.connect(clock.port, live.output)
    transport = jack_tool.transport()
    transport.play()
    return live, dump, transport


@pytest.mark.parametrize("sync", ["line", "tick", "auto"])
def test_follows_the_daw_clock_on_the_16th_grid_and_records_the_take(
        jack: JackServer, jack_tool: JackTool, live_procs: list[Live], tmp_path: Path,
        sync: str) -> None:
    """On the follower's line, sending as each tick arrives (`--sync tick`), and choosing
    between them (`--sync auto`, the default); each way on JACK's frame clock, as the ports
    are on JACK."""
    take = tmp_path / "take.mid"
    live, dump, transport = play_busy_drums_on_the_daw_clock(jack, jack_tool, live_procs, take,
                                                             sync)
    assert any("timing on JACK's frame clock" in line for line in live.lines), live.lines
    # 'musegen in' is read by one thread under real-time scheduling, where that is allowed
    assert fifo_threads(live.proc.pid) == (1 if allowed_fifo() else 0)
    time.sleep(4.6)  # a little over two bars at 120 BPM
    transport.stop()
    time.sleep(0.6)
    records = dump.records()
    fit = grid(records)
    assert 60 * RATE / (fit[1] * 24) == pytest.approx(120.0, rel=0.01)
    ons = note_ons(records, channel=9)
    assert len(ons) >= 8, "the drums did not play"
    errors_ms = []
    for r in ons:
        sixteenths = beat_of(r, fit) * 4
        errors_ms.append(abs(sixteenths - round(sixteenths)) * 125.0)  # a 16th is 125 ms
    assert statistics.median(errors_ms) < 2.0 and max(errors_ms) < 6.0, errors_ms
    bars = {int(beat_of(r, fit) // 4) for r in ons}
    assert {0, 1} <= bars
    hits = [(round(beat_of(r, fit) * 4), r.data[1]) for r in ons]  # (16th step, drum)
    assert len(hits) == len(set(hits)), "a doubled step"
    assert hanging(records) == {}, "a note was left hanging after stop"
    live.stop()  # Ctrl-C: ports closed, the recording finished
    # (kill -9 is tested without JACK in test_session: a killed JACK client stalls a
    # synchronous server for seconds until it is timed out, which would test JACK, not us)
    midi = mido.MidiFile(take)
    recorded = [m for m in midi.tracks[1] if m.type == "note_on" and m.velocity > 0]
    assert len(recorded) >= len(ons)  # everything played is in the recording


def test_cc_knob_and_call_and_response_through_musegen_in(
        jack: JackServer, jack_tool: JackTool, live_procs: list[Live]) -> None:
    import rtmidi

    live = Live(jack, "--clock", "midi", "--humanize", "0", "--model", "drums-lstm",
                "--model", "melody-lstm", "--respond", "melody", "--density", "2",
                "--config", "/nonexistent/live.json")
    live_procs.append(live)
    clock = jack_tool.clock(120)
    player = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="player")
    player.open_virtual_port("keys")
    try:
        player_port = wait_port(jack.env, "player:keys")
        connect(jack.env, clock.port, live.input)
        connect(jack.env, player_port, live.input)
        dump = jack_tool.dump()
        dump.connect(clock.port, live.output, player_port)
        transport = jack_tool.transport()
        transport.play()
        time.sleep(2.0 + 0.25)  # bar 1, beat 0.5 (the clock starts within a period or two)
        player.send_message([0xB0, 20, 127])  # the default map: CC 20 is drums density
        for pitch in (60, 64, 67, 72):  # a phrase in bar 1, on channel 2 (ours play on 1)
            player.send_message([0x91, pitch, 100])
            time.sleep(0.2)
            player.send_message([0x81, pitch, 0])
            time.sleep(0.05)
        time.sleep(6.0 - 3.25)  # to the end of bar 2
        transport.stop()
        time.sleep(0.5)
    finally:
        player.close_port()
        player.delete()  # now: `del` leaves the JACK client open until a GC that may never
        # come, and a client that dies open stalls a synchronous server for about 5 s
    records = dump.records()
    fit = grid(records)
    phrase = {int(beat_of(r, fit) // 4) for r in note_ons(records, channel=1)}
    # on the 16th grid (humanize 0): a note that lands on the frame of beat 8 can compute as
    # 7.999999999999997
    answer = [round(beat_of(r, fit) * 4) / 4 for r in note_ons(records, channel=0)]
    assert phrase == {1}
    assert answer, "no answer"
    assert all(8.0 <= b < 12.0 for b in answer), answer  # the bar after the phrase, only
    drums = [beat_of(r, fit) for r in note_ons(records, channel=9)]
    before = sum(1 for b in drums if 0.0 <= b < 4.0)
    after = sum(1 for b in drums if 8.0 <= b < 12.0)
    assert after > before + 4, (before, after)  # CC 20 at 127: the busiest bar


def test_fluidsynth_fed_by_the_engine_renders_sound(
        jack: JackServer, jack_tool: JackTool, live_procs: list[Live], tmp_path: Path) -> None:
    if not SOUNDFONT.exists():
        pytest.skip(f"{SOUNDFONT} missing (apt install fluid-soundfont-gm)")
    # its own shell on stdin: `quit` closes its JACK client; a signal leaves it registered
    # and the synchronous server then stalls for seconds waiting on the dead client
    synth = subprocess.Popen(
        ["fluidsynth", "-a", "jack", "-m", "jack", "-r", str(RATE), "-g", "1.0",
         "-o", "midi.jack.id=fluidsynth", str(SOUNDFONT)],
        env=jack.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True, text=True)
    try:
        synth_midi = wait_port(jack.env, "fluidsynth:midi", timeout=20)
        left = wait_port(jack.env, "fluidsynth:left", timeout=20)
        live = Live(jack, "--bpm", "120", "--density", "24")
        live_procs.append(live)
        connect(jack.env, live.output, synth_midi)
        wav = tmp_path / "take.wav"
        capture = subprocess.run(
            ["jack_capture", "--daemon", "--bitdepth", "16", "--channels", "1", "--port", left,
             "-d", "3", str(wav)], env=jack.env, timeout=30, capture_output=True)
        assert capture.returncode == 0, capture.stderr
    finally:
        quit_fluidsynth(synth)
    with wave.open(str(wav)) as w:
        frames = w.readframes(w.getnframes())
        width = w.getsampwidth()
    dtype, full_scale = {2: (np.int16, 32767.0), 4: (np.int32, 2147483647.0)}[width]
    audio = np.frombuffer(frames, dtype=dtype).astype(float) / full_scale
    assert len(audio) >= RATE * 2
    assert float(np.sqrt(np.mean(audio**2))) > 1e-3, "silence"


def quit_fluidsynth(synth: subprocess.Popen[str]) -> None:
    try:
        assert synth.stdin is not None
        synth.stdin.write("quit\n")
        synth.stdin.close()
        synth.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        pass
    stop_process(synth)


def test_midi_learn_saves_the_knobs_moved_and_ports_lists_ours(
        jack: JackServer, live_procs: list[Live], tmp_path: Path) -> None:
    import json

    import rtmidi

    config = tmp_path / "live.json"
    live = Live(jack, "--learn", "--config", str(config), "--no-record", wait=False)
    live_procs.append(live)
    listed = subprocess.run([sys.executable, "-m", "bridges", "ports", "--backend", "jack",
                             "--json"], env={**jack.env, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60)
    ports = json.loads(listed.stdout)
    assert any("musegen out" in name for name in ports["inputs"])  # we can read from it
    assert any("musegen in" in name for name in ports["outputs"])
    knobs = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="knobs")
    knobs.open_virtual_port("out")
    try:
        connect(jack.env, wait_port(jack.env, "knobs:out"), live.input)
        for i, cc in enumerate((70, 71, 72, 73)):  # density, genre, temperature, swing
            _wait_for(live, "move the knob", i + 1)
            knobs.send_message([0xB2, cc, 64])  # channel 3
            _wait_for(live, "musegen learn: CC", i + 1)
        assert live.playing.wait(30), "".join(live.lines)
    finally:
        knobs.close_port()
        knobs.delete()
    saved = json.loads(config.read_text())["cc_map"]
    learned = {(b["cc"], b["channel"]): b["control"] for b in saved if b["part"] == "drums"}
    assert {(70, 2): "density", (71, 2): "genre", (72, 2): "temperature",
            (73, 2): "swing"}.items() <= learned.items()


def _wait_for(live: Live, text: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(text in line for line in live.lines) < count:
        assert time.monotonic() < deadline, "".join(live.lines)
        time.sleep(0.02)


def test_kill_9_on_jack_leaves_a_recording_of_every_finished_bar(
        jack: JackServer, jack_tool: JackTool, live_procs: list[Live], tmp_path: Path) -> None:
    """The engine dies hard mid-bar: the take holds every note of the bars already played.
    Its JACK clients die unclosed, so the server stalls until it drops them; the test waits
    for that, so the next test starts on a healthy server."""
    take = tmp_path / "crash.mid"
    live, dump, transport = play_busy_drums_on_the_daw_clock(jack, jack_tool, live_procs, take)
    time.sleep(5.0)  # bars 0 and 1 done (2 s each at 120 BPM), bar 2 half played
    live.proc.kill()
    live.proc.wait(10)
    records = dump.records()
    transport.stop()
    fit = grid(records)
    finished = [r for r in note_ons(records, channel=9) if beat_of(r, fit) < 8.0]
    assert len(finished) >= 8
    midi = mido.MidiFile(take)  # parses: never half written
    recorded = [m for m in midi.tracks[1] if m.type == "note_on" and m.velocity > 0]
    assert len(recorded) >= len(finished), (len(recorded), len(finished))
    gone = wait_until(lambda: not any(live.output == p or live.input == p
                                      for p in lsp(jack.env)), 60.0)
    assert gone, "the server never dropped the killed engine's clients"
