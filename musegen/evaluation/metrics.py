"""Numbers of the evaluation that need no model: ranks, Spearman's rho, the density sweep,
realised density of generated bars and the memorisation check (bars copied from training).

Spearman is computed here with numpy (average ranks for ties, then Pearson on the ranks), as
scipy.stats.spearmanr does, so the engine needs no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from musegen.data.prepared import PreparedDataset
from musegen.music.controls import DensityControl
from musegen.music.tokenizer import Codec

FloatArray = npt.NDArray[np.float64]


def rankdata(values: Sequence[float] | npt.ArrayLike) -> FloatArray:
    """Ranks from 1, ties sharing the mean of the ranks they span."""
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        return np.zeros(0)
    order = np.argsort(a, kind="mergesort")
    ordered = a[order]
    new_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    starts = np.flatnonzero(new_group)
    ends = np.concatenate([starts[1:], [a.size]])
    mean_rank = (starts + ends - 1) / 2.0 + 1.0
    ranks = np.empty(a.size)
    ranks[order] = mean_rank[np.cumsum(new_group) - 1]
    return ranks


def spearman(x: Sequence[float] | npt.ArrayLike, y: Sequence[float] | npt.ArrayLike) -> float:
    """Spearman's rank correlation; NaN when it is undefined (fewer than 2 pairs or a constant)."""
    rx, ry = rankdata(x), rankdata(y)
    if rx.size != ry.size:
        raise ValueError(f"spearman needs pairs: got {rx.size} and {ry.size} values")
    if rx.size < 2:
        return math.nan
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if denom == 0.0:
        return math.nan
    return float(np.clip(float(dx @ dy) / denom, -1.0, 1.0))


def median_relative_error(
    requested: Sequence[float] | npt.ArrayLike, realised: Sequence[float] | npt.ArrayLike
) -> float:
    """Median of |realised - requested| / requested over the pairs with requested > 0."""
    req = np.asarray(requested, dtype=np.float64)
    real = np.asarray(realised, dtype=np.float64)
    keep = req > 0
    if not keep.any():
        return math.nan
    return float(np.median(np.abs(real[keep] - req[keep]) / req[keep]))


def density_sweep(control: DensityControl, count: int, floor: float = 1.0) -> list[float]:
    """`count` requested densities spread evenly over the whole range the model advertises
    (its knob's range), from `floor` up (a relative error needs a request above zero)."""
    low = min(max(control.minimum, floor), control.maximum)
    return sorted({round(float(v), 1) for v in np.linspace(low, control.maximum, max(1, count))})


def per_request_errors(
    requested: Sequence[float], realised: Sequence[float]
) -> list[dict[str, float]]:
    """For each distinct request: the median realised density and its relative error."""
    req, real = np.asarray(requested, dtype=np.float64), np.asarray(realised, dtype=np.float64)
    rows = []
    for value in sorted(set(req.tolist())):
        got = float(np.median(real[req == value]))
        rows.append({"requested": value, "realised_median": got,
                     "rel_error": abs(got - value) / value if value > 0 else math.nan})
    return rows


def realised_densities(
    codec: Codec, control: DensityControl, bars: Sequence[Sequence[int]]
) -> list[float]:
    """Onsets per 4/4 bar of each generated bar, measured as training labels are: the bars are
    decoded together (so a hit pushed early still belongs to its bar) and passed to
    `DensityControl.extract`; bars past the last note count as empty."""
    tokens = [t for bar in bars for t in bar]
    measured = control.extract(codec.decode(tokens)) if tokens else []
    padded = [*measured[: len(bars)], *[0.0] * max(0, len(bars) - len(measured))]
    return [float(v) for v in padded]


# --- memorisation ------------------------------------------------------------------------


def bar_key(tokens: Sequence[int] | npt.ArrayLike) -> bytes:
    """An exact, hashable key of one bar's token ids."""
    return np.asarray(tokens, dtype=np.int32).tobytes()


@dataclass
class BarIndex:
    """Where each distinct training bar occurs: bar key -> global bar positions, with the
    positions that open a piece (a copied run never crosses from one piece into the next).

    Bars shorter than `min_tokens` (by default an empty bar, a lone BAR) are not indexed: a
    run of silence is no evidence of memorisation, so such a bar never counts as copied.
    """

    positions: dict[bytes, list[int]] = field(default_factory=dict)
    piece_starts: set[int] = field(default_factory=set)
    total: int = 0
    min_tokens: int = 2

    def add_piece(self, bars: Iterable[Sequence[int] | npt.NDArray[np.int32]]) -> None:
        self.piece_starts.add(self.total)
        for bar in bars:
            if len(bar) >= self.min_tokens:
                self.positions.setdefault(bar_key(bar), []).append(self.total)
            self.total += 1

    @classmethod
    def from_pieces(
        cls, pieces: Iterable[Sequence[Sequence[int]]], min_tokens: int = 2
    ) -> BarIndex:
        index = cls(min_tokens=min_tokens)
        for piece in pieces:
            index.add_piece(piece)
        return index

    @classmethod
    def from_dataset(
        cls, data: PreparedDataset, split: str = "train", min_tokens: int = 2
    ) -> BarIndex:
        index = cls(min_tokens=min_tokens)
        offsets = data.bar_offsets
        for piece in data.split(split):
            lo = piece.first_bar
            index.add_piece(
                data.tokens[offsets[b] : offsets[b + 1]] for b in range(lo, lo + piece.num_bars)
            )
        return index

    def contains(self, bar: Sequence[int]) -> bool:
        return bar_key(bar) in self.positions

    def longest_copied_run(self, bars: Sequence[Sequence[int]]) -> int:
        """The longest run of consecutive bars that also occur consecutively in one training
        piece (dynamic programming over matching positions, as longest common substring)."""
        best = 0
        previous: dict[int, int] = {}
        for bar in bars:
            current: dict[int, int] = {}
            for pos in self.positions.get(bar_key(bar), ()):
                run = 1 if pos in self.piece_starts else previous.get(pos - 1, 0) + 1
                current[pos] = run
                best = max(best, run)
            previous = current
        return best
