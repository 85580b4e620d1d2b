"""The catalogue of shipped models, one row per model: what `musegen models` and the REST
API both list. Note models first, then the neural synths (part "audio": no genres and no
density, but the instruments they play)."""

from __future__ import annotations

from typing import Any

from musegen.checkpoint import shipped_models
from musegen.synth.checkpoint import shipped_synths


def models_json() -> list[dict[str, Any]]:
    """Name, version, family, part, genres, density range, size and metrics of each model."""
    out = []
    for meta, model_config in shipped_models():
        out.append({
            "name": meta.name, "version": meta.version, "family": model_config["family"],
            "part": meta.part, "genres": list(meta.genres),
            "density_range": list(meta.density_range),
            "params": meta.training.get("params"), "metrics": meta.metrics,
        })
    for synth in shipped_synths():
        row = synth.to_json()
        out.append({
            "name": row["name"], "version": row["version"], "family": row["family"],
            "part": "audio", "genres": [], "density_range": [],
            "instruments": row["instruments"], "params": synth.training.get("params"),
            "metrics": synth.metrics,
        })
    return out
