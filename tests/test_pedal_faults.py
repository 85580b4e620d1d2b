"""The pedal under a real process supervisor (runit, with the systemd unit's semantics:
restart whatever ended it, at once; systemd itself cannot run here): `kill -9` mid-song, and
it plays again within 3 s, and the killed session's recording keeps every bar but the one
being played."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mido
import pytest

ROOT = Path(__file__).resolve().parent.parent
BPM = 240.0  # a bar a second
PLAYING = "musegen: pedal playing"


class Supervised:
    """runit's `runsv` supervising `musegen pedal` (Debian's runit): like the systemd unit's
    Restart=always it starts the program again the moment it ends, however it ended."""

    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        config = tmp / "pedal.toml"
        config.write_text(f'[engine]\nbpm = {BPM}\n[audio]\nenabled = false\n[midi]\n'
                          f'backend = "none"\n[data]\ndir = "{self.data}"\n')
        self.log = tmp / "pedal.log"
        self.service = tmp / "pedal"
        self.service.mkdir()
        run = self.service / "run"
        run.write_text(f"#!/bin/sh\ncd {ROOT}\nexec {sys.executable} -m bridges pedal "
                       f"--config {config} --data-dir {self.data} >> {self.log} 2>&1\n")
        run.chmod(0o755)
        self.proc = subprocess.Popen(["runsv", str(self.service)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def playing_lines(self) -> int:
        return self.log.read_text().count(PLAYING) if self.log.exists() else 0

    def pid(self) -> int:
        path = self.service / "supervise" / "pid"
        text = path.read_text().strip() if path.exists() else ""
        return int(text) if text.isdigit() else 0

    def stop(self) -> None:
        subprocess.run(["sv", "force-stop", str(self.service)], capture_output=True, timeout=30)
        subprocess.run(["sv", "exit", str(self.service)], capture_output=True, timeout=30)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    if shutil.which("runsv") is None:
        pytest.fail("runit's runsv is not installed (make system-deps installs it)")
    made = Supervised(tmp_path)
    yield made
    made.stop()


def wait_for(condition: object, timeout: float) -> float:
    """Seconds until `condition()` held (pytest.fail after `timeout`)."""
    t0 = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - t0 > timeout:
            pytest.fail("timed out")
        time.sleep(0.02)
    return time.monotonic() - t0


def test_kill_9_is_restarted_and_playing_within_3_s_and_the_take_survives(
        supervised: Supervised) -> None:
    wait_for(lambda: supervised.playing_lines() == 1, 60)
    started = time.monotonic()
    first = supervised.pid()
    assert first > 0
    time.sleep(4.5)  # four bars and a half at 240 BPM
    os.kill(first, signal.SIGKILL)
    killed = time.monotonic()
    back = wait_for(lambda: supervised.playing_lines() == 2, 30)
    print(f"\nrestarted and playing {back:.2f} s after kill -9")
    assert back <= 3.0
    assert supervised.pid() not in (0, first)
    takes = sorted((supervised.data / "sessions").glob("session-*.mid"),
                   key=lambda p: p.stat().st_mtime)
    killed_take = next(p for p in takes if p.stem.endswith(f"-{first}"))
    midi = mido.MidiFile(killed_take)
    seconds, last_on = 0.0, 0.0
    for message in midi:  # seconds through the file's own tempo map
        seconds += message.time
        if message.type == "note_on" and message.velocity > 0:
            last_on = seconds
    played = killed - started  # seconds of music before the kill (from about its first note)
    print(f"killed after {played:.2f} s; the take's last note at {last_on:.2f} s")
    # all but the bar being played when it died (a bar is 1 s here; the recorder rewrites
    # the file as each bar line passes)
    assert last_on >= played - 2.0
