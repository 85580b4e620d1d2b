from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real JACK server and its tools, as fixtures any test module can ask for by name.
from tests.jack_rig import jack, jack_tool  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MUSEGEN_DATA", REPO.parent / "shared" / "data"))
GROOVE = DATA / "groove-midi"
FUNK_80 = GROOVE / "drummer1/session1/1_funk_80_beat_4-4.mid"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("JACK_NO_START_SERVER", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not GROOVE.is_dir():
        pytest.fail(f"the shared data is missing: {DATA} (set MUSEGEN_DATA)")
    return DATA


@pytest.fixture(scope="session")
def groove_prepared(data_root: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The whole Groove MIDI Dataset parsed once per test session (about 25 s)."""
    from musegen.data.prepared import prepare

    cache = tmp_path_factory.mktemp("cache")
    return prepare(data_root / "groove-midi", cache_dir=cache, progress=False), cache
