"""Conditioning controls: one small class per control, used both to label training data
(`extract`) and to drive the live knob (`from_knob`, `validate`).

Following note-seq's performance controls and MidiTok's attribute controls, a control is
defined once so that what the model was trained on and what the musician turns mean the same.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from musegen.music.genres import PartName, genres_for, unify_genre
from musegen.music.score import Score
from musegen.music.timing import FOUR_FOUR

_FOUR_FOUR_TICKS = FOUR_FOUR.ticks_per_bar

# Bin edges in onsets per 4/4 bar, chosen from the data's per-bar distribution
# (`musegen data stats`): dense enough where most bars are, wide at the busy end.
DRUM_DENSITY_EDGES = (4.0, 8.0, 12.0, 16.0, 20.0, 24.0, 28.0, 32.0, 40.0, 48.0)
MELODY_DENSITY_EDGES = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 24.0)


class ControlError(ValueError):
    """A live control value that the model cannot take; the message lists what is valid."""


@dataclass(frozen=True)
class DensityControl:
    """Note density: onsets per bar, scaled to a 4/4 bar (for drums: every hit counts).

    Scaling to 4/4 makes a 3/4 bar with 12 hits as busy as a 4/4 bar with 16, so one knob
    means the same thing in any meter. An onset belongs to the bar of its nearest grid step
    (`grid_ticks`), as in the token representation: a downbeat pushed a few ms early still
    counts for the bar it lands on.
    """

    part: PartName
    edges: tuple[float, ...]
    minimum: float = 0.0
    maximum: float = 64.0
    grid_ticks: int = 120
    name: str = "density"

    @classmethod
    def for_part(cls, part: PartName) -> DensityControl:
        if part == "drums":
            return cls(part, DRUM_DENSITY_EDGES, 0.0, 64.0, grid_ticks=120)  # 16th grid
        return cls(part, MELODY_DENSITY_EDGES, 0.0, 32.0, grid_ticks=40)  # 1/12 quarter

    @property
    def num_bins(self) -> int:
        return len(self.edges) + 1

    def extract(self, score: Score) -> list[float]:
        """Per-bar density label of a score whose notes are already the part's notes."""
        out = []
        half = self.grid_ticks // 2
        for start, end in score.bars():
            onsets = len(score.notes_in(start - half, end - half))
            out.append(onsets * _FOUR_FOUR_TICKS / (end - start))
        return out

    def to_bin(self, density: float) -> int:
        return bisect.bisect_right(self.edges, density)

    def bin_centre(self, index: int) -> float:
        """A representative density of a bin, for reports and for knob feedback."""
        lows = (self.minimum, *self.edges)
        highs = (*self.edges, self.maximum)
        return (lows[index] + highs[index]) / 2

    def validate(self, density: float) -> float:
        if not self.minimum <= density <= self.maximum:
            raise ControlError(
                f"density {density} is out of range for {self.part}: "
                f"valid is {self.minimum:g} to {self.maximum:g} onsets per 4/4 bar"
            )
        return float(density)

    def from_knob(self, position: float) -> float:
        """Map a knob at 0..1 to a density, linear in onsets per bar from `minimum` to
        `maximum`: the ends of the knob are the ends of the range the model advertises (and
        reaches: density steering makes a bar land on the count, not on its bin)."""
        position = min(1.0, max(0.0, position))
        return round(self.minimum + position * (self.maximum - self.minimum), 1)


@dataclass(frozen=True)
class GenreControl:
    """Genre: one label of the model family's unified set (see musegen.music.genres)."""

    part: PartName
    labels: tuple[str, ...]
    name: str = "genre"

    @classmethod
    def for_part(cls, part: PartName, labels: Sequence[str] | None = None) -> GenreControl:
        return cls(part, tuple(labels) if labels is not None else genres_for(part))

    def extract(self, raw_label: str | None) -> str:
        """The unified label of a dataset's raw genre label."""
        return unify_genre(raw_label, self.part)

    def validate(self, label: str) -> str:
        key = label.strip().lower()
        if key not in self.labels:
            raise ControlError(f"unknown genre {label!r}: valid are {', '.join(self.labels)}")
        return key

    def index(self, label: str) -> int:
        return self.labels.index(self.validate(label))

    def from_knob(self, position: float) -> str:
        """A genre selector knob with one detent per label."""
        position = min(1.0, max(0.0, position))
        return self.labels[min(len(self.labels) - 1, int(position * len(self.labels)))]
