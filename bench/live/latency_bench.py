"""How well the engine follows a DAW's MIDI clock: a real JACK rig, measured at the far end.

    jack_midi_clock -b BPM -B [-J PCT] --+--> "musegen in"  (engine: follower, worker,
                                         |                   dispatcher, drums + melody)
                                         +--> "ref in"      (reference client, own process)
    jack_midi_dump -a  <-- the clock, "musegen out", "ref out"  (one time base: JACK frames)

The private jackd runs the dummy driver at 48 kHz with 64-frame periods (1.33 ms). The
engine runs on JACK's frame counter (`timebase="jack"`, bridges/midi/jack_time.py; what
`musegen live` uses on JACK) or, to compare, on CLOCK_MONOTONIC (`"system"`). The ideal grid
is fitted to the clock ticks the dump received (beat = tick / 24): a beat is where the line
through the ticks within a beat of it puts it (bench_analysis.py), so jitter added by -J is
averaged out of the reference. For every note_on the engine sent, the error
is its arrival time minus its beat's time on that grid; the same for the reference client
(bench/live/reference_client.py), which answers every sixth tick at once and so measures
the rig's floor in the same run. Reported per side: p50/p99/max of the absolute error and
the signed mean (in ms), dropped/doubled notes, notes left hanging, and for the engine its
CPU over the run (% of one core: the process's, less the bench's own threads, its main one
and the one reading the dump; `process_cpu_pct` keeps them in, `threads_cpu_pct` splits it
by Python thread) and `tempo_changes`, the steps its clock follower detected. On the
dummy-driver rig that count is large even without -J (49 and 61 in two 60 s runs at 120
BPM): the master's ticks, read on the system clock, jump in phase by a millisecond or two,
and each jump is a real step the follower has to take (a less sensitive detector, drift 2.5
and alarm 8, halved the count and put the engine's p99 at 6.8 ms instead of 1.7). On JACK's
frame counter the same master gives 0 to 2 in 120 s. The clock's own report carries
`walk_oracle`: the error of the best guess any follower could make of each 16th once its
tick had come, if the phase wanders as -J makes it (bench_analysis.walk_oracle_errors), the
floor that clock sets. Each side also carries `own_tick`: its errors against the tick that
carried each 16th as it arrived, not the local line (the other reading of "the grid fitted to
the received clock"; equal to the main figures on a steady clock, apart from the line's
sub-frame fit; on a -J clock they charge the follower with every tick's jitter).

`master="white"` (`musegen bench live --white-jitter-ms N`) swaps jack_midi_clock for
bench/live/white_clock.py: a steady tempo, each tick up to N ms off its line on its own,
as a DAW's clock through USB MIDI jitters (bench/live/clock_masters.py holds both).

Parts play with humanize 0, so every onset is on a 16th. `jitter_ms` is converted to
jack_midi_clock's -J percentage (0..20) assuming -J p moves each tick by up to p/2 % of a
tick period (what a 2 s probe at -J 10 showed). Longer runs show that -J perturbs the
intervals, so the phase wanders like a random walk (an 8 s run at -J 9.6 gave 4 ms RMS
around the fitted line, and a fitted tempo 0.7 % off): read `clock.tick_jitter_rms_ms`,
what the dump actually received, rather than the nominal `jitter_ms`.

    python -m bench.live.latency_bench --bpm 120 --seconds 120 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Literal

from bench import checkout_env
from bench.live.bench_analysis import (
    Grid,
    Note,
    error_stats,
    fit_grid,
    fitted_errors,
    hanging_notes,
    match_notes,
    note_ons,
    own_tick_errors,
    run_ticks,
    stop_release,
    walk_oracle_errors,
)
from bench.live.bench_engine import BenchEngine
from bench.live.clock_masters import ClockMaster, MasterKind, TransportMaster, WhiteMaster
from bench.live.reference_client import REF_CHANNEL, REF_PITCH, TICKS_PER_STEP
from bench.live.thread_cpu import CpuUse, CpuWindow
from bench.rig.jack_tools import (
    JackServer,
    MidiDump,
    connect,
    missing_tools,
    start_private_server,
    stop_process,
    wait_port,
)
from bridges.midi.jack_time import JackFrameClock
from bridges.midi.ports import IN_NAME, OUT_NAME
from bridges.midi.pump import RT_PRIORITY
from musegen.engine import SYNCS, PartControls, Sync

logger = logging.getLogger(__name__)

Timebase = Literal["jack", "system"]
# How early to send, in JACK periods, so notes land centred on the beat (python-rtmidi's JACK
# output lands at the start of the period after the send):
# - system clock: ticks are stamped when the callback runs, half a period after the tick's
#   frame on average, so half a period early centres;
# - JACK frames: ticks are stamped with the start of the cycle the pump read them in, and the
#   dispatcher sends once the cycle before the note's has begun; one period early measured
#   centred (mean error +0.07 to +0.11 ms at 120 BPM).
DEFAULT_LATENCY_PERIODS: dict[str, float] = {"system": 0.5, "jack": 1.0}

CLOCK_PPQN = 24
MAX_JITTER_PCT = 20.0
SWITCH_INTERVAL_S = 0.0005  # as a live session sets it
# the bench's own Python threads: its main thread (asleep while the clock runs) and the one
# reading jack_midi_dump's output; the engine's CPU is the process's less these
BENCH_THREADS = ("MainThread", "jack-midi-dump")
SETTLE_S = 0.5  # after Stop: the last offs reach the dump
DEFAULT_PARTS = (
    ("drums", "drums-lstm", PartControls("rock", 16.0, humanize=0.0)),
    ("melody", "melody-lstm", PartControls("pop", 8.0, humanize=0.0)),
)


def jitter_pct_for(bpm: float, jitter_ms: float) -> float:
    """jack_midi_clock's -J for a peak tick displacement of `jitter_ms` at `bpm`."""
    period_ms = 60_000.0 / (bpm * CLOCK_PPQN)
    return min(MAX_JITTER_PCT, 200.0 * jitter_ms / period_ms)


def run_latency_bench(
    bpm: float = 120.0,
    jitter_ms: float = 0.0,
    seconds: float = 30.0,
    *,
    jitter_pct: float | None = None,
    rate: int = 48000,
    period: int = 64,
    parts: Sequence[tuple[str, str, PartControls]] = DEFAULT_PARTS,
    clock_in_callback: bool = True,
    latency_ms: float | None = None,
    server: JackServer | None = None,
    timebase: Timebase = "jack",
    sync: Sync = "auto",
    master: MasterKind = "jack_midi_clock",
    rt_priority: int = RT_PRIORITY,
) -> dict[str, Any]:
    """One run on a private jackd (or on `server`, already running and used in this
    process); returns the report (see the module docstring).

    `clock_in_callback=False` queues the clock bytes for MidiInput's consumer thread
    instead of feeding the follower in the rtmidi callback (to compare the two).
    `timebase`: "jack" runs the engine on JACK's frame counter (bridges/midi/jack_time.py),
    "system" on CLOCK_MONOTONIC.
    `latency_ms`: send that much early; None: what centres the notes on the beat, which
    `DEFAULT_LATENCY_PERIODS` gives per time base (python-rtmidi's JACK output lands at the
    start of the next period).
    `sync`: "line" sends on the follower's fitted line, "tick" on each tick's arrival, "auto"
    on whichever suits the clock (the dispatcher's `sync`).
    `rt_priority`: > 0 runs the engine's MIDI input pump under SCHED_FIFO at that priority,
    as `musegen live` does by default (where allowed; the report's `input_pump` says whether
    it was); 0 under normal scheduling.
    `master`: "jack_midi_clock" (-J from `jitter_pct` or `jitter_ms`: a wandering phase) or
    "white" (bench/live/white_clock.py: each tick up to `jitter_ms` off a steady line)."""
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"the latency bench needs the JACK tools: {', '.join(missing)}")
    pct = jitter_pct_for(bpm, jitter_ms) if jitter_pct is None else min(jitter_pct,
                                                                          MAX_JITTER_PCT)
    if master == "white":
        pct = 0.0
    own = server is None
    if server is None:
        server = start_private_server("musegen-bench", rate=rate, period=period)
        server.use_in_process()
    rate, period = server.rate, server.period
    if latency_ms is None:
        latency_ms = round(1000.0 * DEFAULT_LATENCY_PERIODS[timebase] * period / rate, 3)
    switch = sys.getswitchinterval()
    try:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        report = _run(server, bpm, _master_maker(master, server, bpm, jitter_ms, pct),
                      seconds, parts, clock_in_callback, latency_ms, timebase, sync,
                      rt_priority)
    finally:
        sys.setswitchinterval(switch)
        if own:
            server.stop()
    period_ms = 60_000.0 / (bpm * CLOCK_PPQN)
    report.update(bpm=bpm, master=master, jitter_pct=round(pct, 3), seconds=seconds,
                  jitter_ms=round(jitter_ms if master == "white" else pct / 200.0 * period_ms,
                                  3),
                  rate=rate, period_frames=period,
                  period_ms=round(1000.0 * period / rate, 3),
                  clock_in_callback=clock_in_callback, latency_ms=latency_ms,
                  timebase=timebase, sync=sync, rt_priority=rt_priority)
    return report


def _master_maker(master: MasterKind, server: JackServer, bpm: float, jitter_ms: float,
                  jitter_pct: float) -> Callable[[], ClockMaster]:
    """What starts the run's clock master (once the engine's ports are up)."""
    if master == "white":
        return lambda: WhiteMaster(server.env, server.name, bpm, jitter_ms)
    return lambda: TransportMaster(server.env, bpm, jitter_pct)


def _run(server: JackServer, bpm: float, master: Callable[[], ClockMaster], seconds: float,
         parts: Sequence[tuple[str, str, PartControls]],
         clock_in_callback: bool, latency_ms: float = 0.0,
         timebase: Timebase = "jack", sync: Sync = "auto",
         rt_priority: int = RT_PRIORITY) -> dict[str, Any]:
    if timebase == "system":
        return _run_on(server, bpm, master, seconds, parts, clock_in_callback, latency_ms,
                       sync=sync, rt_priority=rt_priority)
    with JackFrameClock(server.name) as frames:
        return _run_on(server, bpm, master, seconds, parts, clock_in_callback, latency_ms,
                       frames, sync, rt_priority)


def _run_on(server: JackServer, bpm: float, master: Callable[[], ClockMaster],
            seconds: float, parts: Sequence[tuple[str, str, PartControls]],
            clock_in_callback: bool, latency_ms: float, frames: JackFrameClock | None = None,
            sync: Sync = "auto", rt_priority: int = RT_PRIORITY) -> dict[str, Any]:
    env = server.env
    engine = BenchEngine.build(bpm, parts, clock_in_callback, latency_ms, frames,
                               sync=sync, rt_priority=rt_priority)
    clock = master()
    reference = subprocess.Popen([sys.executable, "-m", "bench.live.reference_client",
                                  "--client", "musegen-ref"], env=checkout_env(env),
                                 stdin=subprocess.PIPE, start_new_session=True)
    dump = MidiDump(env, "musegen-bench-dump")
    try:
        ref_in, ref_out = wait_port(env, ":ref in", 15.0), wait_port(env, ":ref out", 15.0)
        ours_in, ours_out = wait_port(env, ":" + IN_NAME), wait_port(env, ":" + OUT_NAME)
        logger.info("rig up on %s: clock %s, ref %s/%s", server.name, clock.port, ref_in, ref_out)
        connect(env, clock.port, ours_in)
        connect(env, clock.port, ref_in)
        dump.connect(clock.port, ours_out, ref_out)
        logger.info("connected")
        engine.start()
        time.sleep(0.2)  # connections settle before the first tick
        window = CpuWindow()
        clock.play()
        time.sleep(seconds)
        clock.stop()
        time.sleep(SETTLE_S)
        cpu = window.end()
        logger.info("run done: %d input messages", sum(engine.midi_in.counters.values()))
    finally:
        engine.stop()
        clock.close()
        stop_process(reference)
        records = dump.stop()
    return _analyse(records, server.rate, engine, cpu)


def _analyse(records: Sequence[Any], rate: int, engine: BenchEngine,
             cpu: CpuUse) -> dict[str, Any]:
    ticks = run_ticks(records, rate)
    if len(ticks) < 2 * CLOCK_PPQN:
        raise RuntimeError(
            f"the dump recorded {len(ticks)} clock ticks in the run ({len(records)} events "
            f"in all; the engine's input saw {engine.midi_in.counters['clock']} clock "
            "messages): the JACK rig stalled or the clock was never connected")
    grid = fit_grid(ticks)
    channels = sorted({n.channel for n in engine.output.ons} - {REF_CHANNEL})
    ours = match_notes(engine.output.ons, note_ons(records, rate, channels), grid)
    ref_sent = [Note(k / CLOCK_PPQN, REF_CHANNEL, REF_PITCH)
                for k in range(0, len(ticks), TICKS_PER_STEP)]
    ref = match_notes(ref_sent, note_ons(records, rate, [REF_CHANNEL]), grid)
    dispatcher = engine.dispatcher
    return {
        "clock": _clock_report(grid),
        "engine": {
            **error_stats(ours.errors_s),
            "max_ms_after_first_step": error_stats(ours.after_start())["max_ms"],
            "own_tick": error_stats(own_tick_errors(ours, grid)),
            "fitted": error_stats(fitted_errors(ours, grid)),
            "sent": len(engine.output.ons), "dropped": ours.dropped, "doubled": ours.doubled,
            "unmatched": ours.unmatched, "dropped_late": dispatcher.dropped_late,
            "max_late_ms": round(dispatcher.max_late_s * 1000.0, 3),
            "hanging_notes": hanging_notes(records, channels),
            "stop": asdict(stop_release(records, rate, channels)),
            "dropped_bars": engine.worker.dropped_bars,
            "clock_losses": len(engine.losses),
            # tempo steps the follower detected: a steady master should give none, and each
            # one shrinks its line to a few ticks (see musegen/clock/tempo_fit.py)
            "tempo_changes": engine.follower.tempo_changes,
            # how much of the clock's jitter the follower took for a wandering phase (0..1),
            # and how many batches went out on their tick's arrival (sync auto or tick)
            "walk_share": round(engine.follower.walk_share, 3),
            "steady_phase": engine.follower.steady_phase,  # as the run ended
            "tick_synced": dispatcher.tick_synced,
            "cpu_pct": round(cpu.without(BENCH_THREADS), 1),
            "process_cpu_pct": round(cpu.process_pct, 1),  # with the bench's own threads
            # per Python thread; the rest of process_cpu_pct is rtmidi's JACK threads
            "threads_cpu_pct": {k: round(v, 2) for k, v in cpu.threads.items()},
            "input": {k: v for k, v in engine.midi_in.counters.items() if v},
            "input_pump": _pump_report(engine),
        },
        "reference": {
            **error_stats(ref.errors_s),
            "max_ms_after_first_step": error_stats(ref.after_start())["max_ms"],
            "own_tick": error_stats(own_tick_errors(ref, grid)),
            "fitted": error_stats(fitted_errors(ref, grid)),
            "expected": len(ref_sent), "dropped": ref.dropped, "doubled": ref.doubled,
            "unmatched": ref.unmatched,
            "hanging_notes": hanging_notes(records, [REF_CHANNEL]),
        },
    }


def _pump_report(engine: BenchEngine) -> dict[str, Any]:
    """How promptly the input pump read the clock ticks (a tick-synced note goes out as its
    tick is read)."""
    pump = engine.ports.input.pump if engine.ports.input is not None else None
    if pump is None:
        return {}
    return {"realtime": pump.realtime, "late_tick_reads": pump.late_tick_reads,
            "max_tick_read_lag_ms": round(pump.max_tick_read_lag * 1000.0, 3)}


def _clock_report(grid: Grid) -> dict[str, Any]:
    walk, white = grid.noise or (math.nan, math.nan)
    return {"ticks": grid.ticks, "bpm_fitted": round(grid.bpm, 4),
            # the noise model the fitted grid uses: RMS walk per tick, RMS white jitter
            "walk_ms_per_tick": round(1000.0 * math.sqrt(walk), 4),
            "white_ms": round(1000.0 * math.sqrt(white), 4),
            "tick_jitter_rms_ms": round(grid.jitter_ms, 3),
            "tick_jitter_local_rms_ms": round(grid.local_jitter_ms, 3),
            # the floor this clock sets for any follower if its phase wanders
            "walk_oracle": error_stats(walk_oracle_errors(grid))}


def run_matrix(bpms: Sequence[float], jitters_pct: Sequence[float],
               seconds: float, syncs: Sequence[Sync] = ("auto",),
               white_jitters_ms: Sequence[float] = (),
               rt_priorities: Sequence[int] = (RT_PRIORITY,)) -> dict[str, Any]:
    """One run per (bpm, -J percentage, sync, input pump priority) on jack_midi_clock, then
    one per (bpm, white jitter, sync, priority) on the white-jitter master; what `musegen
    bench live` reports. The priorities vary fastest, so an A/B pair runs back to back."""
    runs = [run_latency_bench(bpm, seconds=seconds, jitter_pct=pct, sync=sync, rt_priority=rt)
            for bpm in bpms for pct in jitters_pct for sync in syncs for rt in rt_priorities]
    runs += [run_latency_bench(bpm, jitter_ms, seconds, sync=sync, master="white",
                               rt_priority=rt)
             for bpm in bpms for jitter_ms in white_jitters_ms for sync in syncs
             for rt in rt_priorities]
    return {"runs": runs}


def _summary(report: dict[str, Any]) -> str:
    jitter = (f"white +-{report['jitter_ms']:g} ms" if report["master"] == "white" else
              f"-J {report['jitter_pct']:g} % (+-{report['jitter_ms']:g} ms)")
    lines = [f"{report['bpm']:g} BPM, {jitter}, {report['seconds']:g} s, "
             f"JACK period {report['period_ms']:g} ms; clock fitted {report['clock']['bpm_fitted']}"
             f" BPM, tick jitter {report['clock']['tick_jitter_rms_ms']} ms RMS"]
    for side in ("engine", "reference"):
        r = report[side]
        lines.append(f"  {side:9} notes {r['notes']:5}  error p50 {r['p50_ms']:.2f}  "
                     f"p99 {r['p99_ms']:.2f}  max {r['max_ms']:.2f} (after the first step "
                     f"{r['max_ms_after_first_step']:.2f})  mean {r['mean_ms']:+.2f} ms"
                     f"  dropped {r['dropped']}  doubled {r['doubled']}  "
                     f"hanging {r['hanging_notes']}")
        for key, label in (("fitted", "the noise-model grid"), ("own_tick", "its own tick")):
            e = r[key]
            lines.append(f"  {'':9} against {label}: p50 {e['p50_ms']:.2f}  "
                         f"p99 {e['p99_ms']:.2f}  max {e['max_ms']:.2f} ms")
    stop = report["engine"]["stop"]
    lines.append(f"  engine CPU {report['engine']['cpu_pct']} % of one core; at Stop "
                 f"{stop['sounding']} notes sounding, all off {stop['all_off_ms']} ms later; "
                 f"the follower saw {report['engine']['tempo_changes']} tempo changes")
    pump = report["engine"]["input_pump"]
    if pump:
        lines.append(f"  input pump {'real-time' if pump['realtime'] else 'normal'}: "
                     f"{pump['late_tick_reads']} ticks read over 1 ms late, the latest "
                     f"{pump['max_tick_read_lag_ms']} ms")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live.latency_bench",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bpm", type=float, default=120.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0,
                        help="peak clock tick displacement (converted to jack_midi_clock -J)")
    parser.add_argument("--jitter-pct", type=float, help="jack_midi_clock -J directly (0..20)")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--clock-via-queue", action="store_true",
                        help="feed the clock from MidiInput's consumer thread, not the callback")
    parser.add_argument("--latency-ms", type=float,
                        help="the engine sends this much early (default: half a JACK period, "
                        "which centres it)")
    parser.add_argument("--sync", choices=SYNCS, default="auto",
                        help="send on the follower's line, on each tick's arrival, or on "
                        "whichever suits the clock (musegen/engine/dispatch.py)")
    parser.add_argument("--master", choices=("jack_midi_clock", "white"),
                        default="jack_midi_clock",
                        help="white: bench/live/white_clock.py, each tick up to --jitter-ms "
                        "off a steady line")
    parser.add_argument("--rt-priority", type=int, default=RT_PRIORITY,
                        help="the input pump's SCHED_FIFO priority (0: normal scheduling)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    report = run_latency_bench(args.bpm, args.jitter_ms, args.seconds,
                               jitter_pct=args.jitter_pct,
                               clock_in_callback=not args.clock_via_queue,
                               latency_ms=args.latency_ms, sync=args.sync,
                               master=args.master, rt_priority=args.rt_priority)
    print(json.dumps(report, indent=2) if args.json else _summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
