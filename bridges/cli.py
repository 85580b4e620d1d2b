"""The `musegen` script: the core commands plus those that need the outside world.

`musegen live` (and `musegen run`, the same on the embedded default) plays through MIDI
ports, the web page and, with `--audio`, the neural synth on the sound card; `musegen ports`
lists MIDI ports. From a source checkout,
`musegen bench` (the top-level `bench` package, not shipped) adds the benchmarks.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bridges.midi.pump import RT_PRIORITY
from musegen.cli import build_parser, run_parser
from musegen.cli.errors import UserError
from musegen.engine import SYNCS

BACKENDS = ("auto", "alsa", "jack", "coremidi", "none")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    add_live(commands)
    _add_pedal(commands)
    _add_ports(commands)
    _add_bench_from_checkout(commands)
    return run_parser(parser, argv)


def add_live(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "live", aliases=["run"],
        help="play live: MIDI ports, the web page, the DAW's clock or our own (run: the same "
        "on the embedded default)",
        description="Runs the live engine: virtual MIDI ports 'musegen in' and 'musegen out' "
        "(or existing ports by name), the web drum machine at http://127.0.0.1:8000, the "
        "internal clock or the DAW's MIDI clock, and a recording of the session. Without a "
        "MIDI system it runs on the internal clock with the web page and says so.",
    )
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="MIDI system (auto: ALSA or JACK on Linux, CoreMIDI on macOS; none: "
                   "no MIDI)")
    p.add_argument("--clock", choices=["internal", "midi"], default="internal",
                   help="internal: our tempo (--bpm); midi: follow the clock on 'musegen in'")
    p.add_argument("--bpm", type=float, default=120.0, help="internal clock tempo")
    p.add_argument("--clock-out", action="store_true",
                   help="be the MIDI clock master: send 24 ppqn ticks, Start/Stop/Continue and "
                   "Song Position on 'musegen out' (needs the internal clock)")
    p.add_argument("--model", action="append",
                   help="model per part, repeatable (default: drums-lstm); a drums model "
                   "plays channel 10, a melody model channel 1")
    p.add_argument("--genre", help="starting genre (default: the model's first)")
    p.add_argument("--density", type=float, help="starting density, onsets per bar")
    p.add_argument("--humanize", type=float, default=1.0,
                   help="0..1: 1 plays the model's micro-timing, 0 snaps to the 16th grid")
    p.add_argument("--swing", type=float, default=0.0, help="0..1, on every second 16th")
    p.add_argument("--lookahead-bars", type=int, default=1, help="bars generated ahead")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="send this much early, for an output with known latency")
    p.add_argument("--input-from", help="listen to an existing MIDI port (name contains this) "
                   "instead of the virtual 'musegen in'")
    p.add_argument("--output-to", help="play to an existing MIDI port (name contains this) "
                   "instead of the virtual 'musegen out'")
    p.add_argument("--melody-port", action="store_true",
                   help="the melody part gets its own port 'musegen melody out'")
    p.add_argument("--sync", choices=SYNCS, default="auto",
                   help="with --clock midi: send on the line fitted to the clock's ticks, "
                   "ahead of them (line), a fixed delay after each tick arrives (tick), or "
                   "the line on a steady or white-jittered clock and the tick on one whose "
                   "phase wanders (auto, default)")
    p.add_argument("--rt-priority", type=int, default=RT_PRIORITY, metavar="N",
                   help="read 'musegen in', and with --audio render the synth, on threads "
                   "under real-time scheduling (SCHED_FIFO) at this priority where the system "
                   f"allows it (default {RT_PRIORITY}; 0: normal scheduling). A clock tick "
                   "read late delays the notes on it; a real-time synth runs one block ahead "
                   "instead of two")
    p.add_argument("--on-clock-loss", choices=["stop", "hold"], default="hold",
                   help="when the DAW's clock goes silent without a Stop message: keep "
                   "playing at its last tempo (hold, default: a hiccup is not a stop) or stop")
    p.add_argument("--respond", metavar="PART", help="call and response: PART answers each "
                   "phrase played into 'musegen in'")
    p.add_argument("--accompany", metavar="PART", help="PART's density follows the player")
    p.add_argument("--record", help="session recording (default: out/sessions/<time>.mid)")
    p.add_argument("--no-record", action="store_true", help="no session recording")
    p.add_argument("--config", help="live config with the CC map "
                   "(default ~/.config/musegen/live.json)")
    p.add_argument("--learn", action="store_true",
                   help="MIDI learn: map knobs to controls one by one, save to --config, go on")
    p.add_argument("--host", default="127.0.0.1", help="web page address")
    p.add_argument("--port", type=int, default=8000, help="web page port")
    p.add_argument("--token", help="required to bind anywhere but 127.0.0.1")
    p.add_argument("--no-web", action="store_true", help="no web page")
    p.add_argument("--osc", type=int, metavar="PORT",
                   help="take OSC controls on this UDP port (/musegen/<part>/<control>, "
                   "/musegen/tempo, /musegen/play, /musegen/stop; docs/sync.md). OSC has no "
                   "authentication: anyone who can reach the port drives the engine")
    p.add_argument("--osc-host", default="127.0.0.1",
                   help="with --osc: the address to listen on (default 127.0.0.1)")
    p.add_argument("--osc-out", metavar="HOST:PORT",
                   help="send every note (/musegen/<part>/note pitch velocity beats) and each "
                   "bar's downbeat (/musegen/bar) there as timestamped OSC bundles")
    p.add_argument("--audio", action="store_true",
                   help="also play through the neural synth on the sound card (PortAudio); "
                   "without an audio device it says so and plays on")
    p.add_argument("--audio-device", metavar="DEV",
                   help="with --audio: the output device, by index or part of its name "
                   "(default: the system's default output)")
    p.add_argument("--synth", default="synth-wavenet",
                   help="with --audio: the synth, a shipped name or a folder "
                   "(default: synth-wavenet)")
    p.add_argument("--morph", metavar="X,Y",
                   help="with --audio: the melodic timbre, x and y in 0..1 between piano, "
                   "strings, flute and lead (default 0,0: piano)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    p.set_defaults(handler=_run_live)


def _run_live(args: argparse.Namespace) -> int:
    from bridges.live import run_live

    return _as_user_error(run_live, args)


def _as_user_error(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """`run(args)`, a LiveError (cannot start as asked) becoming the CLI's one-line error."""
    from bridges.live import LiveError

    try:
        return run(args)
    except LiveError as exc:
        raise UserError(str(exc)) from None


def _add_pedal(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "pedal", help="the headless box: play as a TOML config says, with a footswitch, knobs "
        "and audio out (docs/pedal.md)",
        description="Plays straight away (or waits for a MIDI clock) as the config says: the "
        "live engine, its audio out and MIDI ports, the footswitch, knobs and LED on GPIO "
        "(without GPIO: MIDI controls only), no web page unless asked; logs to stderr (the "
        "journal, under systemd).")
    p.add_argument("--config", help="the pedal's TOML file (default: the shipped example's "
                   "settings; `musegen pedal example-config` prints it)")
    p.add_argument("--data-dir", default="/var/lib/musegen",
                   help="where the last good config is kept (a torn or bad --config falls "
                   "back to it); recordings go to the config's [data] dir")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until SIGTERM)")
    p.set_defaults(handler=_run_pedal)
    sub = p.add_subparsers(dest="pedal_command")
    service = sub.add_parser("install-service", help="write the systemd unit of the pedal")
    service.add_argument("--print", action="store_true", help="print it instead")
    service.add_argument("--config", default="/etc/musegen/pedal.toml",
                         help="the config the service reads (default /etc/musegen/pedal.toml)")
    service.add_argument("--data-dir", default="/var/lib/musegen",
                         help="where it may write (recordings); default /var/lib/musegen")
    service.add_argument("--unit-dir", default="/etc/systemd/system",
                         help="where the unit goes (default /etc/systemd/system)")
    service.add_argument("--user", default="musegen", help="the user it runs as")
    service.set_defaults(handler=_run_pedal_service)
    example = sub.add_parser("example-config", help="print the documented example config")
    example.set_defaults(handler=_run_pedal_example)


def _run_pedal(args: argparse.Namespace) -> int:
    from bridges.pedal.run import run_pedal

    live = argparse.ArgumentParser(prog="musegen")
    add_live(live.add_subparsers())
    return _as_user_error(lambda a: run_pedal(a, live.parse_args), args)


def _run_pedal_service(args: argparse.Namespace) -> int:
    from bridges.pedal.service import unit_text

    text = unit_text(Path(args.config), Path(args.data_dir), user=args.user)
    if args.print:
        print(text, end="")
        return 0
    target = Path(args.unit_dir) / "musegen-pedal.service"
    try:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(target)  # whole or not at all
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    print(f"musegen: wrote {target}; enable it with: systemctl enable --now musegen-pedal")
    return 0


def _run_pedal_example(args: argparse.Namespace) -> int:
    from bridges.pedal.config import example_text

    print(example_text(), end="")
    return 0


def _add_ports(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("ports", help="list MIDI input and output ports")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_ports)


def _run_ports(args: argparse.Namespace) -> int:
    from bridges.midi.backends import MidiUnavailable, list_ports

    try:
        ports = list_ports(args.backend)
    except MidiUnavailable as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(ports))
        return 0
    for direction in ("inputs", "outputs"):
        print(f"{direction}:")
        for name in ports[direction] or ["(none)"]:
            print(f"  {name}")
    return 0


def _add_bench_from_checkout(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `musegen bench` when this program runs from a source checkout.

    The benchmarks and their JACK rig are not part of the product: the wheel does not carry
    them, and nothing here imports them by name. A checkout has `bench/` beside `bridges/`.
    """
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "cli.py").is_file() or not (root / "pyproject.toml").is_file():
        return
    if str(root) not in sys.path:
        sys.path.append(str(root))
    importlib.import_module("bench.cli").add_bench(commands)
