"""What the engine schedules: note events at musical positions, and the `Output` they go to.

Events carry beats (quarter notes from the song start), never seconds or milliseconds: only
a `Clock` maps beats to wall time, and the dispatcher asks it at the moment of sending, so a
tempo change, a stop or a locate after an event was generated still sends it right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

NOTE_ON: Literal["note_on"] = "note_on"
NOTE_OFF: Literal["note_off"] = "note_off"
Kind = Literal["note_on", "note_off"]


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    beat: float  # quarter notes from the song start
    kind: Kind
    channel: int  # 0..15; drums use 9 (MIDI channel 10)
    pitch: int
    velocity: int  # 1..127 for note_on, 0 for note_off
    part: str  # name of the Part that made it
    # Pairs a note_on with its note_off: the dispatcher tracks sounding notes by it, so an
    # off whose on was dropped (stop, jump, too late) can never cut a newer note short.
    note_id: int = -1

    @property
    def key(self) -> int:
        """Channel and pitch as one int: at most one note per key sounds at a time."""
        return self.channel * 128 + self.pitch

    def off_at(self, beat: float) -> ScheduledEvent:
        """The note_off that ends this note at `beat` (for cuts: stop, retrigger, jump)."""
        return ScheduledEvent(beat, NOTE_OFF, self.channel, self.pitch, 0, self.part, self.note_id)


class Output(Protocol):
    """Where dispatched events go (a MIDI port, a synth, a websocket); bridges implement it.

    `send` is called at the moment the events are due, by one thread at a time: the dispatch
    thread, or on a tick-anchored MIDI clock the input thread as the tick comes in. It must
    return quickly and never block on the generation side.
    """

    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        """Send one moment's events now; `at` is when they were due (seconds on the
        dispatcher's `now()`, latency compensation already applied)."""
