"""The session's timbre morph: one x/y position in 0..1 x 0..1 that a synth blends its corner
instruments by (musegen.synth.morph does the blending; the engine only holds the position).

Every front door moves it (a knob on CC 26/27, the browser's pad, REST) and whatever plays
or shows it listens: the audio output glides its voices there, the web hub tells every page.
The engine never imports the synth, so the position lives here as two plain floats.
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
from collections.abc import Callable

from musegen.music.controls import ControlError

log = logging.getLogger(__name__)

MorphListener = Callable[[float, float], None]
AXES = ("x", "y")


def check_morph(x: object, y: object) -> tuple[float, float]:
    """(x, y) as floats, or ControlError saying which axis is wrong and why."""
    return check_axis("x", x), check_axis("y", y)


def check_axis(axis: str, value: object) -> float:
    # bool is an int: True would pass as 1.0 and hide a caller's mix-up
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ControlError(f"morph {axis} must be a number in 0..1, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ControlError(f"morph {axis} must be in 0..1, got {value!r}")
    return v


class MorphPosition:
    """The position and its listeners. Listeners run on the caller's thread under a lock, so
    they see the moves in the order they were made and the last call is the final position;
    they must be quick (hand the value on, never block)."""

    def __init__(self, x: float = 0.0, y: float = 0.0) -> None:
        self._xy = check_morph(x, y)
        self._listeners: list[MorphListener] = []
        self._logged: set[int] = set()  # ids of listeners whose failure was logged already
        self._lock = threading.RLock()  # re-entrant: a listener may read or move it again
        self.errors = 0  # listener calls that raised

    @property
    def xy(self) -> tuple[float, float]:
        return self._xy

    def add_listener(self, listener: MorphListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: MorphListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def set(self, x: object, y: object) -> tuple[float, float]:
        xy = check_morph(x, y)
        with self._lock:
            self._xy = xy
            self._tell(xy)
        return xy

    def set_axis(self, axis: str, value: object) -> tuple[float, float]:
        """Move one axis only (a knob turns one of them)."""
        v = check_axis(axis, value)
        with self._lock:
            x, y = self._xy
            xy = (v, y) if axis == "x" else (x, v)
            self._xy = xy
            self._tell(xy)
        return xy

    def _tell(self, xy: tuple[float, float]) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(*xy)
            except Exception:  # a broken listener must not stop the knob or the others
                self.errors += 1
                if id(listener) not in self._logged:
                    self._logged.add(id(listener))
                    log.exception("morph listener %r failed (logged once; counted after)",
                                  listener)
