"""CLI command `musegen eval`: how well a model's likelihood and live controls hold on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from musegen.cli.errors import UserError
from musegen.cli.models import add_sampling_options


def add_eval(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "eval", help="evaluate a model: NLL, density and genre control, memorisation",
        description="Validation NLL, density control (Spearman and median relative error of "
        "realised against requested onsets per bar), genre control (a classifier trained on "
        "real windows judges generated ones) and the longest run of bars copied from training.",
    )
    p.add_argument("--model", required=True, help="shipped model name or model folder")
    p.add_argument("--data", required=True, action="append",
                   help="dataset folder of the model's part (repeatable: evaluated as one)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plots", help="folder for PNG figures (piano rolls, density curve)")
    p.add_argument("--bars-per-request", type=int, default=8,
                   help="bars generated per requested density and genre (default 8)")
    p.add_argument("--densities", type=int, default=7,
                   help="requested densities in the sweep (default 7)")
    p.add_argument("--genres", help="comma-separated genres (default: drums rock,funk,jazz,"
                   "latin,hiphop; melody pop,jazz,folk; those with data)")
    p.add_argument("--max-windows", type=int, default=10000,
                   help="most windows for the NLL and per split for the classifier")
    add_sampling_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: bar-by-bar generation is latency-bound; "
                   "0: torch's default)")
    p.add_argument("--cache-dir", help="parsed-data cache (default ~/.cache/musegen/data)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    report = evaluate_args(args)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            if not isinstance(value, dict | list):
                print(f"{key:26} {value}")
        for genre, values in report.get("per_genre", {}).items():
            print(f"  {genre:10} " + "  ".join(f"{k}={v}" for k, v in values.items()))
    return 0


def evaluate_args(args: argparse.Namespace) -> dict[str, Any]:
    from musegen.checkpoint import load_model
    from musegen.data.prepared import merge, prepare
    from musegen.evaluation.suite import EvalError, EvalOptions, evaluate
    from musegen.generation.sampling import SamplingConfig
    from musegen.music.controls import ControlError

    for name in ("bars_per_request", "max_windows"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if args.densities < 2:
        raise UserError("--densities must be at least 2 (a rank correlation needs a sweep)")
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    try:
        loaded = load_model(args.model)
        sampling = SamplingConfig(temperature=args.temperature,
                                  density_steering=args.density_steering,
                                  genre_guidance=args.genre_guidance)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(str(exc)) from None
    parts = []
    for root in map(Path, args.data):
        if not root.is_dir():
            raise UserError(f"data folder {root} does not exist")
        parts.append(prepare(root, part=loaded.meta.part, codec=loaded.codec,
                             cache_dir=args.cache_dir, progress=not args.no_progress))
    data = merge(parts)
    if not data.pieces:
        raise UserError(f"no usable {loaded.meta.part} pieces in {', '.join(args.data)}")
    options = EvalOptions(
        bars_per_request=args.bars_per_request, densities=args.densities, seed=args.seed,
        max_windows=args.max_windows, plots=Path(args.plots) if args.plots else None,
        genres=tuple(g for g in args.genres.split(",") if g.strip()) if args.genres else None,
        sampling=sampling,
    )
    try:
        return evaluate(loaded, data, options)
    except (EvalError, ControlError) as exc:
        raise UserError(str(exc)) from None
