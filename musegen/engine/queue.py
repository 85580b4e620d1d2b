"""The bounded, time-ordered, thread-safe queue between generation and dispatch.

A heap ordered by (beat, note_off before note_on, insertion order): an off and an on at the
same beat on the same key must leave the new note sounding. The lock guards each operation
only for its own list work, never while a model runs or an output sends, so neither side
can stall the other.

Each entry also remembers which part and bar it came from, so the worker can take back a
part's not-yet-started bars when its controls change (`retract`). A jump that lands outside
what is queued flushes everything and bumps `epoch`; a bar rendered for the old epoch is
refused on push, and the worker restarts from `restart()`.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Callable, Sequence
from typing import Literal

from musegen.engine.events import NOTE_OFF, ScheduledEvent

# beat, rank (0 = note_off first), insertion counter, bar, part, event: the counter is unique,
# so tuples never compare the fields after it.
Entry = tuple[float, int, int, int, str, ScheduledEvent]
PushResult = Literal["ok", "stale", "full"]
DEFAULT_CAPACITY = 8192


class EventQueue:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.on_flush: Callable[[], None] | None = None  # the worker hooks its wake-up here
        # the dispatcher's: a push that puts an event before the head may be due before the
        # end of the nap the dispatcher planned for the old head
        self.on_earlier_head: Callable[[], None] | None = None
        self._heap: list[Entry] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._epoch = 0
        self._floor = -math.inf  # events before this beat are refused (after a locate)
        self._last_popped = -math.inf
        self._horizon: dict[str, float] = {}  # per part: end beat of its last queued bar

    def __len__(self) -> int:
        return len(self._heap)

    def space(self) -> int:
        return self.capacity - len(self._heap)

    def restart(self) -> tuple[int, float]:
        """(epoch, the beat generation must restart from after the last flush)."""
        with self._lock:
            return self._epoch, self._floor

    def horizon(self, part: str) -> float:
        with self._lock:
            return self._horizon.get(part, -math.inf)

    # -- generation side ----------------------------------------------------------------------

    def push_bar(
        self, part: str, bar: int, events: Sequence[ScheduledEvent], end_beat: float, epoch: int
    ) -> PushResult:
        """Queue one rendered bar of one part, all or nothing."""
        with self._lock:
            if epoch != self._epoch:
                return "stale"
            if len(self._heap) + len(events) > self.capacity:
                return "full"
            head = self._head()
            for event in events:
                if event.beat >= self._floor:
                    self._counter += 1
                    rank = 0 if event.kind == NOTE_OFF else 1
                    entry = (event.beat, rank, self._counter, bar, part, event)
                    heapq.heappush(self._heap, entry)
            self._horizon[part] = end_beat
            earlier = self._head() < head
        self._tell_if_earlier(earlier)
        return "ok"

    def retract(self, part: str, from_bar: int, from_beat: float, epoch: int) -> bool:
        """Take back `part`'s bars from `from_bar` (starting at `from_beat`) on, unless the
        dispatcher already took anything at or after that beat."""
        with self._lock:
            if epoch != self._epoch or self._last_popped >= from_beat:
                return False
            self._heap = [e for e in self._heap if e[4] != part or e[3] < from_bar]
            heapq.heapify(self._heap)
            self._horizon[part] = from_beat
            return True

    def replace_bar(
        self, part: str, bar: int, events: Sequence[ScheduledEvent], start_beat: float
    ) -> bool:
        """Swap the queued events of one bar of `part` (a step edit), unless the dispatcher
        already took anything at or after `start_beat` or the bar is not queued."""
        with self._lock:
            if self._last_popped >= start_beat or self._horizon.get(part, -math.inf) <= start_beat:
                return False
            head = self._head()
            self._heap = [e for e in self._heap if e[4] != part or e[3] != bar]
            for event in events:
                if event.beat >= self._floor:
                    self._counter += 1
                    rank = 0 if event.kind == NOTE_OFF else 1
                    self._heap.append((event.beat, rank, self._counter, bar, part, event))
            heapq.heapify(self._heap)
            earlier = self._head() < head
        self._tell_if_earlier(earlier)
        return True

    def _head(self) -> float:
        return self._heap[0][0] if self._heap else math.inf

    def _tell_if_earlier(self, earlier: bool) -> None:
        if earlier and self.on_earlier_head is not None:
            self.on_earlier_head()

    # -- dispatch side ------------------------------------------------------------------------

    def peek_beat(self) -> float:
        with self._lock:
            return self._head()

    def pop_if(self, max_beat: float) -> ScheduledEvent | None:
        """The earliest event if it is at or before `max_beat`, else None."""
        with self._lock:
            if not self._heap or self._heap[0][0] > max_beat:
                return None
            entry = heapq.heappop(self._heap)
            self._last_popped = entry[0]
            return entry[5]

    def drop_before(self, beat: float) -> int:
        """Forget events before `beat` (a continue or a forward jump); returns how many."""
        with self._lock:
            return self._drop_before(beat)

    def relocate(self, beat: float) -> bool:
        """The song position jumped to `beat`. If it lands inside what is queued (at or after
        what was sent or skipped, before the end of the shortest part), only earlier events
        go; anything else (a jump back, or past the queued bars) flushes all. True when
        flushed."""
        with self._lock:
            playhead = max(self._last_popped, self._floor)
            horizon = min(self._horizon.values(), default=-math.inf)
            if playhead <= beat < horizon:
                self._drop_before(beat)
                return False
            self._heap.clear()
            self._horizon.clear()
            self._epoch += 1
            self._floor = beat
            self._last_popped = -math.inf
        if self.on_flush is not None:
            self.on_flush()
        return True

    def _drop_before(self, beat: float) -> int:
        kept = [e for e in self._heap if e[0] >= beat]
        dropped = len(self._heap) - len(kept)
        if dropped:
            heapq.heapify(kept)
            self._heap = kept
        self._floor = max(self._floor, beat)
        return dropped
