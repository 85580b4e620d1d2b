"""A parsed piece of music in engine ticks: notes, tempo map, time signatures and bar lines.

A Score is what every representation encodes from and decodes to. It knows nothing of files:
`musegen.music.midi_io` reads and writes it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from musegen.music.midi_spec import DRUM_CHANNEL as DRUM_CHANNEL  # re-exported
from musegen.music.timing import DEFAULT_TEMPO_US, FOUR_FOUR, PPQN, TimeSignature

_C = TypeVar("_C", "TempoChange", "MeterChange")


@dataclass(frozen=True, slots=True)
class Note:
    start: int  # ticks at PPQN
    end: int  # ticks at PPQN, > start
    pitch: int
    velocity: int
    channel: int = 0
    track: int = 0

    @property
    def is_drum(self) -> bool:
        return self.channel == DRUM_CHANNEL


@dataclass(frozen=True, slots=True)
class TempoChange:
    tick: int
    us_per_quarter: int


@dataclass(frozen=True, slots=True)
class MeterChange:
    tick: int
    signature: TimeSignature


@dataclass
class Score:
    notes: list[Note]
    tempos: list[TempoChange] = field(default_factory=list)
    meters: list[MeterChange] = field(default_factory=list)
    track_names: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self.notes.sort(key=lambda n: (n.start, n.pitch, n.end))
        self.tempos.sort(key=lambda t: t.tick)
        self.meters.sort(key=lambda m: m.tick)
        if not self.tempos or self.tempos[0].tick > 0:
            self.tempos.insert(0, TempoChange(0, DEFAULT_TEMPO_US))
        if not self.meters or self.meters[0].tick > 0:
            self.meters.insert(0, MeterChange(0, FOUR_FOUR))
        # Files often repeat the meter in every track: keep one change per real change.
        self.meters = _dedupe(self.meters, lambda m: m.signature)
        self.tempos = _dedupe(self.tempos, lambda t: t.us_per_quarter)

    # --- time ---------------------------------------------------------------------------
    @property
    def end_tick(self) -> int:
        return max((n.end for n in self.notes), default=0)

    def seconds_at(self, tick: int) -> float:
        """Wall-clock seconds of a tick under this score's tempo map."""
        seconds, last_tick, tempo = 0.0, 0, self.tempos[0].us_per_quarter
        for change in self.tempos[1:]:
            if change.tick >= tick:
                break
            seconds += (change.tick - last_tick) * tempo / (PPQN * 1e6)
            last_tick, tempo = change.tick, change.us_per_quarter
        return seconds + (tick - last_tick) * tempo / (PPQN * 1e6)

    @property
    def duration_seconds(self) -> float:
        return self.seconds_at(self.end_tick)

    def meter_at(self, tick: int) -> TimeSignature:
        ticks = [m.tick for m in self.meters]
        return self.meters[max(0, bisect.bisect_right(ticks, tick) - 1)].signature

    # --- bars ---------------------------------------------------------------------------
    def bar_starts(self, until: int | None = None) -> list[int]:
        """Start tick of every bar that begins before `until` (default: the last note's end).

        A meter change starts a new bar even if the previous bar was cut short.
        """
        until = self.end_tick if until is None else until
        starts: list[int] = []
        for i, meter in enumerate(self.meters):
            stop = self.meters[i + 1].tick if i + 1 < len(self.meters) else until
            stop = min(stop, until)
            tick = meter.tick
            while tick < stop:
                starts.append(tick)
                tick += meter.signature.ticks_per_bar
        return starts or [0]

    def bars(self) -> list[tuple[int, int]]:
        """(start, end) of every bar; the last bar ends a full bar after its start."""
        starts = self.bar_starts()
        ends = [*starts[1:], starts[-1] + self.meter_at(starts[-1]).ticks_per_bar]
        return list(zip(starts, ends, strict=True))

    def notes_in(self, start: int, end: int) -> list[Note]:
        """Notes whose onset lies in [start, end): O(log n), as `notes` is kept sorted by onset."""
        lo = bisect.bisect_left(self.notes, start, key=_onset)
        return self.notes[lo : bisect.bisect_left(self.notes, end, lo=lo, key=_onset)]

    # --- selections ---------------------------------------------------------------------
    def drums(self) -> Score:
        return self.with_notes(n for n in self.notes if n.is_drum)

    def pitched(self, tracks: Sequence[int] | None = None) -> Score:
        keep = None if tracks is None else set(tracks)
        return self.with_notes(
            n for n in self.notes if not n.is_drum and (keep is None or n.track in keep)
        )

    def with_notes(self, notes: Iterable[Note]) -> Score:
        return Score(
            list(notes), list(self.tempos), list(self.meters), self.track_names, self.source
        )


def _onset(note: Note) -> int:
    return note.start


def _dedupe(changes: list[_C], value: Callable[[_C], object]) -> list[_C]:
    """Sorted changes without repeats: the last change at a tick wins, and a change to the
    value already in force is dropped."""
    out: list[_C] = []
    for change in changes:
        if out and out[-1].tick == change.tick:  # type: ignore[attr-defined]
            out[-1] = change
        elif not out or value(out[-1]) != value(change):
            out.append(change)
    merged: list[_C] = []
    for change in out:  # a same-tick replacement can make two neighbours equal again
        if not merged or value(merged[-1]) != value(change):
            merged.append(change)
    return merged
