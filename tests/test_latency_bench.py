"""The latency benchmark: its analysis on known numbers, and one short run on a real JACK rig."""

from __future__ import annotations

import math
import random
import threading
import time

import pytest

from bench.live.bench_analysis import (
    Note,
    error_stats,
    fit_grid,
    fitted_errors,
    fitted_ticks,
    hanging_notes,
    match_notes,
    note_ons,
    own_tick_errors,
    run_ticks,
    stop_release,
    tick_noise,
    walk_oracle_errors,
)
from bench.live.clock_masters import WhiteMaster
from bench.live.latency_bench import jitter_pct_for, run_latency_bench
from bench.live.thread_cpu import CpuWindow
from bench.rig.jack_tools import DumpRecord, JackServer
from bridges.midi.jack_time import JackFrameClock
from bridges.midi.pump import RT_PRIORITY
from tests.jack_rig import JackTool
from tests.scheduling import allowed_fifo

# runs in `make test`'s JACK pass (see Makefile: the rig is retried once)
pytestmark = pytest.mark.jack

RATE = 48000


def test_grid_fit_averages_tick_jitter_away() -> None:
    jitter = [0.001 * (-1) ** k for k in range(240)]  # +-1 ms, alternating
    ticks = [2.0 + k * 0.02 + jitter[k] for k in range(240)]
    grid = fit_grid(ticks)
    assert grid.t0 == pytest.approx(2.0, abs=1e-4)
    assert grid.bpm == pytest.approx(125.0, rel=1e-4)
    assert grid.jitter_ms == pytest.approx(1.0, rel=0.01)
    assert grid.time_of(1.0) == pytest.approx(2.0 + 24 * 0.02, abs=1e-4)


def test_run_ticks_notes_and_hanging_from_dump_records() -> None:
    records = [DumpRecord(0, (0xF8,)),  # before Start: not part of the run
               DumpRecord(100, (0xFA,)), DumpRecord(164, (0xF8,)), DumpRecord(1164, (0xF8,)),
               DumpRecord(1200, (0x99, 36, 100)), DumpRecord(1300, (0x99, 38, 90)),
               DumpRecord(1400, (0x89, 36, 0)), DumpRecord(1500, (0x99, 38, 0)),
               DumpRecord(1600, (0x90, 60, 80)),  # channel 1: never ended
               DumpRecord(2164, (0xFC,)), DumpRecord(3164, (0xF8,))]
    assert run_ticks(records, RATE) == [164 / RATE, 1164 / RATE]
    assert note_ons(records, RATE, [9]) == [Note(1200 / RATE, 9, 36), Note(1300 / RATE, 9, 38)]
    assert hanging_notes(records, [9]) == 0
    assert hanging_notes(records, [0, 9]) == 1


def test_stop_release_times_the_notes_sounding_at_stop() -> None:
    records = [DumpRecord(100, (0xFA,)),
               DumpRecord(200, (0x99, 36, 100)), DumpRecord(300, (0x89, 36, 0)),  # over
               DumpRecord(400, (0x90, 60, 80)), DumpRecord(500, (0x99, 42, 70)),  # sounding
               DumpRecord(4800, (0xFC,)),
               DumpRecord(4848, (0x89, 42, 0)), DumpRecord(4992, (0x80, 60, 0)),
               DumpRecord(9000, (0x99, 36, 100))]  # a later run: not this Stop's business
    release = stop_release(records, 48000, [0, 9])
    assert release.sounding == 2 and release.released
    assert release.all_off_ms == 4.0  # 192 frames at 48 kHz after the Stop
    only_drums = stop_release(records, 48000, [9])
    assert only_drums.sounding == 1 and only_drums.all_off_ms == 1.0
    held = stop_release(records[:-3], 48000, [0, 9])
    assert held.sounding == 2 and not held.released
    with pytest.raises(ValueError, match="no Stop"):
        stop_release(records[:5], 48000, [9])


def test_matching_counts_dropped_doubled_and_errors() -> None:
    grid = fit_grid([k * 0.02 for k in range(100)])  # 125 BPM, beat b at 0.48 b s
    sent = [Note(0.0, 9, 36), Note(0.25, 9, 38), Note(0.5, 9, 36), Note(0.75, 9, 42)]
    received = [Note(0.001, 9, 36), Note(0.12 - 0.002, 9, 38), Note(0.12 + 0.003, 9, 38),
                Note(0.24, 9, 36), Note(0.5, 9, 49)]
    matched = match_notes(sent, received, grid)
    assert matched.dropped == 1  # the 42 never came
    assert matched.doubled == 1  # the 38 came twice
    assert matched.unmatched == 1  # a 49 nobody sent
    assert [round(e * 1000, 6) for e in matched.errors_s] == [1.0, -2.0, 0.0]
    assert [round(e * 1000, 6) for e in matched.after_start()] == [-2.0, 0.0]  # no beat 0
    stats = error_stats(matched.errors_s)
    assert stats["notes"] == 3 and stats["max_ms"] == 2.0 and stats["p50_ms"] == 1.0
    assert stats["mean_ms"] == pytest.approx(-1 / 3, abs=1e-3)
    assert math.isnan(error_stats([])["p50_ms"])


def test_jitter_ms_maps_to_jack_midi_clock_percent() -> None:
    assert jitter_pct_for(120.0, 0.0) == 0.0
    assert jitter_pct_for(120.0, 1.0) == pytest.approx(9.6)  # 1 ms of a 20.83 ms period
    assert jitter_pct_for(60.0, 50.0) == 20.0  # -J stops at 20 %


def test_short_run_on_a_real_jack_rig(jack: JackServer) -> None:
    """Five seconds at 120 BPM: the report is complete and the engine kept up."""
    report = run_latency_bench(120.0, 0.0, 5.0, server=jack)
    clock, engine, reference = report["clock"], report["engine"], report["reference"]
    assert clock["bpm_fitted"] == pytest.approx(120.0, rel=0.001)
    assert clock["ticks"] >= 4 * 24 * 2  # at least two bars of ticks
    assert engine["notes"] >= 10 and engine["sent"] == engine["notes"] + engine["dropped"]
    assert engine["hanging_notes"] == 0 and reference["hanging_notes"] == 0
    assert engine["stop"]["released"] and 0.0 <= engine["stop"]["all_off_ms"] < 50.0
    assert reference["notes"] >= reference["expected"] - 1
    for side in (engine, reference):  # tolerant: a 16th is 125 ms, a JACK period 1.3 ms
        assert 0.0 <= side["p50_ms"] <= side["p99_ms"] <= side["max_ms"] < 62.5
        # a steady master's ticks sit on its line to the frame: both readings of the grid agree
        assert side["own_tick"]["notes"] == side["notes"]
        assert side["own_tick"]["max_ms"] == pytest.approx(side["max_ms"], abs=0.05)
    assert 0.0 < engine["cpu_pct"] <= engine["process_cpu_pct"] < 400.0
    # the input pump ran under real-time scheduling where allowed, as musegen live's does,
    # and timed its reads of the ticks
    pump = engine["input_pump"]
    assert report["rt_priority"] == RT_PRIORITY and pump["realtime"] == allowed_fifo()
    assert pump["max_tick_read_lag_ms"] > 0.0 and pump["late_tick_reads"] < clock["ticks"]
    # which loop costs what: each engine thread used some CPU, and the listed threads
    # cannot add up to more than the whole process
    threads = engine["threads_cpu_pct"]
    for name in ("musegen-midi-pump", "musegen-generation", "musegen-dispatch"):
        assert threads[name] > 0.0, threads
    assert sum(threads.values()) <= engine["process_cpu_pct"] + 0.5, threads
    # on JACK's frame clock a steady master is steady: on the system clock the rig's late
    # cycles read as tempo steps, about 50 a minute
    assert report["timebase"] == "jack" and engine["tempo_changes"] <= 2
    # by default the engine sends one period early on JACK time (the output lands at the
    # start of the period after the send)
    assert report["latency_ms"] == pytest.approx(1000.0 * jack.period / jack.rate, abs=1e-3)
    # sync auto (the default): on the ticks for the first beats, then on the line, which a
    # steady clock keeps to
    assert report["sync"] == "auto" and engine["steady_phase"]
    assert engine["tick_synced"] > 0


def test_auto_sync_follows_each_tick_of_a_wandering_jack_midi_clock(jack: JackServer) -> None:
    """jack_midi_clock -J 10 makes the phase wander: the follower never calls it steady,
    so its notes go out as their ticks arrive and land after them, by most of a period on
    average; on the line they land either side of their ticks (a mean near 0)."""
    report = run_latency_bench(120.0, seconds=6.0, jitter_pct=10.0, server=jack)
    engine = report["engine"]
    assert report["jitter_pct"] == 10.0 and not engine["steady_phase"]
    assert engine["notes"] >= 10 and engine["dropped"] == 0 and engine["hanging_notes"] == 0
    assert engine["tick_synced"] >= engine["notes"] // 2  # a batch holds one or two notes
    own = engine["own_tick"]
    assert own["notes"] == engine["notes"] and own["mean_ms"] > 0.3, own


def test_a_short_run_on_the_white_jitter_master(jack: JackServer) -> None:
    """The bench on the white master: its report says so, and the engine, which averages
    the jitter away, is not further off the fitted grid than the reference that waits for
    each jittered tick (tolerant: five seconds of notes)."""
    report = run_latency_bench(120.0, 2.0, 5.0, server=jack, master="white")
    assert report["master"] == "white" and report["jitter_pct"] == 0.0
    assert report["jitter_ms"] == 2.0
    engine, reference = report["engine"], report["reference"]
    assert engine["notes"] >= 10 and engine["dropped"] == 0 and engine["hanging_notes"] == 0
    assert reference["notes"] >= reference["expected"] - 1
    assert report["clock"]["bpm_fitted"] == pytest.approx(120.0, rel=0.003)
    assert engine["p50_ms"] <= reference["p50_ms"] + 0.7
    # the reference answers each tick one period after it, whatever its jitter
    assert reference["own_tick"]["max_ms"] <= 1000.0 * 2 * jack.period / jack.rate


def test_the_white_clock_master_jitters_each_tick_around_a_line_that_does_not_move(
        jack: JackServer, jack_tool: JackTool) -> None:
    """Four seconds at 174 BPM, +-2 ms, recorded by jack_midi_dump: a steady tempo, every
    tick near its line, and the spread white (the local lines see all of it), where -J's
    walk spreads tens of times wider around the whole-run line than around local ones."""
    master = WhiteMaster(jack.env, jack.name, 174.0, 2.0)
    try:
        dump = jack_tool.dump("white-dump")
        dump.connect(master.port)
        time.sleep(0.2)
        master.play()
        time.sleep(4.0)
        master.stop()
        time.sleep(0.2)
    finally:
        master.close()
    records = dump.stop()
    assert records[0].data == (0xFA,) and records[-1].data == (0xFC,)
    ticks = run_ticks(records, jack.rate)
    assert abs(len(ticks) - 4.0 * 174 * 24 / 60) < 15
    grid = fit_grid(ticks)
    assert grid.bpm == pytest.approx(174.0, rel=0.002)
    # uniform +-2 ms is 1.15 ms RMS; landing on period starts adds up to 1.33 ms more
    assert 0.8 < grid.jitter_ms < 1.8
    assert grid.jitter_ms < 1.2 * grid.local_jitter_ms
    worst = max(abs(t - grid.t0 - k * grid.tick_s) for k, t in enumerate(ticks))
    assert worst < 0.005


def test_the_jack_frame_clock_steps_one_period_at_a_time_at_the_servers_rate(
        jack: JackServer) -> None:
    with JackFrameClock(jack.name) as frames:
        assert (frames.rate, frames.period_frames) == (jack.rate, jack.period)
        first, started = frames.frames(), time.monotonic()
        seen = set()
        while time.monotonic() - started < 1.0:
            seen.add(frames.frames())
            time.sleep(0.0003)
        elapsed = (frames.frames() - first) / frames.rate
        assert elapsed == pytest.approx(time.monotonic() - started, abs=0.05)
        assert len(seen) > 100 and all((f - first) % jack.period == 0 for f in seen)
        assert frames.restamp(123.0) == pytest.approx(frames.now(), abs=2 * frames.period_s)
        # the dispatcher's reading reaches each cycle a little after it began: it is the
        # cycle or the one before, and mostly the cycle (12 of 64 frames are the guard)
        lags = []
        for _ in range(2000):
            settled, now = frames.settled_now(), frames.now()
            lags.append(round((now - settled) * frames.rate))
            time.sleep(0.0001)
        assert set(lags) <= {0, jack.period, 2 * jack.period}, set(lags)
        assert 0.5 < lags.count(0) / len(lags) < 0.99, lags.count(0)
    with pytest.raises(RuntimeError, match="closed"):
        frames.now()


def test_the_grid_follows_a_clock_whose_phase_wanders() -> None:
    """-J also drifts the phase (a random walk): one line through the run would misplace the
    beats by the drift; the local lines follow it and still average the tick jitter away."""
    def true_time(k: float) -> float:  # 125 BPM, the phase swinging +-30 ms over 20 s
        return 2.0 + k * 0.02 + 0.03 * math.sin(2 * math.pi * k * 0.02 / 20.0)

    ticks = [true_time(k) + 0.001 * (-1) ** k for k in range(1000)]
    grid = fit_grid(ticks)
    assert grid.jitter_ms > 10.0  # the whole-run line is far off
    assert grid.local_jitter_ms == pytest.approx(1.0, rel=0.1)
    for beat in (1.0, 10.0, 20.25, 39.0):  # inside, and at the end of the run
        assert grid.time_of(beat) == pytest.approx(true_time(beat * 24), abs=2e-4)


def test_the_walk_oracle_is_exact_for_a_steady_clock_and_beats_the_ticks_on_a_walk() -> None:
    steady = fit_grid([1.0 + k * 0.02 for k in range(600)])
    assert max(abs(e) for e in walk_oracle_errors(steady)) < 1e-9
    rng = random.Random(4)
    ticks = [1.0]
    for _ in range(2399):  # -J 10 at 125 BPM: every interval off by up to +-10 %
        ticks.append(ticks[-1] + 0.02 * (1.0 + rng.uniform(-0.1, 0.1)))
    grid = fit_grid(ticks)
    oracle = error_stats(walk_oracle_errors(grid))
    on_tick = error_stats([ticks[k] - grid.time_of(k / 24) for k in range(24, 2376, 6)])
    assert oracle["notes"] == on_tick["notes"]
    # in theory sqrt(1/2) of the on-tick error (only the ticks to come are unknown)
    assert 0.5 * on_tick["p99_ms"] < oracle["p99_ms"] < 0.85 * on_tick["p99_ms"]


def test_own_tick_errors_charge_each_ticks_jitter_that_the_local_line_averages_away() -> None:
    ticks = [k * 0.02 + 0.001 * (-1) ** k for k in range(200)]  # +-1 ms, alternating
    grid = fit_grid(ticks)
    # notes landing on the line (beats 1, 1.25 and 2), and one 0.5 ms after its tick (72)
    sent = [Note(1.0, 9, 36), Note(1.25, 9, 38), Note(2.0, 9, 42), Note(3.0, 9, 49)]
    received = [Note(grid.time_of(1.0), 9, 36), Note(grid.time_of(1.25), 9, 38),
                Note(grid.time_of(2.0), 9, 42), Note(ticks[72] + 0.0005, 9, 49)]
    matched = match_notes(sent, received, grid)
    assert [round(abs(e) * 1000, 3) for e in matched.errors_s[:3]] == [0.0, 0.0, 0.0]
    own = own_tick_errors(matched, grid)
    # the even ticks (24, 30, 48) came 1 ms late, so the notes on the line are 1 ms early
    # against them (less the 1/49 ms the local line leans towards the late side)
    assert [e * 1000 for e in own] == pytest.approx([-1.0, -1.0, -1.0, 0.5], abs=0.03)
    off_grid = match_notes([Note(1.1, 9, 36)], [Note(grid.time_of(1.1), 9, 36)], grid)
    assert own_tick_errors(off_grid, grid) == []  # not on a tick: no own tick to compare


def walk_ticks(n: int, seed: int, spread: float = 0.05) -> list[float]:
    """jack_midi_clock -J 10 at 125 BPM as the dump reads it: each interval off by up to
    `spread`, the phase a random walk, every tick on a whole frame."""
    rng = random.Random(seed)
    ticks = [1.0]
    for _ in range(n - 1):
        ticks.append(ticks[-1] + 0.02 * (1.0 + rng.uniform(-spread, spread)))
    return [round(t * RATE) / RATE for t in ticks]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_noise_model_grid_is_the_line_for_white_jitter_and_the_ticks_for_a_walk(
        seed: int) -> None:
    """The fitted grid smooths each tick under the clock's own noise: around a steady line
    it finds the line under +-2 ms of jitter; on a walk (nothing says where it went but the
    tick) it stays on the ticks, where the local line is ms off them."""
    rng = random.Random(seed)
    white = [1.0 + k * 0.02 + rng.uniform(-0.002, 0.002) for k in range(3000)]
    q, r = tick_noise(white)
    assert q < 0.01 * r and r == pytest.approx(0.002 ** 2 / 3, rel=0.15)  # uniform: a^2/3
    assert max(abs(t - 1.0 - k * 0.02) for k, t in enumerate(fitted_ticks(white, (q, r)))) < 4e-4
    walk = walk_ticks(3000, seed)
    q, r = tick_noise(walk)
    assert r < 0.1 * q and q == pytest.approx((0.02 * 0.05) ** 2 / 3, rel=0.5)
    assert max(abs(a - b) for a, b in zip(fitted_ticks(walk, (q, r)), walk, strict=True)) < 1.5e-4
    grid = fit_grid(walk)
    assert max(abs(walk[k] - grid.time_of(k / 24)) for k in range(0, 3000, 6)) > 2e-3
    steady = [1.0 + k * 0.02 for k in range(300)]
    assert fitted_ticks(steady, tick_noise(steady)) == pytest.approx(steady, abs=1e-9)
    with pytest.raises(ValueError, match="ticks to fit"):
        tick_noise(steady[:100])


def test_fitted_errors_measure_each_note_against_its_tick_on_the_fitted_grid() -> None:
    walk = walk_ticks(600, 5)
    grid = fit_grid(walk)
    assert grid.fitted == pytest.approx(walk, abs=1.5e-4)
    # the reference's answer to ticks 120 and 126: one JACK period after each tick
    period = 64 / RATE
    sent = [Note(5.0, 9, 36), Note(5.25, 9, 36)]
    received = [Note(walk[120] + period, 9, 36), Note(walk[126] + period, 9, 36)]
    errors = fitted_errors(match_notes(sent, received, grid), grid)
    assert errors == pytest.approx([period, period], abs=1.5e-4)


def test_one_key_sent_twice_at_one_moment_is_two_notes_not_a_double() -> None:
    grid = fit_grid([k * 0.02 for k in range(100)])
    sent = [Note(0.5, 0, 60), Note(0.5, 0, 60)]  # a re-strike quantised onto one 16th
    received = [Note(0.24, 0, 60), Note(0.2405, 0, 60)]
    matched = match_notes(sent, received, grid)
    assert (matched.dropped, matched.doubled, matched.unmatched) == (0, 0, 0)
    assert len(matched.errors_s) == 2


def test_thread_cpu_is_read_per_thread_by_name() -> None:
    """A thread that burns CPU shows it under its own name; one that sleeps shows ~none."""
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(1000))

    busy = threading.Thread(target=burn, name="test-busy")
    idle = threading.Thread(target=stop.wait, name="test-idle")
    window = CpuWindow()
    busy.start()
    idle.start()
    time.sleep(0.3)
    cpu = window.end()
    stop.set()
    busy.join()
    idle.join()
    assert cpu.threads["test-busy"] > 20.0, cpu  # most of a core, less what the GIL takes
    assert cpu.threads["test-idle"] < 5.0, cpu
    assert cpu.without(["test-busy"]) == pytest.approx(cpu.process_pct - cpu.threads["test-busy"])
