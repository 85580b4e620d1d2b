from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def musegen(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "musegen", *args], cwd=cwd, capture_output=True, text=True,
        timeout=600,
    )


def test_help_lists_the_commands() -> None:
    result = musegen("--help")
    assert result.returncode == 0
    assert "data" in result.stdout and "usage: musegen" in result.stdout


def test_data_stats_prints_the_real_groove_counts(groove_prepared, data_root: Path) -> None:
    _, cache = groove_prepared
    result = musegen("data", "stats", str(data_root / "groove-midi"), "--json",
                     "--cache-dir", str(cache), "--no-progress")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    # The data README: 1,021 files, 12.2 h, 897 train / 124 validation, rock 310 + punk 52.
    assert stats["files"] == stats["loaded"] == 1021
    assert abs(stats["hours"] - 12.2) < 0.1
    assert stats["splits"] == {"train": 897, "validation": 124}
    assert stats["genres"]["rock"] == 310 + 52
    assert stats["bars"] > 5000
    assert 10 < stats["density"]["p50"] < 40
    text = musegen("data", "stats", str(data_root / "groove-midi"), "--cache-dir", str(cache),
                   "--no-progress")
    assert "files     1021" in text.stdout and "density" in text.stdout


def test_data_stats_on_a_missing_folder_is_one_clear_line(tmp_path: Path) -> None:
    result = musegen("data", "stats", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("musegen: error:") and "Traceback" not in result.stderr
