"""Input without Python in the MIDI system's thread: rtmidi queues, a small thread pumps.

Why not rtmidi's callback: on JACK it runs in the server's process cycle, and a Python
callback must take the GIL there. Any Python thread that holds the GIL while it waits on the
JACK server (opening or closing a port, a client registering) then deadlocks with that
cycle until the server times the client out, about 5 s, stalling every client on the server.
Measured here on the JACK rig: 40 port opens took 191 s with a callback set, 2.4 s without.
So rtmidi keeps its own C++ queue (filled in the process cycle, no GIL) and this thread
drains it every `interval_s`.

Time: rtmidi stamps each message with the seconds since the previous one, read from the
backend's clock as the message was taken in (JACK: `jack_get_time`, monotonic). Summed, they
give each arrival relative to the first; the offset to `now()` is the smallest
`poll time - relative time` seen so far (a message is never read before it came), so the
absolute times are those of a callback, without the callback's thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bridges.midi.ticker import Ticker

# Passed as the callback's `data`: the event's time is absolute (seconds on `now()`), not
# rtmidi's delta. MidiInput.callback uses it instead of reading the clock itself.
ABSOLUTE_TIME = object()
PUMP_INTERVAL_S = 0.001

Callback = Callable[[tuple[Sequence[int], float], object], None]


class InputPump:
    def __init__(self, midi: Any, callback: Callback, *, lock: threading.Lock | None = None,
                 now: Callable[[], float] = time.monotonic,
                 interval_s: float = PUMP_INTERVAL_S) -> None:
        self.midi = midi
        self.callback = callback
        self.interval_s = interval_s
        self.messages = 0
        self._lock = lock or threading.Lock()  # the port's: a reopen never races a read
        self._now = now
        self._since_first = 0.0  # backend time of the latest message, from the first
        self._offset = math.inf  # now() - backend time, the smallest seen
        self._ticker = Ticker(self.pump, interval_s, "musegen-midi-pump")

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._ticker.stop(timeout)

    def pump(self) -> int:
        """Deliver everything rtmidi has queued; returns how many messages."""
        delivered = 0
        while True:
            with self._lock:
                got = self.midi.get_message()
            if got is None:
                return delivered
            message, delta = got
            self._since_first += delta
            self._offset = min(self._offset, self._now() - self._since_first)
            self.callback((message, self._offset + self._since_first), ABSOLUTE_TIME)
            delivered += 1
            self.messages += 1
