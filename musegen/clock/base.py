"""The clock contract: wall time (seconds) <-> musical position (quarter notes).

The engine works in ticks and beats; a `Clock` is the only thing that knows seconds. Clocks
never read the wall clock themselves in their logic: time arrives as an injected `now()` or
as explicit timestamps, so tests can drive them deterministically and no thread is needed.

Transport changes (start, stop, continue, song-position jumps, tempo changes, clock loss)
are reported as small frozen dataclasses, both to synchronous listeners and to a bounded
queue that a polling engine drains with `drain_events()`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from musegen.music.timing import PPQN

if TYPE_CHECKING:
    from musegen.clock.midi_follower import MidiClockFollower


@dataclass(frozen=True, slots=True)
class Start:
    """Transport started from the top; `beat` is 0.0."""

    t: float
    beat: float = 0.0


@dataclass(frozen=True, slots=True)
class Stop:
    """Transport stopped; `beat` is where a later continue resumes."""

    t: float
    beat: float


@dataclass(frozen=True, slots=True)
class Continue:
    """Transport resumed at `beat`."""

    t: float
    beat: float


@dataclass(frozen=True, slots=True)
class SongPosition:
    """The position jumped to `beat` (a locate, or a MIDI song position pointer)."""

    t: float
    beat: float


@dataclass(frozen=True, slots=True)
class TempoEvent:
    """The tempo became `bpm` at `t` (seconds); not `musegen.music.score.TempoChange`, which
    is a tempo-map entry in ticks."""

    t: float
    bpm: float


@dataclass(frozen=True, slots=True)
class ClockLost:
    """An external clock went silent; `action` says whether the clock stopped or free-runs."""

    t: float
    beat: float
    action: Literal["stop", "hold"]


@dataclass(frozen=True, slots=True)
class ClockRegained:
    """Ticks came back after a loss; `beat` is the position at the first new tick."""

    t: float
    beat: float


# Where a clock's time comes from: its own tempo ("internal": the session owns the transport),
# or the ticks and transport bytes of a MIDI clock master ("midi": a DAW owns it)
ClockKind = Literal["internal", "midi"]

TransportEvent = Start | Stop | Continue | SongPosition | TempoEvent | ClockLost | ClockRegained
Listener = Callable[[TransportEvent], None]

# An engine that never drains must not grow memory without bound; the oldest events go.
EVENT_QUEUE_LEN = 1024
# Timestamps outside this range (or NaN) are garbage, not seconds: 1e12 s is 31,000 years.
MAX_ABS_TIME = 1e12


def valid_time(t: float) -> bool:
    """A finite, plausible timestamp (rejects NaN and infinities without raising)."""
    return -MAX_ABS_TIME < t < MAX_ABS_TIME


class Clock(ABC):
    """Maps wall time to musical position and reports transport events.

    `beat_at` is a query, not a state change: the engine may ask about any time (now, or
    now plus its look-ahead). While stopped the position holds and `time_at` answers
    `math.inf` for any beat: nothing will sound until the transport runs.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._events: deque[TransportEvent] = deque(maxlen=EVENT_QUEUE_LEN)
        # called after each clock tick from outside is taken in (from the input thread; a
        # clock with no outside ticks never calls it): a tick-anchored dispatcher sends the
        # notes the tick made due from here, and wakes its own thread
        self.on_tick: Callable[[], None] | None = None

    @property
    @abstractmethod
    def playing(self) -> bool: ...

    @property
    @abstractmethod
    def tempo_bpm(self) -> float: ...

    @abstractmethod
    def beat_at(self, t: float) -> float:
        """Musical position in quarter notes at wall time `t` (seconds)."""

    @abstractmethod
    def time_at(self, beat: float) -> float:
        """Wall time at which `beat` sounds (for scheduling ahead); inf while stopped."""

    @property
    def kind(self) -> ClockKind:
        """Where the time comes from (see `ClockKind`): a clock of its own by default."""
        return "internal"

    @property
    def owns_transport(self) -> bool:
        """Whether start, stop, locate and tempo are the session's to command (an external
        master owns them otherwise)."""
        return self.kind == "internal"

    @property
    def tick_follower(self) -> MidiClockFollower | None:
        """What a MIDI input feeds the clock bytes to, for a clock that follows them; None
        for a clock that makes its own time."""
        return None

    @property
    def may_go_silent(self) -> bool:
        """Whether the ticks can stop coming (an external clock): then the engine asks
        `check` while it runs and wakes by `overdue_at`. A clock of its own never does."""
        return False

    def overdue_at(self) -> float:
        """When `check` will declare the clock lost if no tick comes first (inf: never, or
        not armed)."""
        return math.inf

    def check(self, t: float) -> None:  # noqa: B027 (doing nothing is the default)
        """Declare the clock lost (a `ClockLost` event) if its ticks went silent by `t`; a
        clock that cannot go silent does nothing."""

    @property
    def steady_phase(self) -> bool:
        """Whether the clock's ticks keep to a steady line (jitter around it allowed), so
        its beats can be placed ahead of them; not when its phase wanders (its tick
        intervals are perturbed and their errors add up), nor before it can tell. A clock
        without ticks from outside is steady."""
        return True

    def tick_anchored_time_at(self, beat: float) -> float:
        """`time_at` counted from the arrival of the last clock tick at or before `beat`; inf
        until it arrives. A clock without ticks from outside is its own anchor."""
        return self.time_at(beat)

    def position_ticks(self, t: float) -> int:
        """Position at `t` in engine ticks (PPQN), floored so a tick is never early.

        The epsilon absorbs float error: beat 4.0 computed as 3.9999999999 is tick 1920.
        """
        beat = self.beat_at(t)
        if not math.isfinite(beat):
            return 0
        return math.floor(beat * PPQN + 1e-6)

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` synchronously on every event (keep it short: it runs in feed())."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def drain_events(self) -> list[TransportEvent]:
        """Events since the last drain, oldest first (at most EVENT_QUEUE_LEN)."""
        events = list(self._events)
        self._events.clear()
        return events

    def _emit(self, event: TransportEvent) -> None:
        self._events.append(event)
        for listener in tuple(self._listeners):
            listener(event)
