"""The catalogue of shipped models, one row per model: what `musegen models` and the REST
API both list."""

from __future__ import annotations

from typing import Any

from musegen.checkpoint import shipped_models


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
    return out
