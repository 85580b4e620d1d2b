"""CLI commands around models: train, generate, models, ship."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from musegen.catalogue import models_json
from musegen.cli.errors import UserError
from musegen.generation.sampling import DEFAULT_GUIDANCE, DEFAULT_STEERING


def add_train(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("train", help="train a generator from a TOML config")
    p.add_argument("--config", required=True, help="TOML file, e.g. configs/drums-lstm.toml")
    p.add_argument("--data", action="append", help="dataset folder (repeatable); "
                   "default: the config's `data`")
    p.add_argument("--out", help="output folder (default: runs/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from the output folder")
    p.add_argument("--steps", type=int, help="override the config's number of steps")
    p.add_argument("--cache-dir", help="parsed-data cache (default ~/.cache/musegen/data)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from musegen.training.config import TrainConfig
    from musegen.training.trainer import TrainingDataError, train

    try:
        config = TrainConfig.from_toml(args.config)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read config {args.config}: {exc}") from None
    if args.steps:
        config.steps = args.steps
    try:
        result = train(config, args.out or f"runs/{config.name}", data_dirs=args.data,
                       resume=args.resume, cache_dir=args.cache_dir,
                       progress=not args.no_progress)
    except TrainingDataError as exc:
        raise UserError(str(exc)) from None
    if result.rank == 0:  # one report per job, valid JSON (no NaN)
        nll = None if math.isnan(result.val_nll_bits) else round(result.val_nll_bits, 4)
        print(json.dumps({"out": str(result.out), "step": result.step, "params": result.params,
                          "train_loss": round(result.train_loss, 4),
                          "nll_bits_per_token": nll}))
    return 0


def add_models(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("models", help="list the shipped models")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace) -> int:
    rows = models_json()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:20} {r['version']:7} {r['family']:12} {r['part']:7} "
              f"{r['params'] or '?':>9} params  "
              + (f"genres: {', '.join(r['genres'])}" if r["genres"] else
                 f"instruments: {', '.join(r.get('instruments', []))}"))
    if not rows:
        print("no shipped models", file=sys.stderr)
    return 0


DEFAULT_DENSITY = {"drums": 16.0, "melody": 8.0}


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    """--temperature, --density-steering and --genre-guidance, as generate and eval take them."""
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--density-steering", type=float, default=None,
                   help="density steering strength (0: the model alone; default: the "
                   f"model's, from its card, else {DEFAULT_STEERING})")
    p.add_argument("--genre-guidance", type=float, default=DEFAULT_GUIDANCE,
                   help=f"genre guidance weight (0: off; default {DEFAULT_GUIDANCE})")


def add_generate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("generate", help="write a MIDI file from a model")
    p.add_argument("--model", required=True, help="shipped model name or model folder")
    p.add_argument("--genre", help="one of the model's genres (default: its first)")
    p.add_argument("--density", type=float,
                   help="target note onsets per 4/4 bar (drums: all hits)")
    add_sampling_options(p)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--bars", type=int, default=8)
    p.add_argument("--tempo", type=float, default=120.0, help="BPM written into the file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prime", help="MIDI file to continue from")
    p.add_argument("--out", required=True, help="output .mid file")
    p.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    print(json.dumps(generate_file(args)))
    return 0


def generate_file(args: argparse.Namespace) -> dict[str, Any]:
    from pathlib import Path

    from musegen.checkpoint import load_model
    from musegen.generation.generator import BarGenerator, Controls
    from musegen.generation.sampling import SamplingConfig
    from musegen.music.controls import ControlError
    from musegen.music.midi_io import MidiFileError, load_score, save_score

    if args.bars < 1:
        raise UserError("--bars must be at least 1")
    if not 20 <= args.tempo <= 400:
        raise UserError(f"--tempo {args.tempo} is outside 20..400 BPM")
    try:
        loaded = load_model(args.model)
        sampling = SamplingConfig(args.temperature, args.top_k, args.top_p,
                                  density_steering=args.density_steering,
                                  genre_guidance=args.genre_guidance)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    meta = loaded.meta
    genre = args.genre or meta.genres[0]
    if args.density is not None:
        density = args.density
    elif genre in meta.density_defaults:  # the genre's median in the model's training data
        density = meta.default_density(genre)
    else:
        density = DEFAULT_DENSITY[meta.part]
    try:
        controls = Controls(meta.genre_control.validate(genre),
                            meta.density_control.validate(density))
    except ControlError as exc:
        raise UserError(str(exc)) from None
    gen = BarGenerator(loaded, sampling, seed=args.seed)
    if args.prime:
        try:
            prime = load_score(args.prime)
        except MidiFileError as exc:
            raise UserError(f"cannot prime from {args.prime}: {exc}") from None
        prime = prime.drums() if meta.part == "drums" else prime.pitched()
        bars = loaded.codec.encode_bars(prime)
        gen.prime(bars, meta.density_control.extract(prime)[: len(bars)], controls.genre)
    tokens = gen.generate(args.bars, controls)
    score = loaded.codec.decode(tokens, bpm=args.tempo)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_score(score, args.out)
    return {"out": str(args.out), "model": meta.name, "genre": controls.genre,
            "density": controls.density, "bars": args.bars, "notes": len(score.notes),
            "tokens": len(tokens)}


def add_ship(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("ship", help="copy a training run into models/ with a model card")
    p.add_argument("run_dir", metavar="RUN", help="training output folder, e.g. runs/drums-lstm "
                   "(or a shipped model's folder, to refresh its card and metrics in place)")
    p.add_argument("--models-dir", default="models", help="where shipped models live")
    p.add_argument("--eval-json", help="output of `musegen eval --json` for the card")
    p.add_argument("--alone-eval-json",
                   help="output of `musegen eval --json --density-steering 0` (the model alone)")
    p.add_argument("--bench-json", help="output of `musegen bench --json` for the card")
    p.add_argument("--density-steering", type=float,
                   help="record this as the model's default steering strength")
    p.set_defaults(handler=run_ship)


def run_ship(args: argparse.Namespace) -> int:
    from pathlib import Path

    from musegen.cards import ship
    from musegen.checkpoint import read_meta

    name = read_meta(args.run_dir)[0].name
    evaluated = json.loads(Path(args.eval_json).read_text()) if args.eval_json else None
    alone = json.loads(Path(args.alone_eval_json).read_text()) if args.alone_eval_json else None
    bench_row = None
    if args.bench_json:
        report = json.loads(Path(args.bench_json).read_text())
        bench_row = next((r for r in report["models"] if r["name"] == name), None)
    print(ship(args.run_dir, args.models_dir, evaluated, bench_row, alone,
               args.density_steering))
    return 0
