"""Benchmarks and the JACK test rig: run from a checkout, never shipped in the wheel."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def checkout_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a child `python -m bench...`: the checkout on its path, from any folder."""
    paths = [str(CHECKOUT), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}
