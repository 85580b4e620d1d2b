"""The timbre morph: an x/y position blending the embeddings of two to four instruments.

Corners in order: (0, 0), (1, 0), (0, 1), (1, 1). Two corners blend along x only; three
use the fourth corner's weight for none of them (renormalised); four are bilinear. One
corner is a plain instrument. The position is continuous, so the timbre is too; the synth
glides its embedding towards the target each block so that a jump of the knob is no click.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from musegen.synth.spec import INSTRUMENT_INDEX, MELODIC

DEFAULT_CORNERS = ("piano", "strings", "flute", "lead")
GLIDE = 0.15  # share of the way to the target per block: ~30 ms to settle


class MorphError(ValueError):
    pass


@dataclass(frozen=True)
class Morph:
    corners: tuple[str, ...]
    x: float = 0.0
    y: float = 0.0
    glide: float = GLIDE

    def __post_init__(self) -> None:
        if not 1 <= len(self.corners) <= 4:
            raise MorphError("a morph blends 1 to 4 instruments")
        melodic = {i.name for i in MELODIC}
        for name in self.corners:
            if name not in melodic:
                known = ", ".join(sorted(melodic))
                raise MorphError(f"unknown instrument {name!r} (one of {known})")
        if not (0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0):
            raise MorphError(f"morph x and y must be in 0..1, got {self.x}, {self.y}")

    @classmethod
    def default(cls) -> Morph:
        return cls(DEFAULT_CORNERS)

    @classmethod
    def parse(cls, text: str, corners: tuple[str, ...] = DEFAULT_CORNERS) -> Morph:
        """'x,y' as on the command line."""
        try:
            x, y = (float(v) for v in text.split(","))
        except ValueError:
            raise MorphError(f"--morph wants x,y in 0..1, got {text!r}") from None
        return cls(corners, x, y)

    def moved(self, x: float, y: float) -> Morph:
        return replace(self, x=x, y=y)

    def weights(self) -> np.ndarray:
        x, y = self.x, self.y
        w = np.array([(1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y])
        n = len(self.corners)
        if n == 1:
            return np.ones(1)
        if n == 2:
            return np.array([1 - x, x])
        w = w[:n]
        return w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)

    def rows(self) -> list[int]:
        """The corners' instrument indices (rows of the model's tables)."""
        return [INSTRUMENT_INDEX[name] for name in self.corners]

    def embedding(self, table: np.ndarray) -> np.ndarray:
        """The blended embedding from the model's table [instruments, E]."""
        return np.asarray(self.weights() @ table[self.rows()], dtype=np.float32)
