"""The pedal on a real JACK server with a USB MIDI keyboard's port that is unplugged and
plugged back: `musegen pedal` (its config naming the keyboard's port) reconnects by name,
and the player's notes from before and after both reach the session recording."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import mido
import pytest

from bench.rig.jack_tools import JackServer, stop_process
from tests.jack_rig import wait_until

pytestmark = pytest.mark.jack

ROOT = Path(__file__).resolve().parent.parent


def test_a_keyboard_unplugged_and_plugged_back_is_reconnected_by_name(
        jack: JackServer, tmp_path: Path) -> None:
    import rtmidi

    def keyboard() -> rtmidi.MidiOut:
        midi_out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="usb-keys")
        midi_out.open_virtual_port("keys out")
        return midi_out

    data = tmp_path / "data"
    config = tmp_path / "pedal.toml"
    config.write_text(f'[audio]\nenabled = false\n[midi]\nbackend = "jack"\n'
                      f'input_from = "keys out"\n[data]\ndir = "{data}"\n')
    first = keyboard()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridges", "pedal", "--config", str(config), "--data-dir",
         str(data)], env={**jack.env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:  # always: a full pipe would block the pedal's threads
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: any("pedal playing" in line for line in lines), 60), lines
        time.sleep(0.2)
        first.send_message([0x90, 60, 100])
        time.sleep(0.3)
        first.delete()  # unplugged
        assert wait_until(lambda: any("went away" in line for line in lines), 10), lines
        second = keyboard()  # plugged back
        assert wait_until(lambda: any("is back; reconnected" in line for line in lines), 10), \
            lines
        time.sleep(0.1)  # JACK applies a new connection from the next cycles on
        second.send_message([0x90, 64, 90])
        time.sleep(1.5)  # the recorder rewrites the take at the next bar line
    finally:
        stop_process(proc)  # SIGTERM: the take is finished
        reader.join(5)
    assert proc.returncode == 0, lines
    second.delete()
    takes = list((data / "sessions").glob("*.mid"))
    assert len(takes) == 1, lines
    played = [m.note for m in mido.MidiFile(takes[0]).tracks[2]
              if m.type == "note_on" and m.velocity > 0]
    assert played == [60, 64], (played, lines)
