"""The inference runtime: the same ``start_stream``/``step`` interface as the torch models, on
numpy arrays, with each step one compiled call (runtime/kernels.py) on preallocated buffers.

Why: at batch 1 these models are small (about 1M parameters), so a torch step is dominated by
per-operator dispatch (about 5-10 us per op, dozens of ops per layer), not by arithmetic. The
weights are folded into step tables once (embedding rows projected, biases and condition
vectors merged), and the step runs as one numba-compiled loop nest, so only the arithmetic
is left. ``musegen bench`` measures both paths in the same run; the engine (``BarGenerator``)
steps this one, the faster for every shipped model.

The torch model stays the reference: training, ``forward`` and the 1e-5 streaming tests use it,
and each runtime is tested against it. Inputs are int arrays (or CPU tensors) of shape [B];
logits come back as a fresh float32 tensor [B, V], so callers need not know which path ran.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import Tensor

from musegen.runtime.state import CompiledState

S = TypeVar("S", bound=CompiledState)
Array = np.ndarray[Any, Any]


def to_numpy(t: Tensor) -> np.ndarray[Any, Any]:
    """A float32, C-contiguous copy of a parameter (the runtime never aliases torch storage)."""
    return np.ascontiguousarray(t.detach().to(device="cpu", dtype=torch.float32).numpy())


def as_ids(x: Tensor | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """[B] token or condition ids as an int64 array without copying a CPU tensor."""
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.int64)


def with_mean_genre(table: Array) -> Array:
    """A per-(genre, ...) table [G, ...] with one more row, index G: the average over genres.

    Every condition enters a model linearly (an embedding row, then matmuls and adds), so the
    mean of the tables is the table of the mean genre embedding: a "no particular genre"
    condition, the contrast that genre guidance steers away from (generation/generator.py).
    """
    return np.ascontiguousarray(np.concatenate([table, table.mean(axis=0, keepdims=True)]))


def condition_table(embedding: Any) -> Array:
    """A ConditionEmbedding as one table [G + 1, D, dim] (genre row + density row for every
    pair, plus the mean genre, see `with_mean_genre`)."""
    genre = to_numpy(embedding.genre.weight)  # [G, dim]
    density = to_numpy(embedding.density.weight)  # [D, dim]
    return with_mean_genre(genre[:, None, :] + density[None, :, :])


class CompiledStreamer(ABC, Generic[S]):
    """A compiled, inference-only copy of a generator's streaming path."""

    family: str = "base"
    runtime: str = "numba"  # what runs the step, as `musegen bench` reports it
    vocab_size: int

    @abstractmethod
    def start_stream(self, batch_size: int) -> S:
        """A fresh state: the stream is empty, the next ``step`` gets position 0.

        Branch a stream with ``state.clone()``; ``state.reset()`` makes it fresh again in place
        (runtime/state.py)."""

    @abstractmethod
    def step_numpy(
        self, token: np.ndarray[Any, Any], genre: np.ndarray[Any, Any],
        density: np.ndarray[Any, Any], state: S,
    ) -> np.ndarray[Any, Any]:
        """ids [B] each -> logits [B, V] (a buffer of the state: read it before the next step)."""

    def prefill(
        self, tokens: Array, genres: Array, densities: Array, state: S
    ) -> Array:
        """Feed a whole run of inputs [T] to a batch-1 stream; -> logits [1, V] after the last.

        Step by step here; a family whose state can be filled in one pass overrides it (a
        re-primed Transformer context costs one batched pass, not hundreds of steps).
        """
        logits = None
        for t in range(len(tokens)):
            logits = self.step_numpy(tokens[t : t + 1], genres[t : t + 1], densities[t : t + 1],
                                     state)
        if logits is None:
            raise ValueError("prefill needs at least one token")
        return logits

    def step(
        self, token: Tensor | np.ndarray[Any, Any], genre: Tensor | np.ndarray[Any, Any],
        density: Tensor | np.ndarray[Any, Any], state: S,
    ) -> tuple[Tensor, S]:
        """Same contract as ``Generator.step``: (logits [B, V], state), state updated in place."""
        logits = self.step_numpy(as_ids(token), as_ids(genre), as_ids(density), state)
        return torch.from_numpy(logits.copy()), state
