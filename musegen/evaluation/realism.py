"""Realism beside control: how close generated windows are to real ones, after Yang and Lerch
(2018), "On the evaluation of generative models in music" (the MGEval toolbox).

For one feature and two sets of windows, real R and other O: the intra-set distances of R (every
pair of real windows) and the inter-set distances (every real window against every other one)
are two distributions; their overlapped area (OA, the integral of the smaller of the two
densities, each a Gaussian kernel density estimate) is 1 when O is spread around R as R is
around itself, and falls toward 0 as O drifts away. The same run reports two references:

* real against real: O is other real pieces of the genre (the training split's windows against
  the validation split's): the ceiling a model can reach;
* shuffled bars: O is windows of bars drawn at random from the whole validation split, any
  genre, any piece: real bars with no piece and no genre behind them, the floor.

Features per window (MGEval's, with drums read as drums): a class histogram (the 12 pitch
classes; for drums the 9 drum classes), a note-length histogram (melody only: 16ths, 1..12,
longer pooled; drum notes have no length to speak of), the mean inter-onset interval in beats
and the onsets per bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from musegen.music.drum_map import NUM_DRUM_CLASSES, drum_class
from musegen.music.genres import PartName
from musegen.music.score import Score
from musegen.music.timing import PPQN

FloatArray = npt.NDArray[np.float64]
MAX_WINDOWS = 200  # per set: 200 x 200 distances is plenty for a density estimate
GRID = 256  # points the two densities are compared on
_LENGTH_BINS = 12
_SIXTEENTH = PPQN // 4


def feature_names(part: PartName) -> tuple[str, ...]:
    if part == "drums":
        return ("drum_class", "ioi", "onsets_per_bar")
    return ("pitch_class", "note_length", "ioi", "onsets_per_bar")


def window_features(score: Score, part: PartName, bars: int) -> dict[str, FloatArray]:
    """Each feature of one decoded window of `bars` bars, as a vector (a scalar is length 1)."""
    notes = sorted(score.notes, key=lambda n: n.start)
    if part == "drums":
        classes = [c for n in notes if (c := drum_class(n.pitch)) is not None]
        hist = np.bincount(classes, minlength=NUM_DRUM_CLASSES).astype(np.float64)
        out = {"drum_class": hist / max(hist.sum(), 1.0)}
    else:
        pcs = np.bincount([n.pitch % 12 for n in notes], minlength=12).astype(np.float64)
        lengths = [min(max(round((n.end - n.start) / _SIXTEENTH), 1), _LENGTH_BINS) - 1
                   for n in notes]
        nl = np.bincount(lengths, minlength=_LENGTH_BINS).astype(np.float64)
        out = {"pitch_class": pcs / max(pcs.sum(), 1.0), "note_length": nl / max(nl.sum(), 1.0)}
    onsets = np.unique([n.start for n in notes])
    ioi = float(np.diff(onsets).mean()) / PPQN if len(onsets) > 1 else 0.0
    out["ioi"] = np.array([ioi])
    out["onsets_per_bar"] = np.array([len(notes) / max(bars, 1)])
    return out


def overlapped_area(a: FloatArray, b: FloatArray) -> float:
    """The overlapped area of the Gaussian KDEs of two samples (Scott's bandwidth each)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    span = hi - lo if hi > lo else 1.0
    grid = np.linspace(lo - 0.25 * span, hi + 0.25 * span, GRID)
    pa, pb = _kde(a, grid), _kde(b, grid)
    return float(np.clip(np.trapezoid(np.minimum(pa, pb), grid), 0.0, 1.0))


def _kde(sample: FloatArray, grid: FloatArray) -> FloatArray:
    spread = sample.std()
    width = max(spread, 1e-3) * len(sample) ** -0.2  # Scott's rule in one dimension
    z = (grid[:, None] - sample[None, :]) / width  # [grid, sample]
    density: FloatArray = np.exp(-0.5 * z * z).sum(axis=1) / (len(sample) * width
                                                              * np.sqrt(2 * np.pi))
    return density


def realism(
    real: Sequence[dict[str, FloatArray]], other: Sequence[dict[str, FloatArray]],
    names: Sequence[str],
) -> dict[str, float]:
    """Per feature, the OA of the intra-set distances of `real` and the distances from each
    `other` window to each real one."""
    out = {}
    for name in names:
        r = np.stack([w[name] for w in real])  # [real windows, feature size]
        o = np.stack([w[name] for w in other])  # [other windows, feature size]
        intra = np.linalg.norm(r[:, None] - r[None, :], axis=-1)[np.triu_indices(len(r), 1)]
        inter = np.linalg.norm(o[:, None] - r[None, :], axis=-1).ravel()
        out[name] = overlapped_area(intra, inter)
    return out


def thin(items: Sequence[dict[str, FloatArray]], limit: int = MAX_WINDOWS
         ) -> list[dict[str, FloatArray]]:
    """At most `limit` items, evenly spaced (deterministic)."""
    if len(items) <= limit:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit)]
