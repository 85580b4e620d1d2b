"""A small genre classifier on hand-made features of decoded windows, to judge genre control.

It is trained on real training windows and checked on real validation windows
(`accuracy_real`); a generated window conditioned on genre g "adheres" when it is classified as
g. Features are read from the decoded Score, so they see what a listener would hear:

* drums: hits per bar of each drum class at each 16th position of the bar (9 x 16), mean
  velocity and mean micro-timing offset of each class, and the hits per bar;
* melody: pitch-class histogram, onset position inside the beat (12ths) and beat of the bar,
  onsets per bar, interval histogram (0..12 semitones, larger ones pooled), share of rising
  intervals, and pitch mean/spread, mean duration and velocity.

The model is a multinomial logistic regression in torch with class-balanced loss and standard-
ised features: it trains in well under a second on a few thousand windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from musegen.music.drum_map import NUM_DRUM_CLASSES, drum_class
from musegen.music.genres import PartName
from musegen.music.score import Score
from musegen.music.timing import FOUR_FOUR, PPQN

FloatArray = npt.NDArray[np.float64]
STEPS_PER_BAR = 16  # 16th positions of a 4/4 bar, what the drum features are laid on
_STEP_TICKS = PPQN // 4
_BAR_TICKS = FOUR_FOUR.ticks_per_bar
_MAX_INTERVAL = 12


def features(score: Score, part: PartName, bars: int) -> FloatArray:
    """The feature vector of a decoded window of `bars` bars."""
    return drum_features(score, bars) if part == "drums" else melody_features(score, bars)


def drum_features(score: Score, bars: int) -> FloatArray:
    grid = np.zeros((NUM_DRUM_CLASSES, STEPS_PER_BAR))
    velocity = np.zeros(NUM_DRUM_CLASSES)
    offset = np.zeros(NUM_DRUM_CLASSES)
    for note in score.notes:
        cls = drum_class(note.pitch)
        if cls is None:
            continue
        step = int(np.floor(note.start / _STEP_TICKS + 0.5))
        grid[cls, step % STEPS_PER_BAR] += 1
        velocity[cls] += note.velocity / 127
        offset[cls] += (note.start - step * _STEP_TICKS) / _STEP_TICKS
    counts = grid.sum(axis=1)
    seen = np.maximum(counts, 1)
    per_bar = grid / max(bars, 1)
    return np.concatenate([per_bar.ravel(), velocity / seen, offset / seen,
                           [np.log1p(counts.sum() / max(bars, 1))]])


def melody_features(score: Score, bars: int) -> FloatArray:
    notes = [n for n in score.notes if not n.is_drum]
    n = max(len(notes), 1)
    unit = PPQN // 12
    pitch_class = np.bincount([x.pitch % 12 for x in notes], minlength=12) / n
    in_beat = np.bincount([(x.start // unit) % 12 for x in notes], minlength=12) / n
    beat = np.bincount([(x.start % _BAR_TICKS) // PPQN for x in notes], minlength=4)[:4] / n
    pitches = np.array([x.pitch for x in notes], dtype=np.float64)
    steps = np.diff(pitches) if len(pitches) > 1 else np.zeros(0)
    intervals = np.bincount(np.minimum(np.abs(steps), _MAX_INTERVAL + 1).astype(np.int64),
                            minlength=_MAX_INTERVAL + 2) / max(len(steps), 1)
    rising = float((steps > 0).mean()) if len(steps) else 0.0
    durations = np.array([(x.end - x.start) / PPQN for x in notes]) if notes else np.zeros(1)
    velocities = np.array([x.velocity / 127 for x in notes]) if notes else np.zeros(1)
    shape = [
        np.log1p(len(notes) / max(bars, 1)), rising,
        pitches.mean() / 127 if notes else 0.0, pitches.std() / 12 if notes else 0.0,
        float(np.log1p(durations.mean())), float(velocities.mean()),
    ]
    return np.concatenate([pitch_class, in_beat, beat, intervals, shape])


@dataclass
class GenreClassifier:
    labels: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    weight: torch.Tensor  # [features, labels]
    bias: torch.Tensor  # [labels]

    def predict(self, x: FloatArray) -> list[str]:
        if len(x) == 0:
            return []
        z = torch.from_numpy((np.asarray(x) - self.mean) / self.scale).float()
        with torch.no_grad():
            best = (z @ self.weight + self.bias).argmax(dim=1)
        return [self.labels[int(i)] for i in best]

    def accuracy(self, x: FloatArray, y: Sequence[str]) -> float:
        predicted = self.predict(x)
        return float(np.mean([p == t for p, t in zip(predicted, y, strict=True)]))


def train_classifier(
    x: FloatArray, y: Sequence[str], labels: Sequence[str], steps: int = 300,
    lr: float = 0.05, weight_decay: float = 1e-3,
) -> GenreClassifier:
    """Logistic regression on standardised features, each class weighted by 1 / its count."""
    labels = tuple(labels)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y) or not len(x):
        raise ValueError(f"need one feature row per label, got {x.shape} and {len(y)} labels")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    z = torch.from_numpy((x - mean) / scale).float()
    target = torch.tensor([labels.index(label) for label in y])
    counts = torch.bincount(target, minlength=len(labels)).float()
    class_weight = torch.where(counts > 0, counts.sum() / counts.clamp(min=1), 0.0)
    weight = torch.zeros(z.shape[1], len(labels), requires_grad=True)
    bias = torch.zeros(len(labels), requires_grad=True)
    optimizer = torch.optim.AdamW([weight, bias], lr=lr, weight_decay=weight_decay)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors this small only lose time to threads
    try:
        for _ in range(steps):
            loss = F.cross_entropy(z @ weight + bias, target, weight=class_weight)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return GenreClassifier(labels, mean, scale, weight.detach(), bias.detach())
