"""JACK's frame counter as the engine's clock: `now()` is the start of the current JACK cycle.

Why: on JACK, what matters is the *frame* a note lands on, and python-rtmidi's output lands
at the start of the cycle after the one in which it was sent. The system clock and JACK's
frames drift apart. The dummy driver of the test rig is the extreme case: its frames run
about 0.14 % slow against CLOCK_MONOTONIC, and a late cycle shifts every later frame by a
millisecond or two. The clock follower saw 49 to 61 such jumps a minute as tempo changes,
and notes scheduled in system time landed early by the jump until it was detected. Measured
in frames, the same master has no jitter at all.

With this clock the whole engine runs in JACK time:
- a tick is stamped with the start frame of the cycle in which the input pump read it;
- the dispatcher sends when the cycle before the note's frame has begun.

A late cycle then delays the note with everything else instead of moving it. The clock
steps one period at a time, so it is read, never slept on: the dispatcher still sleeps in
system seconds and spins the last stretch on `now()`.

libjack is loaded as a `ctypes.PyDLL`, which keeps the GIL across the call: reading the
frame counter is a read of JACK's shared memory, and the MIDI input callback calls `now()`
on JACK's own thread, where giving up the GIL and waiting to take it back would cost more
than the read. The client is opened, never activated: it is not part of the graph.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Sequence
from typing import Any

from bridges.midi.jack_client import JackClient

FRAMES_WRAP = 1 << 32  # jack_nframes_t is 32 bits: 24.9 hours at 48 kHz
# the dispatcher's spin naps this long on the frame clock: a send up to this long after the
# cycle start still lands in that cycle's ring buffer (1.33 ms), and each look costs a wake
# (~30 us of CPU)
SPIN_SLEEP_S = 2.5e-4
# The frame counter moves to a cycle's start as the cycle begins, before the server has run
# the clients' process callbacks; a send in between reaches python-rtmidi's output in that
# very cycle and lands a period early. The bench's dump showed it: on a steady 120 BPM clock,
# notes on the beat (a tick on a cycle's first frame) landed 1.33 ms early about once in 70.
# The dispatcher's clock reaches a cycle this many frames after it began (the rig's whole
# graph runs in under 0.1 ms), and no send went early in the same runs after.
SETTLE_FRAMES = 12


def _lib() -> Any:
    path = ctypes.util.find_library("jack") or "libjack.so.0"
    lib = ctypes.PyDLL(path)
    lib.jack_last_frame_time.restype = ctypes.c_uint32
    lib.jack_last_frame_time.argtypes = [ctypes.c_void_p]
    lib.jack_get_sample_rate.restype = ctypes.c_uint32
    lib.jack_get_sample_rate.argtypes = [ctypes.c_void_p]
    lib.jack_get_buffer_size.restype = ctypes.c_uint32
    lib.jack_get_buffer_size.argtypes = [ctypes.c_void_p]
    lib.jack_frames_since_cycle_start.restype = ctypes.c_uint32
    lib.jack_frames_since_cycle_start.argtypes = [ctypes.c_void_p]
    return lib


class JackFrameClock:
    """`now()`: seconds of JACK frames at the start of the current cycle; a context manager."""

    def __init__(self, server: str, name: str = "musegen-time") -> None:
        self._control = JackClient(server, name)  # opens the client, never activates it
        lib, handle = _lib(), self._control.handle()
        self._lib = lib
        self.rate = int(lib.jack_get_sample_rate(handle))
        self.period_frames = int(lib.jack_get_buffer_size(handle))
        self._lock = threading.Lock()
        self._last = int(lib.jack_last_frame_time(handle))
        self._high = 0  # frames added by wraps of the 32-bit counter

    @property
    def period_s(self) -> float:
        return self.period_frames / self.rate

    def frames(self) -> int:
        """The start frame of the current cycle, unwrapped (raises once closed)."""
        raw = int(self._lib.jack_last_frame_time(self._control.handle()))
        if raw < self._last and self._last - raw > FRAMES_WRAP // 2:  # the counter wrapped
            with self._lock:
                if raw < self._last:
                    self._high += FRAMES_WRAP
                    self._last = raw
        else:
            self._last = raw
        return self._high + raw

    def now(self) -> float:
        return self.frames() / self.rate

    def settled_now(self) -> float:
        """`now()` once the cycle's process callbacks have run (`SETTLE_FRAMES` in), the
        previous cycle's start until then: what the dispatcher sends by."""
        cycle = self.frames()
        since = int(self._lib.jack_frames_since_cycle_start(self._control.handle()))
        if since < SETTLE_FRAMES:
            cycle -= self.period_frames
        return cycle / self.rate

    def restamp(self, t: float) -> float:
        """An input arrival on this clock: the cycle in which the pump read it.

        `t`, the pump's CLOCK_MONOTONIC stamp, is not used. Mapping it through JACK's
        `jack_time_to_frames` put arrivals about 48 ms off on the dummy driver, for a reason
        I have not found. The pump reads every millisecond, so the cycle it reads in is the
        arrival's cycle or the next one, and the tick-line fit averages that out. The 120 BPM
        bench run read p99 1.33 ms and 0 tempo changes, against 1.67 ms and about 50 tempo
        changes a minute on the system clock."""
        return self.now()

    def close(self) -> None:
        self._control.close()

    def __enter__(self) -> JackFrameClock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


InputCallback = Callable[[tuple[Sequence[int], float], object], None]


def restamped(callback: InputCallback, frames: JackFrameClock) -> InputCallback:
    """The input pump stamps arrivals on CLOCK_MONOTONIC: restamp them on JACK's frames."""
    def on_frames(event: tuple[Sequence[int], float], data: object) -> None:
        callback((event[0], frames.restamp(event[1])), data)
    return on_frames
