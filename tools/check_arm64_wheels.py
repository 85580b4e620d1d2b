"""Can pip install musegen on a Raspberry Pi from wheels alone? (`make check-arm64-wheels`)

Asks pip to resolve every runtime dependency in pyproject.toml for 64-bit Raspberry Pi OS
(Bookworm: CPython 3.11, glibc 2.36) as manylinux_2_28_aarch64 — with the older manylinux
tags a 2_28 system also takes, since pip does not add them itself — with
`--only-binary=:all:`: a dependency that would need compiling on the Pi (an sdist only)
fails the check, naming it. Downloads into a temporary folder and keeps nothing.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "3.11"  # Raspberry Pi OS Bookworm's
GLIBC_MINORS = range(17, 29)  # manylinux_2_17 (= manylinux2014) .. manylinux_2_28


def platforms() -> list[str]:
    tags = [f"manylinux_2_{m}_aarch64" for m in reversed(GLIBC_MINORS)]
    return [*tags, "manylinux2014_aarch64"]


def main() -> int:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(deps) + "\n")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", tmp,
               "--only-binary=:all:", "--python-version", PYTHON, "--implementation", "cp",
               *(arg for p in platforms() for arg in ("--platform", p)),
               "-r", str(requirements)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(p.name for p in Path(tmp).glob("*.whl"))
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "WARNING: Location" not in line]
        print("arm64 wheels: FAILED, no aarch64 wheel for:\n" + "\n".join(errors[-5:]))
        return 1
    native = [w for w in wheels if "aarch64" in w]
    print(f"arm64 wheels: OK, {len(wheels)} wheels for CPython {PYTHON} on "
          f"manylinux_2_28_aarch64 ({len(native)} compiled, the rest pure Python):")
    for wheel in wheels:
        print(f"  {wheel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
