"""What each OSC address does to the session. One table, the same validation as REST.

| address | arguments | does |
| --- | --- | --- |
| /musegen/play | none | start (or continue) the internal clock |
| /musegen/stop | none | stop it |
| /musegen/rewind | none | back to the top (keeps playing if playing) |
| /musegen/tempo | bpm (number) | set the tempo |
| /musegen/<part>/genre | name (string) | the part's genre, from the next bar |
| /musegen/<part>/density, temperature, humanize, swing | number | that control |
| /musegen/<part>/mute | 0/1, true/false | mute the part |
| /musegen/synth/morph | x y (numbers, 0..1) | move the synth's timbre |

Anything else (an unknown address or part, a wrong type or count of arguments, a value the
session refuses) raises OscDrop with the reason; the server counts it and goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from musegen.engine import EngineError, LiveSession
from musegen.music.controls import ControlError

PREFIX = "/musegen/"
NUMBER_CONTROLS = ("density", "temperature", "humanize", "swing")
SYNTH = "synth"  # the pseudo-part of the morph, as in the CC map


class OscDrop(ValueError):
    """A message the engine will not carry out; the text says why."""


def apply_message(session: LiveSession, address: str, args: Sequence[Any]) -> None:
    """Carry out one OSC message on the session, or raise OscDrop."""
    if not address.startswith(PREFIX):
        raise OscDrop(f"{address}: not under {PREFIX}")
    path = address[len(PREFIX):].split("/")
    try:
        _apply(session, path, list(args))
    except (ControlError, EngineError) as exc:
        raise OscDrop(f"{address}: {exc}") from None


def _apply(session: LiveSession, path: list[str], args: list[Any]) -> None:
    match path:
        case ["play"]:
            _count(args, 0, path)
            session.play()
        case ["stop"]:
            _count(args, 0, path)
            session.stop()
        case ["rewind"]:
            _count(args, 0, path)
            session.rewind()
        case ["tempo"]:
            _count(args, 1, path)
            session.set_tempo(_number(args[0], "tempo"))
        case [part, "morph"] if part == SYNTH:
            _count(args, 2, path)
            session.set_morph(_number(args[0], "morph x"), _number(args[1], "morph y"))
        case [part, control]:
            _count(args, 1, path)
            if part not in session.parts:
                raise OscDrop(f"no part {part!r} (parts: {', '.join(session.parts)})")
            session.set_controls(part, **{control: _control_value(control, args[0])})
        case _:
            raise OscDrop(f"{PREFIX}{'/'.join(path)}: no such address")


def _count(args: list[Any], wanted: int, path: list[str]) -> None:
    if len(args) != wanted:
        raise OscDrop(f"{PREFIX}{'/'.join(path)} takes {wanted} argument(s), got {len(args)}")


def _control_value(control: str, value: Any) -> Any:
    if control == "genre":
        if not isinstance(value, str):
            raise OscDrop(f"genre must be a string, got {value!r}")
        return value
    if control == "mute":
        if isinstance(value, bool) or value in (0, 1):  # OSC T/F, or an int/float 0 or 1
            return bool(value)
        raise OscDrop(f"mute must be 0/1 or true/false, got {value!r}")
    if control in NUMBER_CONTROLS:
        return _number(value, control)
    raise OscDrop(f"no control {control!r} (controls: genre, mute, {', '.join(NUMBER_CONTROLS)})")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OscDrop(f"{what} must be a number, got {value!r}")
    return float(value)
