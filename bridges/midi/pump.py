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

Pace: with no clock running, a read every `interval_s` (1 ms) keeps a note or a Start
prompt. A clock tick wants more: in tick-synced dispatch (musegen/engine/dispatch.py) a note
goes out as its tick is read, and python-rtmidi's JACK output lands at the next period start,
so a read more than one period (1.33 ms on the bench) after the tick came costs a whole
period. Reading every 1 ms missed that for 6 % of the ticks on the JACK bench; every
`WATCH_S` (0.25 ms), for none of 382 (-J 10, 120 BPM). Reading that often all the time would
be 4000 wakes a second, about a tenth of a core at ~30 us each (see ticker.py), but a clock's
ticks come at a steady pace: after a tick the pump dozes in `DOZE_S` naps, then reads every
`WATCH_S` until the next tick. It watches from `WATCH_MARGIN_S` before the shortest of the
last `RECENT_TICKS` intervals. Not from a fraction of the last interval: arrivals are
stamped per JACK period, so on the bench at 174 BPM and -J 10 one interval in 20 was 15 % or
more shorter than the one before. Such a tick came during the doze, and was read up to 3 ms
late (51 of the 63 reads over 1 ms late in a 120 s run), where no tick was 1.4 ms shorter
than the shortest of the 24 before it. A Start, Stop or note that comes during a doze is
read at most `DOZE_S` late (Stop's all-notes-off stays inside 5 ms). A tick `WATCH_UNTIL`
intervals overdue means the clock stopped or paused: the pump goes back to reading every
`interval_s`.

Priority: watching closely is no use if the thread is not let run when its sleep ends. On a
busy machine (the JACK bench: jackd, the clock, the dump and the reference client share two
cores with the engine) a normal thread read 5 to 15 ticks per 120 s run over 1 ms late, the
latest 1.4 to 3.7 ms (-J 10, six runs). So `musegen live` runs the pump under SCHED_FIFO
(`rt_priority`, a low priority) where the system allows it: it then wakes before every
normal thread. In six runs alternating with those: 0 or 1 such ticks, the latest 0.5 to
1.6 ms. It sleeps between reads and each read is short, so it cannot starve the machine.
Each tick's read lag is counted (`late_tick_reads`, `max_tick_read_lag`) for the bench to
report.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bridges.midi.ticker import Ticker
from musegen.music.midi_spec import CLOCK

# Passed as the callback's `data`: the event's time is absolute (seconds on `now()`), not
# rtmidi's delta. MidiInput.callback uses it instead of reading the clock itself.
ABSOLUTE_TIME = object()
PUMP_INTERVAL_S = 0.001
WATCH_S = 0.00025
DOZE_S = 0.003
RECENT_TICKS = 24  # a beat of intervals: the shortest says how early the next tick may come
WATCH_MARGIN_S = 0.002
WATCH_UNTIL = 2.0
MAX_TICK_INTERVAL_S = 0.1  # 25 BPM: a longer gap is a stopped clock, not its pace
# Linux may wake a sleep up to 50 us late by default, to batch wake-ups; a tick's read should
# not wait for that (see ticker.py)
TIMER_SLACK_NS = 1000
# A tick read later than this after it came is counted (`late_tick_reads`): on the JACK bench
# (1.33 ms periods) a tick-synced note on it may then miss the next period
LATE_READ_S = 0.001
# SCHED_FIFO priority the live engine asks for (`musegen live --rt-priority`): low, so an audio
# server's real-time threads still come first; any FIFO priority wakes before every normal
# thread, which is what a tick's read needs on a busy machine (see the README's timing table)
RT_PRIORITY = 5

Callback = Callable[[tuple[Sequence[int], float], object], None]


class InputPump:
    def __init__(self, midi: Any, callback: Callback, *, lock: threading.Lock | None = None,
                 now: Callable[[], float] = time.monotonic,
                 interval_s: float = PUMP_INTERVAL_S, rt_priority: int = 0) -> None:
        self.midi = midi
        self.callback = callback
        self.interval_s = interval_s
        self.messages = 0
        self.reads = 0  # pump() calls: how often the thread woke to look
        self.late_tick_reads = 0  # ticks read over LATE_READ_S after they came
        self.max_tick_read_lag = 0.0  # seconds, the longest from a tick's arrival to its read
        self._lock = lock or threading.Lock()  # the port's: a reopen never races a read
        self._now = now
        self._since_first = 0.0  # backend time of the latest message, from the first
        self._offset = math.inf  # now() - backend time, the smallest seen
        self._last_tick = -math.inf  # when the latest clock tick came
        self._tick_interval = 0.0  # between the latest two (0: no clock running)
        self._recent = [math.inf] * RECENT_TICKS  # the latest intervals, a ring
        self._slot = 0
        self._shortest = math.inf  # of the recent intervals
        self._ticker = Ticker(self.pump, interval_s, "musegen-midi-pump", wait_s=self.wait_s,
                              timer_slack_ns=TIMER_SLACK_NS, rt_priority=rt_priority)

    @property
    def realtime(self) -> bool:
        """Whether the pump's thread runs under real-time scheduling (see ticker.py)."""
        return self._ticker.realtime

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
            read = self._now()
            self._offset = min(self._offset, read - self._since_first)
            at = self._offset + self._since_first
            if message and message[0] == CLOCK:
                self._note_tick(at, read - at)
            self.callback((message, at), ABSOLUTE_TIME)
            delivered += 1
            self.messages += 1

    def _note_tick(self, at: float, lag: float) -> None:
        if lag > LATE_READ_S:
            self.late_tick_reads += 1
        self.max_tick_read_lag = max(self.max_tick_read_lag, lag)
        interval = at - self._last_tick
        self._last_tick = at
        if interval > MAX_TICK_INTERVAL_S:  # the first tick of a run: no pace yet
            self._tick_interval = 0.0
            self._recent[:] = [math.inf] * RECENT_TICKS
            self._shortest = math.inf
            return
        self._tick_interval = interval
        self._recent[self._slot] = interval
        self._slot = (self._slot + 1) % RECENT_TICKS
        self._shortest = min(self._recent)

    def wait_s(self) -> float:
        """How long to wait before the next read: a doze while the next tick is far off, a
        short wait while it is due, the plain interval with no clock running."""
        interval = self._tick_interval
        since = self._now() - self._last_tick
        if interval == 0.0 or since > WATCH_UNTIL * interval:
            return self.interval_s
        doze_left = self._shortest - WATCH_MARGIN_S - since
        return min(DOZE_S, doze_left) if doze_left > WATCH_S else WATCH_S
