"""What the player plays, heard in musical time, and the two ways the engine answers it.

`PlayerTracker` collects the player's notes per bar (from any input thread, under a short
lock). Two policies read it from the generation thread's poll (`GenerationWorker.poll_hooks`):

- `CallAndResponse`: when the player has played a phrase and then been quiet for
  `quiet_beats` with no key held, the responding part is primed on the phrase and answers
  from the next bar line, for as many bars as the phrase spanned (at most MAX_PHRASE_BARS).
  If the next bar line is closer than `lead_beats` (too close to regenerate in time), the
  answer starts one bar later.
- `Accompaniment`: once a bar is `decide_at` through, the player's onsets so far, scaled to a
  whole bar, set the accompanying part's density from the next bar: busy playing, busy drums.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from musegen.engine.part import Part
from musegen.music.score import Note
from musegen.music.timing import PPQN

MAX_PHRASE_BARS = 4
KEPT_BARS = 16  # the tracker forgets older bars
MIN_NOTE_TICKS = PPQN // 16  # a note released at once still lasts a 64th


@dataclass(frozen=True, slots=True)
class Phrase:
    first_bar: int
    bars: tuple[tuple[Note, ...], ...]  # notes per bar, ticks from that bar's start


class PlayerTracker:
    def __init__(self, beats_per_bar: float) -> None:
        self.beats_per_bar = beats_per_bar
        self._lock = threading.Lock()
        self._bars: dict[int, list[Note]] = {}
        self._held: dict[tuple[int, int], tuple[float, int]] = {}  # key -> (beat on, velocity)
        self._last_beat = -math.inf  # the latest note on or off
        self._phrase_from: int | None = None  # first bar of the phrase not answered yet

    def bar_of(self, beat: float) -> int:
        return math.floor(beat / self.beats_per_bar + 1e-9)

    def note(self, beat: float, channel: int, pitch: int, velocity: int) -> None:
        key = (channel, pitch)
        with self._lock:
            self._last_beat = max(self._last_beat, beat)
            started = self._held.pop(key, None)
            if started is not None:  # an off, or a retrigger that ends the held note
                self._store(started[0], beat, pitch, started[1], channel)
            if velocity > 0:
                self._held[key] = (beat, velocity)
                if self._phrase_from is None:
                    self._phrase_from = self.bar_of(beat)

    def _store(self, on: float, off: float, pitch: int, velocity: int, channel: int) -> None:
        bar = self.bar_of(on)
        origin = bar * self.beats_per_bar
        start = round((on - origin) * PPQN)
        end = max(start + MIN_NOTE_TICKS, round((off - origin) * PPQN))
        self._bars.setdefault(bar, []).append(Note(start, end, pitch, velocity, channel))
        for old in [b for b in self._bars if b < bar - KEPT_BARS]:
            del self._bars[old]

    def onsets(self, bar: int) -> int:
        """Notes begun in `bar` (held ones included)."""
        with self._lock:
            held = sum(1 for on, _ in self._held.values() if self.bar_of(on) == bar)
            return len(self._bars.get(bar, ())) + held

    def take_phrase(self, beat: float, quiet_beats: float) -> Phrase | None:
        """The phrase played since the last one, once the player has been quiet for
        `quiet_beats` at `beat` with nothing held; None while it is still going on."""
        with self._lock:
            first = self._phrase_from
            if first is None or self._held or beat - self._last_beat < quiet_beats:
                return None
            last = self.bar_of(self._last_beat)
            first = max(first, last - MAX_PHRASE_BARS + 1)
            self._phrase_from = None
            bars = tuple(tuple(self._bars.get(b, ())) for b in range(first, last + 1))
        return Phrase(first, bars)


class CallAndResponse:
    def __init__(self, tracker: PlayerTracker, part: Part, *, quiet_beats: float = 1.0,
                 lead_beats: float = 0.5) -> None:
        self.tracker = tracker
        self.part = part
        self.quiet_beats = quiet_beats
        self.lead_beats = lead_beats
        self.answers: list[tuple[int, int]] = []  # (first bar, bars) of each answer given

    def poll(self, beat: float) -> None:
        phrase = self.tracker.take_phrase(beat, self.quiet_beats)
        if phrase is None:
            return
        bpb = self.tracker.beats_per_bar
        start = self.tracker.bar_of(beat) + 1
        if start * bpb - beat < self.lead_beats:
            start += 1
        self.part.answer([list(notes) for notes in phrase.bars], start)
        self.answers.append((start, len(phrase.bars)))


class Accompaniment:
    def __init__(self, tracker: PlayerTracker, part: Part, *,
                 busiest_player_onsets: float = 16.0, decide_at: float = 0.75) -> None:
        self.tracker = tracker
        self.part = part
        self.busiest = busiest_player_onsets  # this many onsets per bar ask for the most
        self.decide_at = decide_at  # fraction of the bar heard before deciding
        self.decisions: dict[int, float] = {}  # bar -> density set for the bar after it
        self._decided = -1

    def poll(self, beat: float) -> None:
        bpb = self.tracker.beats_per_bar
        bar = self.tracker.bar_of(beat)
        if bar <= self._decided or beat - bar * bpb < self.decide_at * bpb:
            return
        self._decided = bar
        heard = self.tracker.onsets(bar) / self.decide_at  # as if the whole bar were like it
        lo, hi = self.part.meta.density_range
        density = lo + (hi - lo) * min(1.0, heard / self.busiest)
        self.part.set(density=density)
        self.decisions[bar] = density
