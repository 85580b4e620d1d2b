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

Pace: a read every `interval_s` (1 ms) is what keeps a clock tick's reading prompt (on the
JACK bench its time is the cycle it was read in), but 1000 wakes a second cost about 4 % of a
core. A MIDI clock's ticks come at a steady interval, so after a tick the pump dozes in
`DOZE_S` naps until `DOZE_UNTIL` of the last interval has passed, then reads every
`interval_s` until the next tick. A Start, Stop or note that comes during a doze is read at
most `DOZE_S` late (Stop's all-notes-off stays inside 5 ms); with no clock, or one that
stopped, the pump reads every `interval_s`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bridges.midi.ticker import Ticker
from musegen.clock.midi_follower import TICK

# Passed as the callback's `data`: the event's time is absolute (seconds on `now()`), not
# rtmidi's delta. MidiInput.callback uses it instead of reading the clock itself.
ABSOLUTE_TIME = object()
PUMP_INTERVAL_S = 0.001
DOZE_S = 0.003
# -J 10 jitter moves a tick by up to a tenth of the interval; a tempo rise of a quarter
# within one tick (never musical) would make a tick wait for the end of a doze
DOZE_UNTIL = 0.75
MAX_TICK_INTERVAL_S = 0.1  # 25 BPM: a longer gap is a stopped clock, not its pace

Callback = Callable[[tuple[Sequence[int], float], object], None]


class InputPump:
    def __init__(self, midi: Any, callback: Callback, *, lock: threading.Lock | None = None,
                 now: Callable[[], float] = time.monotonic,
                 interval_s: float = PUMP_INTERVAL_S) -> None:
        self.midi = midi
        self.callback = callback
        self.interval_s = interval_s
        self.messages = 0
        self.reads = 0  # pump() calls: how often the thread woke to look
        self._lock = lock or threading.Lock()  # the port's: a reopen never races a read
        self._now = now
        self._since_first = 0.0  # backend time of the latest message, from the first
        self._offset = math.inf  # now() - backend time, the smallest seen
        self._last_tick = -math.inf  # when the latest clock tick came
        self._tick_interval = 0.0  # between the latest two (0: no clock running)
        self._ticker = Ticker(self.pump, interval_s, "musegen-midi-pump", wait_s=self.wait_s)

    def start(self) -> None:
        self._ticker.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._ticker.stop(timeout)

    def pump(self) -> int:
        """Deliver everything rtmidi has queued; returns how many messages."""
        delivered = 0
        self.reads += 1
        while True:
            with self._lock:
                got = self.midi.get_message()
            if got is None:
                return delivered
            message, delta = got
            self._since_first += delta
            self._offset = min(self._offset, self._now() - self._since_first)
            at = self._offset + self._since_first
            if message and message[0] == TICK:
                self._note_tick(at)
            self.callback((message, at), ABSOLUTE_TIME)
            delivered += 1
            self.messages += 1

    def _note_tick(self, at: float) -> None:
        interval = at - self._last_tick
        self._tick_interval = interval if interval <= MAX_TICK_INTERVAL_S else 0.0
        self._last_tick = at

    def wait_s(self) -> float:
        """How long to wait before the next read: a doze while the next tick is far off."""
        doze_left = self._last_tick + DOZE_UNTIL * self._tick_interval - self._now()
        return min(DOZE_S, doze_left) if doze_left > self.interval_s else self.interval_s
