"""Send queued events when they are due: beats -> wall time through the clock, at send time.

An event at `beat` is due at `clock.time_at(beat) - latency`: the clock is asked when the
event reaches the head of the queue, so tempo changes and jumps made after generation count.
Events due at one moment go out together as a `Batch`.

Notes are tracked by `note_id` from note_on to note_off, one sounding note per key (channel,
pitch): an off is sent only for the note that is sounding, a new note on a sounding key
first ends the old one, and `all_notes_off` (on Stop, ClockLost, or a jump) returns exactly
the offs still owed. So the output never gets a note_on without its note_off, and an off
left in the queue for a note cut short can never end a newer note.

Transport events reach the dispatcher through a clock listener that only appends to a deque
(safe from the MIDI input thread); they are handled before the next send, under the same
lock, so the output is only ever called by one thread at a time.

Tick-anchored (see `Sync`), a note on a tick is due the moment its tick arrives, and waking
this thread to send it costs a thread hand-off (0.2 ms typical, a few ms when the scheduler
is busy), which on JACK sometimes carries the note into the next period. So the input
thread sends what its tick made due itself (`send_due`, from the clock's `on_tick`) before
it reads on; this thread sends everything else, and anything the input thread could not
send yet.

Real time: `run_forever` sleeps until shortly (`spin_s`) before the next moment, in naps of a
quarter of the time left or `max_sleep_s` (a transport event, or a push before the queue's
head, wakes it at once), spins the rest with `sleep(0)` (yielding the GIL to the generation
thread), then sends. The naps go through a `Waiter`: `EventWaiter` in real time; a test on
simulated time injects one whose `wait` moves its clock on. The loop does no logging and
allocates only the small lists of a batch. The caller's job before starting it: load models
and build the parts, then `gc.freeze()`, so the collector never walks the model and torch
objects during playback; and lower `sys.setswitchinterval` (0.5 ms, say), since a generation
thread busy in Python otherwise holds the GIL for up to the default 5 ms.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal, NamedTuple, Protocol

from musegen.clock import (
    Clock,
    ClockLost,
    Continue,
    SongPosition,
    Start,
    Stop,
    TransportEvent,
)
from musegen.clock.midi_follower import bpm_period
from musegen.engine.events import NOTE_ON, Output, ScheduledEvent
from musegen.engine.queue import EventQueue

INBOX_LEN = 256  # transport events waiting for the loop; a flood drops the oldest
# A shorter sleep is not worth a system call (the OS wakes 50-100 us late anyway): spin it.
MIN_SLEEP_S = 1e-4
# Started but the run's first tick not in yet: its time is the first step's, and ticks do
# not wake a nap, so poll in slices this short (only for the moments before that tick).
FIRST_TICK_POLL_S = 2e-4
# A nap far from the next moment may last this fraction of the time left, not just
# `max_sleep_s` (5 ms slices woke the thread 200 times a second between 16ths; each wake costs
# about 50 us of CPU here). The time left is asked afresh after each nap: the clock's estimate
# may move the moment, and only a move of three quarters of the time left would make the nap
# overshoot. A transport event (tempo step, jump, stop) or a push before the queue's head
# wakes the nap at once.
NAP_FRACTION = 0.25
TICK_WAIT = 0.5  # ticks: how long past the line's time a tick-anchored event waits for its tick
# Where an event is due on a MIDI clock: on the follower's fitted line ("line": sent ahead, so
# it can land centred on the beat), a fixed delay after its own tick arrives ("tick"), or
# whichever suits the clock ("auto": the line once the clock shows it keeps to one, see
# `Clock.steady_phase`; the tick while its phase wanders, where no line knows where the next
# tick will land, and for the first beats, before the line has the ticks to tell)
Sync = Literal["line", "tick", "auto"]
SYNCS: tuple[Sync, ...] = ("line", "tick", "auto")


class Batch(NamedTuple):
    time: float  # when due on the dispatcher's clock (latency compensation applied)
    beat: float
    events: list[ScheduledEvent]


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


class Waiter(Protocol):
    """How the dispatch loop naps and is woken (the input thread, a clock listener and the
    queue call `wake`, from any thread)."""

    def wait(self, seconds: float) -> None:
        """Nap up to `seconds`; a `wake` meanwhile may cut it short."""

    def wake(self) -> None:
        """Something changed (a transport event, a tick, an earlier push): stop napping."""

    def woken(self) -> bool:
        """Whether a `wake` came since the last nap or the last `woken` (and forget it)."""


class EventWaiter:
    """Real time: a nap is a wait on an Event that `wake` sets, so it ends at once."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, seconds: float) -> None:
        self._event.wait(seconds)
        self._event.clear()  # a wake after this is seen next round (its cause is queued)

    def wake(self) -> None:
        self._event.set()

    def woken(self) -> bool:
        if not self._event.is_set():
            return False
        self._event.clear()
        return True


class Dispatcher:
    def __init__(
        self,
        clock: Clock,
        queue: EventQueue,
        *,
        latency_ms: float = 0.0,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        waiter: Waiter | None = None,
        spin_s: float = 0.001,
        spin_sleep_s: float = 0.0,
        max_sleep_s: float = 0.005,
        drop_late_s: float = 0.05,
        sync: Sync = "line",
    ) -> None:
        self.clock = clock
        self.queue = queue
        self.latency_s = latency_ms / 1000.0  # the output's delay: send this much earlier
        self.spin_s = spin_s
        # 0: a pure spin (yielding the GIL). A clock that steps (JACK's cycle start) can only
        # pass `due` at a step, so short sleeps there cost nothing in timing and save the CPU.
        self.spin_sleep_s = spin_sleep_s
        self.max_sleep_s = max_sleep_s
        self.turns = 0  # times round the dispatch loop (at least one per max_sleep_s)
        self.drop_late_s = drop_late_s  # a note_on this late is worse than silence
        self.dropped_late = 0
        self.max_late_s = 0.0  # the worst lateness run_forever saw when sending
        self.tick_synced = 0  # batches run_forever sent due on their ticks' arrival
        self._now = now
        self._sleep = sleep  # the last stretch's spin (`spin_sleep_s`)
        self._sounding: dict[int, ScheduledEvent] = {}  # key -> its sounding note_on
        self._inbox: deque[TransportEvent] = deque(maxlen=INBOX_LEN)
        # woken by a transport event: a Start must not wait out the nap in progress (the
        # first step's notes are due on the very tick that starts the song)
        self._waiter: Waiter = EventWaiter() if waiter is None else waiter
        # held while selecting and sending a moment: the input thread sends too (`send_due`)
        self._send_lock = threading.Lock()
        self._output: Output | None = None  # run_forever's, while it runs
        clock.add_listener(self._listener)
        queue.on_earlier_head = self._waiter.wake
        # Tick-anchored: an event is due a fraction of a tick after its tick *arrives* (see
        # `due_time`), so each tick must wake the nap
        if sync not in SYNCS:
            raise ValueError(f"sync must be one of {', '.join(SYNCS)}, not {sync!r}")
        self.sync = sync
        if sync != "line":
            clock.on_tick = self._on_tick

    def _on_tick(self) -> None:
        """A tick came in (on the input thread): send what it made due, wake the loop."""
        if self._output is not None and self.anchored:
            self.send_due()
        self._waiter.wake()

    def _listener(self, event: TransportEvent) -> None:
        self._inbox.append(event)
        self._waiter.wake()

    def close(self) -> None:
        self.clock.remove_listener(self._listener)
        if self.clock.on_tick == self._on_tick:
            self.clock.on_tick = None
        if self.queue.on_earlier_head == self._waiter.wake:
            self.queue.on_earlier_head = None

    @property
    def sounding(self) -> list[ScheduledEvent]:
        """The note_ons sent whose note_off has not been sent yet."""
        return list(self._sounding.values())

    def due_time(self, beat: float) -> float:
        """When to send an event at `beat`: where the clock's line puts it, less the latency.

        Tick-anchored, when its tick has arrived: that tick's arrival plus the rest of the way
        on the line's period (a note on the tick goes out as the tick comes in, as a hardware
        sequencer slaved to the clock would play it). Until the tick arrives, it waits, but
        no later than half a tick past the line's time: a tick lost or very late must not
        hold the notes back.
        """
        predicted = self.clock.time_at(beat)
        if predicted < math.inf and self.anchored:
            anchored = self.clock.tick_anchored_time_at(beat)
            waited = predicted + TICK_WAIT * bpm_period(self.clock.tempo_bpm)
            return min(anchored, waited) - self.latency_s
        return predicted - self.latency_s

    @property
    def anchored(self) -> bool:
        """Whether events are due on their ticks' arrival now (see `Sync`)."""
        return self.sync == "tick" or (self.sync == "auto" and not self.clock.steady_phase)

    def next_due(self) -> float:
        """When the earliest queued event is due (inf: nothing queued, or stopped)."""
        beat = self.queue.peek_beat()
        return math.inf if beat == math.inf else self.due_time(beat)

    # -- selection ----------------------------------------------------------------------------

    def pending_until(self, t: float) -> list[Batch]:
        """Take every event due at or before `t`, as batches in time order."""
        batches: list[Batch] = []
        while True:
            beat = self.queue.peek_beat()
            if beat == math.inf or self.due_time(beat) > t:
                break
            event = self.queue.pop_if(beat)  # an earlier push in between is due as well
            if event is None:
                break
            if not batches or batches[-1].beat != event.beat:
                batches.append(Batch(self.due_time(event.beat), event.beat, []))
            self._admit(event, batches[-1], t)
        return [b for b in batches if b.events]

    def _admit(self, event: ScheduledEvent, batch: Batch, t: float) -> None:
        key = event.key
        current = self._sounding.get(key)
        if event.kind == NOTE_ON:
            if t - batch.time > self.drop_late_s:
                self.dropped_late += 1  # its off finds no sounding note and goes too
                return
            if current is not None:  # the key is sounding: end that note first
                batch.events.append(current.off_at(event.beat))
            self._sounding[key] = event
            batch.events.append(event)
        elif current is not None and current.note_id == event.note_id:
            del self._sounding[key]
            batch.events.append(event)
        # else: an off for a note already ended (stop, jump, retrigger) or never sent

    def all_notes_off(self, beat: float | None = None) -> list[ScheduledEvent]:
        """The note_offs for every sounding note; afterwards nothing is sounding."""
        if beat is None:
            beat = self.clock.beat_at(self._now())
        offs = [note.off_at(max(beat, note.beat)) for note in self._sounding.values()]
        self._sounding.clear()
        return offs

    # -- transport ----------------------------------------------------------------------------

    def handle_transport(self) -> list[Batch]:
        """Apply the transport events that arrived; returns the note_offs to send now."""
        out: list[Batch] = []
        while self._inbox:
            event = self._inbox.popleft()
            offs = self._on_transport(event)
            if offs:
                out.append(Batch(self._now(), offs[0].beat, offs))
        return out

    def _on_transport(self, event: TransportEvent) -> list[ScheduledEvent]:
        if isinstance(event, Stop | ClockLost):
            return self.all_notes_off(event.beat)
        if isinstance(event, Continue):  # resume where it stopped: nothing earlier is owed
            self.queue.drop_before(event.beat)
            return []
        if isinstance(event, Start | SongPosition):
            offs = self.all_notes_off(event.beat)
            self.queue.relocate(event.beat)
            return offs
        return []  # TempoEvent, ClockRegained: due_time asks the clock afresh anyway

    # -- the loop -----------------------------------------------------------------------------

    def send_due(self) -> None:
        """Apply the transport events that arrived, then send every moment due by now, to
        `run_forever`'s output (nothing once it has ended: its all-notes-off was the last)."""
        with self._send_lock:
            output = self._output
            if output is None:
                return
            self._send_transport(output)
            self._send(output, self.pending_until(self._now()))

    def _send_transport(self, output: Output) -> None:
        """The note_offs the transport events that arrived call for (the send lock held)."""
        if self._inbox:
            self._send(output, self.handle_transport())

    def run_forever(self, output: Output, stop_flag: StopFlag) -> None:
        """Dispatch to `output` until `stop_flag.is_set()`; sounding notes end on the way out."""
        self._output = output
        try:
            self._run(output, stop_flag)
        finally:
            with self._send_lock:
                self._output = None
                offs = self.all_notes_off()
                if offs:
                    output.send(offs, self._now())

    def _run(self, output: Output, stop_flag: StopFlag) -> None:
        now, sleep, spin_sleep = self._now, self._sleep, self.spin_sleep_s
        nap = self._waiter.wait  # cut short by a transport event, a tick or a push
        while not stop_flag.is_set():
            self.turns += 1  # a watchdog reads it: a loop that stopped turning is hung
            if self._inbox:
                with self._send_lock:
                    self._send_transport(output)
            due = self.next_due()
            if due == math.inf and self._awaiting_first_tick():
                nap(FIRST_TICK_POLL_S)
                continue
            ahead = due - now()
            if ahead - self.spin_s > MIN_SLEEP_S:
                nap(self._nap_length(ahead))
                continue
            while now() < due:
                sleep(spin_sleep)
                if self.sync != "line" and self._waiter.woken():  # a tick came in: due now?
                    # (anything else that woke it is seen next turn)
                    due = min(due, self.next_due())
            self.send_due()

    def _nap_length(self, ahead: float) -> float:
        """How long to nap with the next moment `ahead` seconds away (inf: nothing to play
        yet, so a `max_sleep_s` slice: the stop flag is only read between naps)."""
        if ahead == math.inf:
            return self.max_sleep_s
        return min(ahead - self.spin_s, max(self.max_sleep_s, ahead * NAP_FRACTION))

    def _awaiting_first_tick(self) -> bool:
        """Playing, something queued, yet no time for it: a MIDI clock's run that has had
        its Start and not its first tick (an internal clock always has a time)."""
        return self.clock.playing and self.queue.peek_beat() != math.inf

    def _send(self, output: Output, batches: list[Batch]) -> None:
        for batch in batches:
            late = self._now() - batch.time
            if late > self.max_late_s:
                self.max_late_s = late
            if self.anchored:
                self.tick_synced += 1
            output.send(batch.events, batch.time)
