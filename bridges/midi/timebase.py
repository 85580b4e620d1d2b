"""The clock a live session runs on: the system's monotonic clock, or JACK's frame counter
when its MIDI ports are on JACK (bridges/midi/jack_time.py says why: notes land on frames,
and the system clock and the frames drift and jump apart).

On JACK frames, everything with a time uses them: the session (clock, worker, dispatcher,
recorder), and the input, whose arrivals the pump stamps on the system clock and
`input_callback` restamps. The output path's own delay is known there (python-rtmidi's JACK
output lands at the start of the next period), so the session sends one period early on top
of `--latency-ms`. The web page keeps the system clock: `SessionState.wall_time` carries it.
If the JACK server goes away, its frames stop and the session's time with them; its ports
went with the server.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from bridges.midi.backends import MidiUnavailable, resolve
from bridges.midi.jack_time import SPIN_SLEEP_S, InputCallback, JackFrameClock, restamped

logger = logging.getLogger(__name__)


@dataclass
class Timebase:
    name: str = "the system clock"
    now: Callable[[], float] = time.monotonic
    spin_sleep_s: float = 0.0  # the dispatcher's last stretch: a pure spin on a smooth clock
    send_latency_ms: float = 0.0  # the output path's own delay, sent early to make up for it
    frames: JackFrameClock | None = None
    backend: str | None = None  # the MIDI backend resolved on the way, if it was

    @property
    def send_now(self) -> Callable[[], float]:
        """What the dispatcher sends by: `now`, or on JACK frames the cycle once its
        clients have run (jack_time.SETTLE_FRAMES says why)."""
        return self.frames.settled_now if self.frames is not None else self.now

    @classmethod
    def on_frames(cls, frames: JackFrameClock, backend: str | None = "jack") -> Timebase:
        """JACK's frames: one period sent early, the spin napping between cycle starts."""
        period_ms = 1000.0 * frames.period_s
        return cls(f"JACK's frame clock ({period_ms:.2f} ms periods)", frames.now,
                   SPIN_SLEEP_S, period_ms, frames, backend)

    def input_callback(self, callback: InputCallback) -> InputCallback:
        """`callback` for a port's input, with arrival times on this clock."""
        return callback if self.frames is None else restamped(callback, self.frames)

    def close(self) -> None:
        if self.frames is not None:
            self.frames.close()


def timebase_for(backend: str) -> Timebase:
    """JACK's frames when `backend` is (or "auto" resolves to) JACK and its server answers;
    otherwise the system clock (opening the ports then says what is wrong, if anything)."""
    if backend == "none":
        return Timebase()
    try:
        resolved = resolve(backend)
    except MidiUnavailable:
        return Timebase()
    if resolved != "jack":
        return Timebase(backend=resolved)
    server = os.environ.get("JACK_DEFAULT_SERVER", "default")
    try:
        frames = JackFrameClock(server, name="musegen-time")
    except (OSError, RuntimeError) as exc:
        logger.warning("JACK's frame clock is not available (%s): timing on the system clock",
                       exc)
        return Timebase(backend=resolved)
    return Timebase.on_frames(frames, resolved)
