"""A model on disk: one folder with config.json, tokenizer.json, model.safetensors and card.md.

Weights are safetensors, never pickle. `config.json` holds the model family's config plus what
the controls need (part, genre labels, density bin edges) so the live knob means what the
model was trained on. Shipped models live in `models/` (see musegen.paths).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from musegen.models import Generator, build_generator, config_to_dict
from musegen.music.controls import DensityControl, GenreControl
from musegen.music.genres import PartName
from musegen.music.tokenizer import Codec, load_tokenizer_config, save_tokenizer_config
from musegen.paths import models_dir

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.md"


@dataclass
class ModelMeta:
    name: str
    part: PartName
    genres: tuple[str, ...]
    density_edges: tuple[float, ...]
    density_range: tuple[float, float]
    version: str = "0.1.0"
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    # generation defaults chosen for this model on the validation split (its card says how),
    # e.g. {"density_steering": 3.0}; what a caller sets explicitly wins
    sampling: dict[str, float] = field(default_factory=dict)
    # genre -> the median onsets per bar of that genre's training bars: where the density
    # starts when a player picks the genre and has not set a density
    density_defaults: dict[str, float] = field(default_factory=dict)

    def default_density(self, genre: str) -> float:
        """The genre's median density in the training data, else the middle of the range."""
        lo, hi = self.density_range
        found = self.density_defaults.get(genre)
        return (lo + hi) / 2 if found is None else min(max(float(found), lo), hi)

    @property
    def genre_control(self) -> GenreControl:
        return GenreControl(self.part, self.genres)

    @property
    def density_control(self) -> DensityControl:
        base = DensityControl.for_part(self.part)
        return DensityControl(
            self.part, self.density_edges, self.density_range[0], self.density_range[1],
            base.grid_ticks,
        )


@dataclass
class LoadedModel:
    model: Generator[Any]
    codec: Codec
    meta: ModelMeta
    folder: Path

    @property
    def family(self) -> str:
        return str(self.model.config.family)


def save_model(
    folder: str | os.PathLike[str], model: Generator[Any], codec: Codec, meta: ModelMeta
) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(folder / WEIGHTS_FILE))
    save_tokenizer_config(codec, folder)
    config = {
        "name": meta.name, "version": meta.version, "part": meta.part,
        "genres": list(meta.genres), "density_edges": list(meta.density_edges),
        "density_range": list(meta.density_range), "metrics": meta.metrics,
        "training": meta.training, "sampling": meta.sampling,
        "density_defaults": meta.density_defaults,
        "model": config_to_dict(model.config),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def read_meta(folder: str | os.PathLike[str]) -> tuple[ModelMeta, dict[str, Any]]:
    """The control metadata and the model config dict of a model folder."""
    raw = json.loads((Path(folder) / CONFIG_FILE).read_text())
    meta = ModelMeta(
        raw["name"], raw["part"], tuple(raw["genres"]), tuple(raw["density_edges"]),
        (float(raw["density_range"][0]), float(raw["density_range"][1])),
        raw.get("version", "0.1.0"), raw.get("metrics", {}), raw.get("training", {}),
        {k: float(v) for k, v in raw.get("sampling", {}).items()},
        {k: float(v) for k, v in raw.get("density_defaults", {}).items()},
    )
    return meta, raw["model"]


def load_model(name_or_folder: str | os.PathLike[str], device: str = "cpu") -> LoadedModel:
    folder = resolve_model(name_or_folder)
    meta, model_config = read_meta(folder)
    model = build_generator(model_config)
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE), device=device))
    model.to(device).eval()
    return LoadedModel(model, load_tokenizer_config(folder), meta, folder)


def resolve_model(name_or_folder: str | os.PathLike[str]) -> Path:
    """A shipped model by name, or a folder path."""
    path = Path(name_or_folder)
    if (path / CONFIG_FILE).is_file():
        return path
    shipped = models_dir() / str(name_or_folder)
    if (shipped / CONFIG_FILE).is_file():
        return shipped
    known = ", ".join(m.name for m, _ in shipped_models()) or "none"
    raise FileNotFoundError(f"no model {str(name_or_folder)!r}: shipped models are {known}")


def shipped_models() -> list[tuple[ModelMeta, dict[str, Any]]]:
    out = []
    for config in sorted(models_dir().glob(f"*/{CONFIG_FILE}")):
        out.append(read_meta(config.parent))
    return out


