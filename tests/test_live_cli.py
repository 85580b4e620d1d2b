"""`musegen live` without any MIDI system: it still plays (internal clock, recording) and says
so in one line; impossible requests are one clear error line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parent.parent


def musegen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridges", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_backend_none_plays_on_the_internal_clock_and_records(tmp_path: Path) -> None:
    take = tmp_path / "take.mid"
    done = musegen("live", "--backend", "none", "--no-web", "--bpm", "240", "--seconds", "3",
                   "--record", str(take))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "musegen: no MIDI (--backend none): internal clock only"
    assert lines[1].startswith("musegen: playing drums=drums-lstm")
    assert lines[-1] == f"musegen: session recorded in {take}"
    ons = [m for m in mido.MidiFile(take).tracks[1] if m.type == "note_on" and m.velocity]
    assert len(ons) >= 8  # a few bars at 240 BPM


def test_impossible_requests_are_one_line_errors(tmp_path: Path) -> None:
    cases = [
        (["--clock", "midi", "--backend", "none"], "--clock midi needs MIDI"),
        (["--model", "no-such-model"], "no model 'no-such-model'"),
        (["--model", "drums-lstm", "--model", "drums-wavenet"], "one model per part"),
        (["--bpm", "0"], "tempo 0.0 BPM outside"),
        (["--respond", "melody"], "no part 'melody'"),
    ]
    for args, message in cases:
        done = musegen("live", "--backend", "none", "--no-web", "--no-record", "--seconds",
                       "0", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
