"""The wheel: it ships the models and the web page and finds them; installed (not editable)
into a fresh venv outside the repo, it runs from any folder; it carries no bench or rig code.

The fresh venv borrows this environment's third-party packages through a .pth file, so that
the test needs no index and no second copy of torch; musegen itself comes only from the wheel.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from email.parser import Parser
from importlib.metadata import packages_distributions
from pathlib import Path

import mido
import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO

# the rig and bench modules that once shipped inside bridges/ and musegen/
BENCH_MODULES = {"latency_bench", "bench_analysis", "bench_engine", "clock_masters",
                 "reference_client", "white_clock", "thread_cpu", "jack_tools", "jack_control",
                 "fanout_bench", "bench"}


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
    assert "musegen/cli/main.py" in names and "bridges/__init__.py" in names


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


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its `musegen` script."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return env_dir / "bin" / "musegen"


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240)


def test_the_wheel_carries_no_bench_or_rig_module(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split("/")[0] for n in names if not n.endswith(".dist-info/") and "/" in n}
    assert packages == {"musegen", "bridges", "musegen-0.1.0.dist-info"}
    modules = {Path(n).stem for n in names if n.endswith(".py")}
    assert not modules & BENCH_MODULES
    assert "musegen/runtime/kernels.py" in names  # once forgotten by a hand-written list


def test_installed_program_lists_generates_renders_and_plays_from_another_folder(
        installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = _run(installed, "models", "--json", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert {"drums-lstm", "synth-wavenet"} <= {row["name"] for row in json.loads(listed.stdout)}

    made = _run(installed, "generate", "--model", "drums-lstm", "--genre", "funk", "--bars", "2",
                "--out", "x.mid", cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    midi = mido.MidiFile(elsewhere / "x.mid")
    assert sum(m.type == "note_on" and m.velocity > 0 for m in midi) > 0

    rendered = _run(installed, "render", "x.mid", "--out", "x.wav", "--no-progress",
                    cwd=elsewhere)
    assert rendered.returncode == 0, rendered.stderr
    assert (elsewhere / "x.wav").stat().st_size > 48_000  # over half a second of sound

    live = _run(installed, "live", "--backend", "none", "--no-web", "--seconds", "3",
                "--no-record", cwd=elsewhere)
    assert live.returncode == 0, live.stderr

    helped = _run(installed, "--help", cwd=elsewhere)
    assert " live " in helped.stdout and " bench " not in helped.stdout


def test_the_program_comes_from_the_wheel_not_the_checkout(installed: Path,
                                                           tmp_path: Path) -> None:
    python = installed.parent / "python"
    found = subprocess.run([str(python), "-c", "import musegen, bridges; "
                            "print(musegen.__file__); print(bridges.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    for path in found.stdout.split():
        assert not Path(path).is_relative_to(REPO)
        assert Path(path).is_relative_to(installed.parent.parent)


def _third_party_imports(wheel: Path) -> set[str]:
    """Top-level modules that the wheel's Python files import, other than its own."""
    found: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(zf.read(name))):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"musegen", "bridges", "__future__"}


def test_runtime_dependencies_are_what_the_program_imports(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode())
    required = {Requirement(r).name.lower().replace("_", "-")
                for r in meta.get_all("Requires-Dist") or []
                if "extra ==" not in r}
    by_module = packages_distributions()
    imported = {by_module[m][0].lower().replace("_", "-") for m in _third_party_imports(wheel)}
    assert imported == required
