"""Training examples: windows of bars as token sequences with per-token condition ids.

A sequence is BOS followed by the window's tokens. Each input position carries the density bin
of the bar its token belongs to (a BAR token belongs to the bar it opens; BOS to the first
bar), so after the model reads BAR it sees the new bar's density: a live change takes effect
from the next bar. The genre is one id per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from musegen.data.prepared import PreparedDataset
from musegen.music.controls import DensityControl, GenreControl
from musegen.music.special_tokens import BOS, PAD

IntArray = npt.NDArray[np.int64]


@dataclass
class ExampleSet:
    tokens: list[IntArray]  # each: [BOS, window tokens...]
    density: list[IntArray]  # same length as tokens: density bin per position
    genre: IntArray  # [N]
    bars: int
    _by_length: IntArray | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def similar_lengths(self, rng: np.random.Generator, size: int) -> IntArray:
        """A random batch of windows of similar length, so little of the batch is padding.

        Windows sorted by length are cut at a random offset: every window can be drawn, and a
        batch rarely pads more than a few tokens (about half the compute otherwise).
        """
        if self._by_length is None:
            self._by_length = np.argsort([len(t) for t in self.tokens], kind="stable")
        start = int(rng.integers(0, max(1, len(self) - size + 1)))
        return self._by_length[start : start + size]


def build_examples(
    datasets: list[PreparedDataset],
    split: str,
    bars: int,
    hop: int,
    density: DensityControl,
    genres: GenreControl,
    max_len: int,
    max_per_genre: int = 0,
    seed: int = 0,
) -> ExampleSet:
    """Every window of `bars` bars in the split, cut to at most `max_len` + 1 tokens.

    `max_per_genre` > 0 keeps a seeded random subset of at most that many windows per genre,
    so one big set (POP909 is two thirds of the melodic bars) does not drown the genre signal.
    """
    edges = np.asarray(density.edges)
    tokens, dens, genre = [], [], []
    for data in datasets:
        for w in data.windows(bars, hop, split):
            bar_of_token = np.searchsorted(w.bar_starts, np.arange(len(w.tokens)), side="right") - 1
            bins = np.searchsorted(edges, w.densities, side="right")  # == density.to_bin
            seq = np.concatenate([[BOS], w.tokens])[: max_len + 1].astype(np.int64)
            per_token = np.concatenate([[bins[0]], bins[bar_of_token]])[: max_len + 1]
            tokens.append(seq)
            dens.append(per_token.astype(np.int64))
            genre.append(genres.index(w.piece.genre))
    keep = _cap_per_genre(np.asarray(genre, dtype=np.int64), max_per_genre, seed)
    return ExampleSet(
        [tokens[i] for i in keep], [dens[i] for i in keep],
        np.asarray(genre, dtype=np.int64)[keep], bars,
    )


def _cap_per_genre(genre: IntArray, cap: int, seed: int) -> IntArray:
    if cap <= 0:
        return np.arange(len(genre))
    rng = np.random.default_rng(seed)
    keep = []
    for g in np.unique(genre):
        members = np.flatnonzero(genre == g)
        if len(members) > cap:
            members = np.sort(rng.choice(members, cap, replace=False))
        keep.append(members)
    return np.sort(np.concatenate(keep)) if keep else np.arange(0)


def collate(
    examples: ExampleSet, indices: npt.NDArray[np.int64]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs [B,T], targets [B,T], genre [B], density [B,T]); targets padded with PAD."""
    length = max(len(examples.tokens[i]) for i in indices) - 1
    inputs = np.full((len(indices), length), PAD, dtype=np.int64)
    targets = np.full((len(indices), length), PAD, dtype=np.int64)
    density = np.zeros((len(indices), length), dtype=np.int64)
    for row, i in enumerate(indices):
        seq, dens = examples.tokens[i], examples.density[i]
        n = len(seq) - 1
        inputs[row, :n], targets[row, :n], density[row, :n] = seq[:-1], seq[1:], dens[:-1]
    return (
        torch.from_numpy(inputs),
        torch.from_numpy(targets),
        torch.from_numpy(examples.genre[indices]),
        torch.from_numpy(density),
    )
