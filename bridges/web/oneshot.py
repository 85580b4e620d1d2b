"""One-shot generation for the REST API: a few bars from a shipped model, off the live path.

The same pieces as `musegen generate` (a BarGenerator under fixed controls, decoded to a
Score), but from memory to memory. Models stay loaded (a few, least recently used go);
one request generates at a time, so a burst of requests cannot starve the live engine of
every core.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from musegen.checkpoint import LoadedModel, load_model, shipped_models
from musegen.generation.generator import BarGenerator, Controls
from musegen.generation.sampling import SamplingConfig
from musegen.music.midi_io import save_score
from musegen.music.score import Score

KEPT_MODELS = 3


class UnknownModel(LookupError):
    """No such shipped model, or no such genre in it."""


@dataclass(frozen=True)
class Request:
    model: str
    genre: str | None
    density: float | None
    temperature: float
    top_k: int
    top_p: float
    bars: int
    tempo_bpm: float
    seed: int


@dataclass(frozen=True)
class Result:
    model: str
    genre: str
    density: float
    score: Score


class OneShot:
    def __init__(self) -> None:
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def shipped_names() -> list[str]:
        return [meta.name for meta, _ in shipped_models()]

    def _model(self, name: str) -> LoadedModel:
        if name in self._models:
            self._models.move_to_end(name)
            return self._models[name]
        if name not in self.shipped_names():  # never a path: the API reads no user's files
            raise UnknownModel(f"no shipped model {name!r}")
        loaded = load_model(name)
        self._models[name] = loaded
        while len(self._models) > KEPT_MODELS:
            self._models.popitem(last=False)
        return loaded

    def generate(self, r: Request) -> Result:
        """UnknownModel for a model or genre that is not there. The density is clamped into
        the model's range (as a live part does), the result says which was used."""
        with self._lock:
            loaded = self._model(r.model)
            meta = loaded.meta
            genre = (r.genre or meta.genres[0]).strip().lower()
            if genre not in meta.genres:
                raise UnknownModel(f"model {meta.name!r} has no genre {r.genre!r}; it has "
                                   f"{', '.join(meta.genres)}")
            lo, hi = meta.density_range
            density = (lo + hi) / 2 if r.density is None else min(max(r.density, lo), hi)
            controls = Controls(genre, meta.density_control.validate(density))
            sampling = SamplingConfig(r.temperature, r.top_k, r.top_p)
            tokens = BarGenerator(loaded, sampling, seed=r.seed).generate(r.bars, controls)
            score = loaded.codec.decode(tokens, bpm=r.tempo_bpm)
        return Result(meta.name, controls.genre, controls.density, score)


def midi_bytes(score: Score) -> bytes:
    """The score as a standard MIDI file (written the way `musegen generate` writes one)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "oneshot.mid"
        save_score(score, path)
        return path.read_bytes()
