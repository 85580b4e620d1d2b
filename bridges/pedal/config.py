"""The pedal's configuration: one TOML file (see pedal.example.toml), checked on load.

A bad file is one clear error naming the key (`PedalConfigError`), never a traceback. The
engine side becomes the same options `musegen live` takes, so the pedal plays exactly what
the live engine would; the controls side stays here.
"""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

HOLD_ACTIONS = ("tap_tempo", "mute")
POT_CONTROLS = ("density", "genre", "temperature", "morph_x", "morph_y")


class PedalConfigError(ValueError):
    """The config cannot be used; the text says which key and why."""


@dataclass(frozen=True)
class Controls:
    footswitch: int | None = 17
    hold_s: float = 0.8
    hold: str = "tap_tempo"
    led: int | None = 27
    pots: dict[str, int] = field(default_factory=lambda: {
        "density": 0, "genre": 1, "temperature": 2, "morph_x": 3, "morph_y": 4})
    shutdown_s: float = 3.0  # a press this long shuts the box down cleanly (0: never)
    shutdown_command: tuple[str, ...] = ("systemctl", "poweroff")


@dataclass(frozen=True)
class PedalConfig:
    engine: dict[str, Any]
    audio: dict[str, Any]
    midi: dict[str, Any]
    web: dict[str, Any]
    data_dir: Path
    controls: Controls

    def live_args(self, now: float | None = None) -> list[str]:
        """The `musegen live` command line this config means (recording into data_dir)."""
        e, a, m, w = self.engine, self.audio, self.midi, self.web
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        args = ["live", "--backend", m["backend"], "--bpm", str(e["bpm"]),
                "--clock", e["clock"],
                "--record",
                str(self.data_dir / "sessions" / f"session-{stamp}-{os.getpid()}.mid")]
        for model in e["models"]:
            args += ["--model", model]
        if e["genre"]:
            args += ["--genre", e["genre"]]
        if e["clock_out"]:
            args.append("--clock-out")
        if a["enabled"]:
            args += ["--audio", "--synth", a["synth"], "--morph",
                     f"{a['morph'][0]},{a['morph'][1]}"]
            if a["device"]:
                args += ["--audio-device", a["device"]]
        for key, flag in (("input_from", "--input-from"), ("output_to", "--output-to"),
                          ("cc_map", "--config")):
            if m[key]:
                args += [flag, m[key]]
        args += ["--port", str(w["port"])] if w["enabled"] else ["--no-web"]
        return args


DEFAULTS: dict[str, dict[str, Any]] = {
    "engine": {"models": ["drums-lstm"], "genre": "", "bpm": 120.0, "clock": "internal",
               "clock_out": False},
    "audio": {"enabled": True, "device": "", "synth": "synth-wavenet", "morph": [0.0, 0.0]},
    "midi": {"backend": "auto", "input_from": "", "output_to": "", "cc_map": ""},
    "web": {"enabled": False, "port": 8000},
    "data": {"dir": "/var/lib/musegen"},
}
CHOICES = {("engine", "clock"): ("internal", "midi"),
           ("midi", "backend"): ("auto", "alsa", "jack", "none")}


def example_text() -> str:
    return resources.files("bridges.pedal").joinpath("pedal.example.toml").read_text()


def load_config(path: Path | None) -> PedalConfig:
    """`path` (None: the shipped example's defaults) -> a checked PedalConfig."""
    if path is None:
        return parse_config(tomllib.loads(example_text()), "the example config")
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise PedalConfigError(f"{path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PedalConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(raw, str(path))


LAST_GOOD = "pedal.last-good.toml"  # in the data dir: the config last started with


def load_or_last_good(path: Path, data_dir: Path, say: Callable[[str], None]) -> PedalConfig:
    """`path`, remembered as the last good config once it loads; if it does not (a write
    torn by a power cut, a typo), the last good one, said in one line. Only when neither
    loads is it an error (the first one's)."""
    try:
        config = load_config(path)
    except PedalConfigError as exc:
        last = data_dir / LAST_GOOD
        if not last.is_file():
            raise
        config = load_config(last)
        say(f"musegen: {exc}; playing the last good config ({last})")
        return config
    _write_atomically(config.data_dir / LAST_GOOD, path.read_bytes())
    return config


def _write_atomically(target: Path, data: bytes) -> None:
    """Whole or not at all, even across a power cut: write, fsync, rename, fsync the dir."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:  # a read-only data dir: no fallback next time, but play now
        pass


def parse_config(raw: dict[str, Any], where: str) -> PedalConfig:
    unknown = set(raw) - set(DEFAULTS) - {"controls"}
    if unknown:
        raise PedalConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")
    sections = {name: _section(raw.get(name, {}), name, defaults, where)
                for name, defaults in DEFAULTS.items()}
    return PedalConfig(sections["engine"], sections["audio"], sections["midi"],
                       sections["web"], Path(sections["data"]["dir"]),
                       _controls(raw.get("controls", {}), where))


def _section(given: Any, name: str, defaults: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise PedalConfigError(f"{where}: [{name}] must be a table")
    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise PedalConfigError(f"{where}: [{name}] has no key {key!r} "
                                   f"(keys: {', '.join(defaults)})")
        out[key] = _checked(value, defaults[key], f"[{name}] {key}", where)
        if (name, key) in CHOICES and value not in CHOICES[(name, key)]:
            raise PedalConfigError(f"{where}: [{name}] {key} must be one of "
                                   f"{', '.join(CHOICES[(name, key)])}, got {value!r}")
    return out


def _checked(value: Any, default: Any, what: str, where: str) -> Any:
    """`value` if it has the default's type (an int for a float is fine)."""
    if isinstance(default, list) and isinstance(default[0], float):  # an x, y position
        ok = (isinstance(value, list) and len(value) == len(default)
              and all(_is_number(v) and 0 <= v <= 1 for v in value))
    elif isinstance(default, list):  # names
        ok = isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    elif isinstance(default, float):
        ok = _is_number(value)
    else:
        ok = isinstance(value, type(default)) and isinstance(value, bool) == isinstance(
            default, bool)
    if not ok:
        raise PedalConfigError(f"{where}: {what} must be like {default!r}, got {value!r}")
    return float(value) if isinstance(default, float) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _controls(given: Any, where: str) -> Controls:
    if not isinstance(given, dict):
        raise PedalConfigError(f"{where}: [controls] must be a table")
    base = Controls()
    pots = given.get("pots", base.pots)
    if not isinstance(pots, dict) or any(
            k not in POT_CONTROLS or not isinstance(v, int) or isinstance(v, bool)
            or not 0 <= v <= 7 for k, v in pots.items()):
        raise PedalConfigError(f"{where}: [controls.pots] maps {', '.join(POT_CONTROLS)} to "
                               f"MCP3008 channels 0-7, got {pots!r}")
    hold = given.get("hold", base.hold)
    if hold not in HOLD_ACTIONS:
        raise PedalConfigError(f"{where}: [controls] hold must be one of "
                               f"{', '.join(HOLD_ACTIONS)}, got {hold!r}")
    hold_s = given.get("hold_s", base.hold_s)
    if isinstance(hold_s, bool) or not isinstance(hold_s, int | float) or not 0.1 <= hold_s <= 5:
        raise PedalConfigError(f"{where}: [controls] hold_s must be 0.1 to 5 s, got {hold_s!r}")
    shutdown_s = given.get("shutdown_s", base.shutdown_s)
    if not _is_number(shutdown_s) or not (shutdown_s == 0 or hold_s < shutdown_s <= 30):
        raise PedalConfigError(f"{where}: [controls] shutdown_s must be 0 (off) or longer "
                               f"than hold_s, up to 30 s, got {shutdown_s!r}")
    command = given.get("shutdown_command", list(base.shutdown_command))
    if not isinstance(command, list) or not command or not all(
            isinstance(c, str) for c in command):
        raise PedalConfigError(f"{where}: [controls] shutdown_command must be a list of "
                               f"strings, got {command!r}")
    pins = {k: given.get(k, getattr(base, k)) for k in ("footswitch", "led")}
    for key, pin in pins.items():
        if pin is not None and (isinstance(pin, bool) or not isinstance(pin, int)
                                or not 0 <= pin <= 27):
            raise PedalConfigError(f"{where}: [controls] {key} must be a BCM pin 0-27")
    extra = set(given) - {"pots", "hold", "hold_s", "footswitch", "led", "shutdown_s",
                          "shutdown_command"}
    if extra:
        raise PedalConfigError(f"{where}: [controls] has no key(s) {', '.join(sorted(extra))}")
    return Controls(pins["footswitch"], float(hold_s), hold, pins["led"], dict(pots),
                    float(shutdown_s), tuple(command))
