"""`musegen audio ...` (the neural synth's data, training and evaluation) and `musegen render`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musegen.cli.errors import UserError

DEFAULT_SYNTH = "synth-wavenet"


def add_audio(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audio = commands.add_parser("audio", help="the neural synth: render its data, train it, "
                                "evaluate it")
    sub = audio.add_subparsers(title="audio commands", metavar="AUDIO_COMMAND", required=True)
    data = sub.add_parser("render-data", help="render the training notes with FluidSynth "
                          "(cached)")
    _common(data)
    data.set_defaults(handler=_run_render_data)
    train = sub.add_parser("train", help="train a synth on the rendered notes")
    _common(train)
    train.add_argument("--out", required=True, help="folder for the trained synth")
    train.add_argument("--preset", default="small", help="small (shipped) or debug")
    train.add_argument("--steps", type=int, default=2000)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(handler=_run_train)
    ev = sub.add_parser("eval", help="quality on the held-out notes against two baselines")
    _common(ev)
    ev.add_argument("--synth", default=DEFAULT_SYNTH, help="synth name or folder")
    ev.add_argument("--save", action="store_true", help="store the figures in the synth's "
                    "synth.json and rewrite its card.md")
    ev.set_defaults(handler=_run_eval)


def add_render(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("render", help="play a MIDI file through the neural synth to a WAV")
    p.add_argument("midi", help="MIDI file")
    p.add_argument("--out", required=True, help="WAV file to write (48 kHz, 16-bit mono)")
    add_synth_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_render)


def add_synth_options(p: argparse.ArgumentParser) -> None:
    """The synth and its timbre, shared by render and the live commands."""
    p.add_argument("--synth", default=DEFAULT_SYNTH, help="synth name or folder "
                   f"(default {DEFAULT_SYNTH})")
    p.add_argument("--morph", default="0,0", help="timbre position x,y in 0..1 between the "
                   "corner instruments (default 0,0)")
    p.add_argument("--instruments", default="piano,strings,flute,lead",
                   help="1 to 4 corner instruments of the morph, at (0,0) (1,0) (0,1) (1,1)")


def make_morph(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from musegen.synth.morph import Morph, MorphError

    try:
        return Morph.parse(args.morph, tuple(args.instruments.split(",")))
    except MorphError as exc:
        raise UserError(str(exc)) from None


def load_synth_or_fail(name: str):  # type: ignore[no-untyped-def]
    from musegen.synth.checkpoint import SynthNotFound, load_synth

    try:
        return load_synth(name)
    except SynthNotFound as exc:
        raise UserError(str(exc)) from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", help="where rendered notes are cached "
                   "(default ~/.cache/musegen/synth-data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _notes(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from musegen.synth.dataset import RenderError, render_notes

    try:
        return render_notes(Path(args.cache_dir) if args.cache_dir else None,
                            progress=not args.no_progress)
    except RenderError as exc:
        raise UserError(str(exc)) from None


def _run_render_data(args: argparse.Namespace) -> int:
    notes = _notes(args)
    summary = {"notes": len(notes), "held_out": int(notes.held_out.sum()),
               "seconds": round(notes.audio.size / 48_000, 1)}
    print(json.dumps(summary) if args.json else
          f"{summary['notes']} notes ({summary['held_out']} held out), {summary['seconds']} s")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from musegen.synth.checkpoint import SynthMeta, save_synth
    from musegen.synth.model import PRESETS
    from musegen.synth.spec import INSTRUMENTS
    from musegen.synth.train import TrainConfig, train

    if args.preset not in PRESETS:
        raise UserError(f"unknown preset {args.preset!r} (one of {', '.join(PRESETS)})")
    notes = _notes(args)
    tc = TrainConfig(steps=args.steps, seed=args.seed)
    net, figures = train(notes, PRESETS[args.preset], tc, progress=not args.no_progress)
    out = Path(args.out)
    meta = SynthMeta(out.name, PRESETS[args.preset], tuple(i.name for i in INSTRUMENTS),
                     metrics=figures, training={"params": sum(p.numel() for p in
                                                             net.parameters()),
                                                "steps": tc.steps, "batch": tc.batch,
                                                "lr": tc.lr, "seed": tc.seed,
                                                "preset": args.preset})
    save_synth(out, net, meta)
    print(json.dumps(figures) if args.json else f"synth saved in {out}: {figures}")
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from musegen.synth.card import synth_card
    from musegen.synth.checkpoint import resolve_synth, save_synth
    from musegen.synth.quality import evaluate

    net, meta = load_synth_or_fail(args.synth)
    notes = _notes(args)
    table = evaluate(net, notes)
    if args.save:
        folder = resolve_synth(args.synth)
        meta.metrics["quality"] = table
        meta.metrics["held_out_notes"] = int(notes.held_out.sum())
        save_synth(folder, net, meta)
        (folder / "card.md").write_text(synth_card(meta))
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(f"{'system':18} {'kind':8} {'MR-STFT':>8} {'loud dB':>8} {'cents':>6}")
    for system, kinds in table.items():
        for kind, fig in kinds.items():
            c = fig.get("pitch_cents_median")
            print(f"{system:18} {kind:8} {fig['mrstft']:8.3f} {fig['loudness_l1_db']:8.2f} "
                  f"{'' if c is None else f'{c:6.1f}'}")
    return 0


def _run_render(args: argparse.Namespace) -> int:
    from musegen.synth.dataset import write_wav
    from musegen.synth.render import RenderInputError, render_midi

    net, meta = load_synth_or_fail(args.synth)
    morph = make_morph(args)
    try:
        done = render_midi(net, Path(args.midi), morph, progress=not args.no_progress)
    except RenderInputError as exc:
        raise UserError(str(exc)) from None
    write_wav(Path(args.out), done.audio)
    report = {"out": args.out, "seconds": round(len(done.audio) / 48_000, 2),
              "synth": meta.name, "notes": done.stats.notes, "stolen": done.stats.stolen,
              "ignored": done.stats.ignored, "peak": round(done.peak, 3)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"musegen: {report['notes']} notes, {report['seconds']} s -> {args.out}"
              + (f" ({report['stolen']} voices stolen)" if report["stolen"] else ""))
    return 0
