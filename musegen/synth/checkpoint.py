"""A synth on disk: `synth.json` (config, instruments, figures), `model.safetensors`, `card.md`.

The config file is named synth.json, not config.json, so the note-model catalogue never
mistakes a synth for a note model; `shipped_synths` lists these folders.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from musegen.paths import models_dir
from musegen.synth.model import SynthConfig, SynthNet
from musegen.synth.spec import INSTRUMENTS

CONFIG_FILE = "synth.json"
WEIGHTS_FILE = "model.safetensors"


class SynthNotFound(Exception):
    pass


@dataclass
class SynthMeta:
    name: str
    config: SynthConfig
    instruments: tuple[str, ...]
    version: str = "0.1.0"
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "part": "audio", "family": "synth-wavenet",
                "version": self.version, "config": self.config.to_dict(),
                "instruments": list(self.instruments), "metrics": self.metrics,
                "training": self.training}


def save_synth(folder: Path, model: SynthNet, meta: SynthMeta) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(weights, str(tmp))
    os.replace(tmp, folder / WEIGHTS_FILE)
    text = json.dumps(meta.to_json(), indent=2) + "\n"
    (folder / (CONFIG_FILE + ".tmp")).write_text(text)
    os.replace(folder / (CONFIG_FILE + ".tmp"), folder / CONFIG_FILE)


def read_synth_meta(folder: Path) -> SynthMeta:
    d = json.loads((folder / CONFIG_FILE).read_text())
    return SynthMeta(d["name"], SynthConfig.from_dict(d["config"]), tuple(d["instruments"]),
                     d.get("version", "0.1.0"), d.get("metrics", {}), d.get("training", {}))


def load_synth(name_or_path: str | Path) -> tuple[SynthNet, SynthMeta]:
    folder = resolve_synth(name_or_path)
    meta = read_synth_meta(folder)
    if meta.instruments != tuple(i.name for i in INSTRUMENTS):
        raise SynthNotFound(f"{folder}: trained on other instruments than this musegen's")
    model = SynthNet(meta.config)
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    model.eval()
    return model, meta


def resolve_synth(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if (path / CONFIG_FILE).is_file():
        return path
    shipped = models_dir() / str(name_or_path)
    if (shipped / CONFIG_FILE).is_file():
        return shipped
    names = ", ".join(m.name for m in shipped_synths()) or "none"
    raise SynthNotFound(f"no synth named {name_or_path!r} (shipped: {names})")


def shipped_synths() -> list[SynthMeta]:
    return [read_synth_meta(c.parent) for c in sorted(models_dir().glob(f"*/{CONFIG_FILE}"))]
