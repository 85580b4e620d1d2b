"""The package list, discovered so that no package can be left out of the wheel.

Everything else is in pyproject.toml. Discovery finds every package under musegen/ and
bridges/ (never bench/ or tests/); the two data folders at the top of the repo, models/ and
web/, install as musegen._models and musegen._web (see package-dir there).
"""

from __future__ import annotations

from setuptools import find_packages, setup

SHIPPED = ["musegen", "musegen.*", "bridges", "bridges.*"]
DATA_PACKAGES = ["musegen._models", "musegen._web"]

setup(packages=find_packages(include=SHIPPED) + DATA_PACKAGES)
