"""`musegen bench`: the benchmarks, registered on the `musegen` command from a checkout.

The shipped program never imports this package: `bridges.cli` looks for it next to the
installed `musegen` package (a source checkout) and adds the command only when it is there.
"""

from __future__ import annotations

import argparse
import json

from bridges.midi.pump import RT_PRIORITY
from musegen.cli.errors import UserError
from musegen.engine import SYNCS


def add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("bench", help="step latency and real-time factor of the models, "
                            "(bench live) timing on a JACK rig, (bench web) websocket fan-out")
    p.add_argument("target", nargs="?", choices=["models", "live", "web", "pedal"],
                   default="models",
                   help="models (default): per-step latency; live: note timing against a "
                   "MIDI clock on a JACK server; web: delivery to 50 websocket clients; "
                   "pedal: the box's CPU, memory and cold start with audio on JACK")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_models_options(p)
    _add_live_options(p)
    web = p.add_argument_group("bench web (the engine playing to websocket clients here)")
    web.add_argument("--clients", type=int, default=50, help="websocket clients")
    p.set_defaults(handler=run_bench)


def _add_models_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("bench models (the shipped models' streaming steps)")
    group.add_argument("--model", action="append",
                       help="model name or folder (default: all shipped)")
    group.add_argument("--steps", type=int,
                       help="timed steps per model (default: bench.steps.BENCH_STEPS, 2000)")
    group.add_argument("--bars", type=int, default=8,
                       help="bars generated for the real-time factor")
    group.add_argument("--synth", action="append",
                       help="neural synth name or folder (default: all shipped, unless "
                       "--model is given)")


def _add_live_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("bench live (a JACK rig: jackd, jack_midi_clock, "
                                 "jack_midi_dump)")
    group.add_argument("--bpm", type=float, action="append",
                       help="clock tempo, repeatable (default: 120 and 174)")
    group.add_argument("--jitter", type=float, action="append",
                       help="jack_midi_clock -J jitter, repeatable (default: 0 and 10)")
    group.add_argument("--white-jitter-ms", type=float, action="append",
                       help="live: also run on a clock whose ticks are each up to this many "
                       "ms off a steady line (white jitter, as through USB MIDI), repeatable "
                       "(default: none)")
    group.add_argument("--sync", choices=SYNCS, action="append",
                       help="live: send on the clock follower's fitted line, on each tick's "
                       "arrival, or whichever suits the clock, repeatable (default: auto)")
    group.add_argument("--rt-priority", type=int, action="append",
                       help="live: run the engine's MIDI input pump under SCHED_FIFO at this "
                       "priority (0: normal scheduling), repeatable for an A/B in one run "
                       f"(default: {RT_PRIORITY}, as musegen live)")
    group.add_argument("--seconds", type=float,
                       help="live: per tempo, jitter and sync (default 120); web: per fan-out "
                       "(default 30)")


def run_bench(args: argparse.Namespace) -> int:
    runner = {"models": _run_models, "live": _run_live, "web": _run_web,
              "pedal": _run_pedal}[args.target]
    return runner(args)


def _run_models(args: argparse.Namespace) -> int:
    from bench.steps import BENCH_STEPS, run_bench
    from bench.synth import synth_rows
    from musegen.synth.checkpoint import SynthNotFound

    try:
        report = run_bench(args.model, args.steps or BENCH_STEPS, args.bars)
        synths = [] if args.model and not args.synth else args.synth
        report["models"] += synth_rows(synths, args.steps or BENCH_STEPS)
    except (FileNotFoundError, SynthNotFound) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'model':22} {'family':12} {'p50 ms':>8} {'p99 ms':>8} {'x real time':>12}")
    for r in report["models"]:
        if r["kind"] == "audio":
            print(f"{r['name']:22} {'synth, block':12} {r['block_ms_p50']:8.3f} "
                  f"{r['block_ms_p99']:8.3f} {r['realtime_factor']:12.1f}  (8 voices; Pi 4 "
                  f"estimate x{r['pi4_estimate']['realtime_factor']})")
            continue
        print(f"{r['name']:22} {r['family']:12} {r['step_ms_p50']:8.3f} {r['step_ms_p99']:8.3f} "
              f"{r['realtime_factor']:12.1f}")
    if base := report["lstm_baseline"]:
        print(f"LSTM {base['shape']}: ours {base['ours_step_ms_p50']:.3f} ms, matvec floor "
              f"{base['matmul_ms_p50']:.3f} ms (x{base['ratio_to_matmul']}), naive nn.LSTM "
              f"{base['naive_step_ms_p50']:.3f} ms (ours x{base['speedup_vs_naive']} faster)")
    return 0


def _run_live(args: argparse.Namespace) -> int:
    from bench.live.latency_bench import run_matrix

    report = run_matrix(args.bpm or [120.0, 174.0], args.jitter or [0.0, 10.0],
                        args.seconds or 120.0, args.sync or ["auto"],
                        args.white_jitter_ms or [],
                        args.rt_priority or [RT_PRIORITY])
    print(json.dumps(report, indent=2))
    return 0


def _run_pedal(args: argparse.Namespace) -> int:
    from bench.pedal import run_pedal_bench

    print(json.dumps(run_pedal_bench(args.seconds or 30.0), indent=2))
    return 0


def _run_web(args: argparse.Namespace) -> int:
    """Queued (baseline) and direct fan-out to `--clients`, alternating in one run."""
    from bench.web_fanout import compare_fanouts

    report = compare_fanouts(args.clients, args.seconds or 30.0,
                             tempo=(args.bpm or [120.0])[0])
    print(json.dumps(report, indent=2))
    return 0
