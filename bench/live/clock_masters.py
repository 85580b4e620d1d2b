"""The latency bench's clock masters, behind one small interface: a port, play, stop, close.

- `TransportMaster`: `jack_midi_clock` driven by `jack_transport`, what a DAW slaved to
  JACK transport sends. Its -J jitter perturbs each tick interval, so the phase wanders as a
  random walk.
- `WhiteMaster`: bench/live/white_clock.py in its own process, a steady tempo whose
  ticks each land off their ideal time on their own (white jitter), as a DAW's clock does
  through a USB MIDI interface.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Mapping
from typing import Literal, Protocol

from bench import checkout_env
from bench.live.white_clock import PORT_NAME
from bench.rig.jack_tools import JackMidiClock, JackTransport, stop_process, wait_port

MasterKind = Literal["jack_midi_clock", "white"]


class ClockMaster(Protocol):
    port: str  # the JACK port the clock comes out of

    def play(self) -> None: ...  # Start from the top, then ticks

    def stop(self) -> None: ...  # Stop

    def close(self) -> None: ...


class TransportMaster:
    """jack_midi_clock at `bpm` (-B), -J `jitter_pct`, rolled by the JACK transport."""

    def __init__(self, env: Mapping[str, str], bpm: float, jitter_pct: float) -> None:
        self.transport = JackTransport(env)
        self.clock = JackMidiClock(env, bpm, jitter_pct=jitter_pct)
        self.port = self.clock.port

    def play(self) -> None:
        self.transport.locate(0)  # from the top: a rolling start (0xFA), not a continue
        self.transport.play()

    def stop(self) -> None:
        self.transport.stop()

    def close(self) -> None:
        self.transport.stop()
        self.transport.locate(0)  # leave the server's transport as we found it
        self.transport.close()
        self.clock.stop()


class WhiteMaster:
    """The white-jitter clock (bench/live/white_clock.py) as a child process."""

    def __init__(self, env: Mapping[str, str], server: str, bpm: float, jitter_ms: float,
                 client: str = "musegen-white", seed: int = 0) -> None:
        """Ticks timed on `server`'s JACK frames."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.live.white_clock", "--client", client,
             "--bpm", f"{bpm:g}", "--jitter-ms", f"{jitter_ms:g}", "--seed", str(seed),
             "--server", server],
            env=checkout_env(env), stdin=subprocess.PIPE, text=True, start_new_session=True)
        self.port = wait_port(env, f"{client}:{PORT_NAME}", 15.0)

    def _command(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def play(self) -> None:
        self._command("play")

    def stop(self) -> None:
        self._command("stop")

    def close(self) -> None:
        if self._proc.poll() is None and self._proc.stdin is not None:
            self._proc.stdin.close()  # it sends Stop if still playing, then exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5.0)
        stop_process(self._proc)
