"""Training configuration, read from a TOML file (see configs/)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from musegen.music.genres import PartName


@dataclass
class TrainConfig:
    name: str
    part: PartName
    family: str
    preset: str = "small"
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the preset
    data: list[str] = field(default_factory=list)
    window_bars: int = 2
    hop_bars: int = 1
    max_len: int = 512
    max_windows_per_genre: int = 0  # 0: all training windows
    batch_size: int = 32
    steps: int = 2000
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_batches: int = 16
    checkpoint_every: int = 250
    seed: int = 1234
    threads: int = 0  # 0: torch's default

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        raw = tomllib.loads(Path(path).read_text())
        flat: dict[str, Any] = {k: v for k, v in raw.items() if k != "train"}
        flat.update(raw.get("train", {}))
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(flat) - known):
            raise ValueError(f"{path}: unknown keys {unknown}; known are {sorted(known)}")
        return cls(**flat)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
