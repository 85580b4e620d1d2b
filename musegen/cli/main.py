"""The `musegen` command line. Output here is the CLI's own; everything else logs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from musegen import __version__
from musegen.cli.audio import add_audio, add_render
from musegen.cli.errors import UserError
from musegen.cli.eval import add_eval
from musegen.cli.models import add_generate, add_models, add_ship, add_train


def main(argv: Sequence[str] | None = None) -> int:
    return run_parser(build_parser(), argv)


def run_parser(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, set up logging and run the chosen command's handler."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if args.info else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except UserError as exc:
        print(f"musegen: error: {exc}", file=sys.stderr)
        return 2
    return result


def build_parser() -> argparse.ArgumentParser:
    """The core commands; the `musegen` script (bridges.cli) adds live, run and ports."""
    parser = argparse.ArgumentParser(
        prog="musegen",
        description="Real-time music generation: a generative co-player for DAWs, browsers "
        "and pedals.",
    )
    parser.add_argument("--version", action="version", version=f"musegen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--info", action="store_true", help="informational logging")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_data(commands)
    add_train(commands)
    add_generate(commands)
    add_models(commands)
    add_eval(commands)
    add_ship(commands)
    add_audio(commands)
    add_render(commands)
    _add_paths(commands)
    return parser


def _add_data(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data = commands.add_parser("data", help="inspect and prepare training data")
    sub = data.add_subparsers(title="data commands", metavar="DATA_COMMAND", required=True)
    stats = sub.add_parser(
        "stats",
        help="files, hours, bars, genres and density of a dataset folder",
        description="Parse (or load from cache) a dataset folder and summarise it. Known "
        "layouts: groove-midi, pop909, nottingham, openewld, weimar-jazz; any other folder "
        "of MIDI files is read as a plain collection.",
    )
    stats.add_argument("root", help="dataset folder, e.g. ../shared/data/groove-midi")
    stats.add_argument("--part", choices=["drums", "melody"], help="default: from the layout")
    stats.add_argument("--labels", help="CSV of labels for a plain folder (file, genre, split)")
    stats.add_argument("--cache-dir", help="where parsed data is cached (default ~/.cache/musegen)")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.add_argument("--no-progress", action="store_true", help="no progress bar")
    stats.set_defaults(handler=_run_data_stats)


def _run_data_stats(args: argparse.Namespace) -> int:
    from pathlib import Path

    from musegen.data.prepared import prepare
    from musegen.data.stats import compute_stats, format_stats

    if not Path(args.root).is_dir():
        raise UserError(f"{args.root} is not a folder")
    data = prepare(
        args.root, part=args.part, labels=args.labels, cache_dir=args.cache_dir,
        progress=not args.no_progress,
    )
    stats = compute_stats(data)
    print(json.dumps(stats.to_json(), indent=2) if args.json else format_stats(stats))
    return 0


def _add_paths(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    paths = commands.add_parser("paths", help="where the shipped models and web page are")
    paths.add_argument("--json", action="store_true", help="print one JSON object")
    paths.set_defaults(handler=_run_paths)


def _run_paths(args: argparse.Namespace) -> int:
    from musegen.paths import models_dir, web_dir

    found = {"models": str(models_dir()), "web": str(web_dir())}
    print(json.dumps(found) if args.json else "\n".join(f"{k:7} {v}" for k, v in found.items()))
    return 0
