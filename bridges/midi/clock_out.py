"""MIDI clock out: the session's own clock as 24 ppqn ticks and transport on a MIDI port.

One thread sends everything (`musegen.clock.clock_master.ClockMaster` says what and when):
transport events from the clock only land in a deque and wake it; it naps until shortly
before the next tick (at most MAX_NAP_S, woken at once by a transport event), spins the rest
with sleep(0), and sends. A tick that could not be sent in time (the thread was held up)
goes out at once: the follower's count of ticks is its position, so none may be skipped.
Under real-time scheduling where allowed (`rt_priority`), as the MIDI input's thread.

Timing: a message goes to the port the moment it is due, and the MIDI system delivers it
from there (on JACK, python-rtmidi puts it at the start of the next period, so a tick is
within one period, 1.3 ms at 64 frames, of its time; rtmidi has no timestamped send).

The port is shared with the note output: `LockedSink` makes each message one call under a
lock held only for the send, so the two threads never interleave inside a port's buffer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from bridges.midi.output import MessageSink
from bridges.midi.ticker import set_realtime
from musegen.clock import Clock, Continue, TransportEvent
from musegen.clock.clock_master import ClockMaster

SPIN_S = 0.001  # the last stretch before a tick is spun, not slept (a wake-up is late)
MAX_NAP_S = 0.05  # a nap never longer: a tempo change moves the next tick


class LockedSink:
    """A MessageSink two threads may share: one message at a time."""

    def __init__(self, sink: MessageSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()

    def send_message(self, message: Sequence[int]) -> None:
        with self._lock:
            self._sink.send_message(message)


class MidiClockOut:
    """Sends `clock`'s ticks and transport to `sink` until `close()` (which sends Stop)."""

    def __init__(self, sink: MessageSink, clock: Clock, now: Callable[[], float], *,
                 rt_priority: int = 0) -> None:
        self.sink = sink
        self.master = ClockMaster(clock)
        self.now = now
        self.rt_priority = rt_priority
        self.realtime = False
        self.sent = 0
        self.errors = 0  # messages the port refused
        self._inbox: deque[TransportEvent] = deque(maxlen=256)
        self._wake = threading.Event()
        self._stopping = False
        clock.add_listener(self._on_transport)
        if clock.playing:  # already rolling: the follower starts from here
            self._inbox.append(_resume(clock, now()))
        self._thread = threading.Thread(target=self._run, name="musegen-clock-out", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(2.0)
        self.master.clock.remove_listener(self._on_transport)
        for message in self.master.stop():
            self._send(message)

    def _on_transport(self, event: TransportEvent) -> None:  # any thread: only hand it over
        self._inbox.append(event)
        self._wake.set()

    def _run(self) -> None:
        if self.rt_priority > 0:
            self.realtime = set_realtime(self.rt_priority)
        master, now = self.master, self.now
        while not self._stopping:
            self._wake.clear()
            while self._inbox:
                for message in master.transport(self._inbox.popleft()):
                    self._send(message)
            wait = master.next_tick_time() - now()
            if wait > SPIN_S:
                self._wake.wait(min(wait - SPIN_S, MAX_NAP_S))
            elif wait > 0:
                time.sleep(0)
            else:
                self._send(master.tick())

    def _send(self, message: Sequence[int]) -> None:
        try:
            self.sink.send_message(message)
            self.sent += 1
        except Exception:  # a port gone: counted; the next tick tries again
            self.errors += 1


def _resume(clock: Clock, t: float) -> TransportEvent:
    return Continue(t, clock.beat_at(t))
