"""`pip install .` (not only editable) ships the models and the web page, and finds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (found,) = out.glob("musegen-*.whl")
    return found


def test_wheel_carries_models_and_web(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped_models = [p.relative_to(REPO / "models").as_posix()
                      for p in (REPO / "models").rglob("*")
                      if p.suffix in {".json", ".md", ".safetensors"}]
    shipped_web = [p.relative_to(REPO / "web").as_posix()
                   for p in (REPO / "web").rglob("*") if p.suffix in {".html", ".js", ".css"}]
    assert shipped_web and any(rel.endswith(".safetensors") for rel in shipped_models)
    for rel in shipped_models:
        assert f"musegen/_models/{rel}" in names
    for rel in shipped_web:
        assert f"musegen/_web/{rel}" in names
    assert "musegen/cli.py" in names and "bridges/__init__.py" in names


def test_installed_package_finds_its_assets_outside_the_repo(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:  # a wheel is installed by unpacking it
        zf.extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-m", "musegen", "paths", "--json"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=True,
    )
    found = {k: Path(v) for k, v in json.loads(result.stdout).items()}
    assert found["models"].is_relative_to(target) and found["web"].is_relative_to(target)
    assert (found["models"] / "README.md").is_file()
    assert (found["web"] / "index.html").is_file()
