"""A free-running clock at a set tempo, driven by an injected `now()`.

The position is a straight line through an anchor (t0, beat0) with slope bpm / 60. Every
transport call re-anchors at the current position first, so a tempo change bends the line
at "now" and never jumps the position; `time_at` is the exact inverse of `beat_at`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from musegen.clock.base import Clock, Continue, SongPosition, Start, Stop, TempoEvent

MIN_BPM = 1.0
MAX_BPM = 1000.0


def check_bpm(bpm: float) -> float:
    if not MIN_BPM <= bpm <= MAX_BPM:  # also rejects NaN
        raise ValueError(f"tempo {bpm} BPM outside {MIN_BPM}..{MAX_BPM}")
    return float(bpm)


class InternalClock(Clock):
    """Start/stop/continue/locate and tempo changes; all times come from `now()`.

    Each method also takes an explicit `t` so a caller holding a timestamp (a MIDI
    callback, a test) need not read the clock twice.
    """

    def __init__(self, bpm: float = 120.0, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._now = now
        self._bpm = check_bpm(bpm)
        self._playing = False
        self._t0 = 0.0
        self._beat0 = 0.0  # while stopped: the held position

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def tempo_bpm(self) -> float:
        return self._bpm

    def beat_at(self, t: float) -> float:
        if not self._playing:
            return self._beat0
        return self._beat0 + (t - self._t0) * self._bpm / 60.0

    def time_at(self, beat: float) -> float:
        if not self._playing:
            return math.inf
        return self._t0 + (beat - self._beat0) * 60.0 / self._bpm

    def start(self, t: float | None = None) -> None:
        """Play from beat 0."""
        t = self._time(t)
        self._anchor(t, 0.0)
        self._playing = True
        self._emit(Start(t))

    def stop(self, t: float | None = None) -> None:
        t = self._time(t)
        if not self._playing:
            return
        self._beat0 = self.beat_at(t)  # freeze where we are, for continue
        self._playing = False
        self._emit(Stop(t, self._beat0))

    def continue_(self, t: float | None = None) -> None:
        """Resume from the held position (the name avoids the `continue` keyword)."""
        t = self._time(t)
        if self._playing:
            return
        self._anchor(t, self._beat0)
        self._playing = True
        self._emit(Continue(t, self._beat0))

    def set_tempo(self, bpm: float, t: float | None = None) -> None:
        """Change tempo at `t` keeping the position there continuous."""
        t = self._time(t)
        bpm = check_bpm(bpm)
        self._anchor(t, self.beat_at(t))
        self._bpm = bpm
        self._emit(TempoEvent(t, bpm))

    def locate(self, beat: float, t: float | None = None) -> None:
        """Jump to `beat` (playing continues from there; stopped holds it)."""
        if not math.isfinite(beat):
            raise ValueError(f"cannot locate to {beat}")
        t = self._time(t)
        self._anchor(t, float(beat))
        self._emit(SongPosition(t, self._beat0))

    def _anchor(self, t: float, beat: float) -> None:
        self._t0 = t
        self._beat0 = beat

    def _time(self, t: float | None) -> float:
        return self._now() if t is None else t
