"""`musegen pedal`: the live engine as the config says, the box's controls, the service's
messages, until SIGTERM (or `--seconds`).

It is `musegen live` underneath (`PedalConfig.live_args`), so it plays what the live engine
plays, with its MIDI ports, audio, recording and CC map; on top: the footswitch, knobs and LED
(or one line saying there is no GPIO), READY/STOPPING and the watchdog for systemd, and
logging to stderr, which the journal keeps.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridges.live import LiveError, describe, open_live, stop_signals, wait_stopped
from bridges.pedal.config import PedalConfig, PedalConfigError, load_config, load_or_last_good
from bridges.pedal.controls import open_controls
from bridges.pedal.service import Watchdog, notify

logger = logging.getLogger(__name__)


def live_namespace(config: PedalConfig, live_parser: Callable[[list[str]], Any]
                   ) -> argparse.Namespace:
    """The parsed `musegen live` options of `config`."""
    return live_parser(config.live_args())  # type: ignore[no-any-return]


def run_pedal(args: argparse.Namespace, live_parser: Callable[[list[str]], Any]) -> int:
    try:
        config = (load_or_last_good(Path(args.config), Path(args.data_dir), print)
                  if args.config else load_config(None))
    except PedalConfigError as exc:
        raise LiveError(str(exc)) from None
    if logging.getLogger().level > logging.INFO:  # a box has no screen: the journal says
        logging.getLogger().setLevel(logging.INFO)  # what it did (ports back, devices)
    (config.data_dir / "sessions").mkdir(parents=True, exist_ok=True)
    running = open_live(live_namespace(config, live_parser))
    # a long press asks for the power off; a signal only ends the pedal (never powers off)
    power_off_asked, wake = threading.Event(), threading.Event()

    def long_press() -> None:
        power_off_asked.set()
        wake.set()

    controls = open_controls(running.session, config.controls, running.say,
                             pin_factory=getattr(args, "pin_factory", None),
                             on_shutdown=long_press)
    if controls is not None:
        running.closers.append(controls.close)
    try:
        with stop_signals() as stop:  # before READY: a stop from then on is always heard
            running.start()
            watchdog = Watchdog(running.session)
            running.closers.append(watchdog.close)
            notify(f"READY=1\nSTATUS=playing {describe(running.session)}")
            print(f"musegen: pedal playing {describe(running.session)}", flush=True)
            wait_stopped(stop, wake, args.seconds)
    finally:
        notify("STOPPING=1")
        running.close()
    recorder = running.session.recorder
    if recorder is not None:
        print(f"musegen: session recorded in {recorder.path}")
    if power_off_asked.is_set():
        power_off(config.controls.shutdown_command)
    return 0


def power_off(command: tuple[str, ...]) -> None:
    """The long press's last step, after the take is saved."""
    print(f"musegen: long press: shutting down ({' '.join(command)})", flush=True)
    try:
        subprocess.run(command, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.error("shutdown command failed: %s", exc)
