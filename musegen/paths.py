"""Where the shipped assets are: `models/` (checkpoints) and `web/` (the browser client).

In a source checkout or an editable install they are the repository's own folders; after
`pip install .` they are package data installed as `musegen._models` and `musegen._web`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _asset_dir(package: str, repo_folder: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / repo_folder


def models_dir() -> Path:
    return _asset_dir("musegen._models", "models")


def web_dir() -> Path:
    return _asset_dir("musegen._web", "web")
