"""Be the MIDI clock master: which clock messages the session's own clock means, and when.

Pure: it reads the session's `Clock` and its transport events and returns the bytes to send
(a bridge sends them; see bridges/midi/clock_out.py). The MIDI rules it keeps, the same the
follower (midi_follower.py) reads by:
- Start: the follower goes to 0, and the first tick after it *is* beat 0.
- Ticks: 24 per beat; tick n is due when the clock reaches beat n / 24, asked anew for every
  tick, so a tempo change applies from the next tick.
- Stop: ticks end. Continue: the follower resumes at the count of ticks it has had; where
  the session resumes elsewhere (a locate while stopped) a Song Position Pointer comes
  first, in 16ths, and the ticks restart from there.
- A locate while playing: Stop, Song Position, Continue (the spec's way: a pointer is
  only for a stopped follower).
Song positions are whole 16ths, so a position between two is rounded up: the ticks resume
at that 16th, when the session's clock gets there.
"""

from __future__ import annotations

import math

from musegen.clock.base import Clock, Continue, SongPosition, Start, Stop, TransportEvent
from musegen.music.midi_spec import (
    CLOCK,
    CLOCK_PPQN,
    CLOCKS_PER_MIDI_BEAT,
    CONTINUE,
    SONG_POSITION,
    START,
    STOP,
)

Message = tuple[int, ...]
TICK: Message = (CLOCK,)
MAX_SONG_POSITION = (1 << 14) - 1  # 14 bits of 16ths: 1023 bars of 4/4
EPSILON = 1e-9  # a beat computed as 3 * (1/24) must not round up to the next tick


class ClockMaster:
    """The follower's position in ticks, and what to send for each transport event."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.position = 0  # the ticks the follower has counted: the next tick's index
        self.running = False

    def next_tick_time(self) -> float:
        """When the next tick is due (the clock's seconds); inf while stopped."""
        if not self.running:
            return math.inf
        return self.clock.time_at(self.position / CLOCK_PPQN)

    def tick(self) -> Message:
        self.position += 1
        return TICK

    def transport(self, event: TransportEvent) -> list[Message]:
        """The messages `event` (from the session's clock) means, in order; [] for none."""
        match event:
            case Start():
                self.position, self.running = 0, True
                return [(START,)]
            case Stop():
                was, self.running = self.running, False
                return [(STOP,)] if was else []
            case Continue(beat=beat):
                self.running = True
                if math.ceil(beat * CLOCK_PPQN - EPSILON) == self.position:
                    return [(CONTINUE,)]
                return [self._song_position(beat), (CONTINUE,)]
            case SongPosition(beat=beat):
                if self.running:
                    return [(STOP,), self._song_position(beat), (CONTINUE,)]
                return [self._song_position(beat)]
        return []  # tempo: the ticks follow by themselves

    def stop(self) -> list[Message]:
        """On the way out: a follower left running would free-run, so stop it."""
        return self.transport(Stop(0.0, 0.0))

    def _song_position(self, beat: float) -> Message:
        sixteenths = min(max(math.ceil(beat * 4 - EPSILON), 0), MAX_SONG_POSITION)
        self.position = sixteenths * CLOCKS_PER_MIDI_BEAT
        return (SONG_POSITION, sixteenths & 0x7F, sixteenths >> 7)
