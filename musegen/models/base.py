"""The streaming interface shared by every generator family, plus configs and the registry.

Models see token ids and condition ids only (no MIDI knowledge):

* ``tokens``  [B, T] long: the input sequence; the model predicts the next token everywhere.
* ``genre``   [B] long: one label per sequence (global condition).
* ``density`` [B, T] long: the density BIN of the bar each input token belongs to (local
  condition; the caller computes it).

``forward`` scores a whole sequence (training); ``start_stream``/``step`` generate one token at
a time with an explicit, per-family :class:`StreamState` so that a step costs one column of
compute, not a pass over the history.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn


@dataclass
class GeneratorConfig:
    """Fields every family needs; subclasses add their hyper-parameters (with defaults)."""

    family: ClassVar[str] = "base"
    vocab_size: int
    num_genres: int
    num_density_bins: int


@dataclass
class StreamState:
    """Base of the per-family streaming states.

    ``step`` updates its state IN PLACE (preallocated buffers, no per-step allocation of the
    history) and returns it; call :meth:`clone` first to branch a stream (beam search, undo),
    :meth:`reset` to start it over in place. The compiled runtime's states offer the same two
    (``musegen.runtime.state.StreamingState``).
    """

    def clone(self) -> StreamState:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                value = value.clone()
            elif isinstance(value, list):
                value = [v.clone() if isinstance(v, Tensor) else v for v in value]
            values[f.name] = value
        return dataclasses.replace(self, **values)

    @torch.inference_mode()  # the buffers are inference tensors (made by start_stream)
    def reset(self) -> None:
        """Back to the state ``start_stream`` gave (every buffer zero, position 0), in place."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            tensors = value if isinstance(value, list) else [value]
            for t in tensors:
                if isinstance(t, Tensor):
                    t.zero_()
            if isinstance(value, int):
                setattr(self, f.name, 0)


S = TypeVar("S", bound=StreamState)


class ConditionEmbedding(nn.Module):
    """Sum of a learned genre embedding (global) and a density-bin embedding (local).

    ``dim`` may pack several per-layer vectors (``layers * d``) so that one lookup serves the
    whole stack; callers view the result as [..., layers, d].
    """

    def __init__(self, num_genres: int, num_density_bins: int, dim: int) -> None:
        super().__init__()
        self.genre = nn.Embedding(num_genres, dim)
        self.density = nn.Embedding(num_density_bins, dim)

    def forward(self, genre: Tensor, density: Tensor) -> Tensor:
        """genre [B], density [B, T] -> [B, T, dim]; or density [B] -> [B, dim] (one step)."""
        g = self.genre(genre)  # [B, dim]
        if density.dim() == 2:
            g = g.unsqueeze(1)  # [B, 1, dim], broadcast over time
        out: Tensor = g + self.density(density)
        return out


def check_inputs(tokens: Tensor, genre: Tensor, density: Tensor) -> None:
    """Shape checks for ``forward``: mistakes here would otherwise broadcast silently."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be [B, T], got shape {tuple(tokens.shape)}")
    if genre.shape != tokens.shape[:1]:
        raise ValueError(f"genre must be [B]={tokens.shape[0]}, got {tuple(genre.shape)}")
    if density.shape != tokens.shape:
        raise ValueError(
            f"density must match tokens {tuple(tokens.shape)}, got {tuple(density.shape)}"
        )


class Generator(nn.Module, ABC, Generic[S]):
    """A next-token model with a streaming (one token at a time) inference path."""

    config: GeneratorConfig

    @abstractmethod
    def forward(self, tokens: Tensor, genre: Tensor, density: Tensor) -> Tensor:
        """tokens [B, T], genre [B], density [B, T] -> next-token logits [B, T, V]."""

    @abstractmethod
    def start_stream(self, batch_size: int) -> S:
        """A fresh state: the stream is empty, the next ``step`` gets position 0."""

    @abstractmethod
    def step(self, token: Tensor, genre: Tensor, density: Tensor, state: S) -> tuple[Tensor, S]:
        """token [B], genre [B], density [B] -> (logits [B, V] for the next token, state).

        Equals ``forward`` on the whole sequence so far (in eval mode: no dropout here).
        """

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.parameters())
        return p.device, p.dtype


# family name -> (config class, model class); filled by ``register_family`` in each module.
family_registry: dict[str, tuple[type[GeneratorConfig], type[Generator[Any]]]] = {}

G = TypeVar("G", bound=type[Generator[Any]])


def register_family(config_cls: type[GeneratorConfig]) -> Any:
    """Class decorator: ``@register_family(LSTMConfig) class LSTMGenerator(...)``."""

    def wrap(model_cls: G) -> G:
        family_registry[config_cls.family] = (config_cls, model_cls)
        return model_cls

    return wrap


def config_to_dict(config: GeneratorConfig) -> dict[str, Any]:
    """JSON-able dict (tuples become lists) with the family name, saved with checkpoints."""
    out: dict[str, Any] = {"family": config.family}
    for key, value in dataclasses.asdict(config).items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def config_from_dict(data: dict[str, Any]) -> GeneratorConfig:
    """Inverse of :func:`config_to_dict`; unknown keys are an error (stale checkpoint)."""
    fields = dict(data)
    family = fields.pop("family", None)
    if family not in family_registry:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(family_registry)}")
    config_cls = family_registry[family][0]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown {family} config keys: {unknown}")
    # JSON has no tuples; every sequence field of the configs is a tuple.
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return config_cls(**fields)


def build_generator(config: dict[str, Any] | GeneratorConfig) -> Generator[Any]:
    """A fresh (randomly initialised) model for a config dict or config object."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    if config.family not in family_registry:
        raise ValueError(f"unknown model family {config.family!r}")
    return family_registry[config.family][1](config)
