"""Performance tokens for melodic and polyphonic parts: note-on/off, musical time shifts, bars.

Representation
--------------
A piece is a sequence of bars; each bar's tokens start with BAR. Inside a bar, time is a
position on a grid of `steps_per_quarter` units per quarter (12: 16ths and triplets both land
on it, one unit = 40 ticks), counted from the bar line. Events at a position:

* TIME_SHIFT_n moves the position forward n units (1..max_shift_steps). A shift never reaches
  the next bar line: only BAR crosses it, and after BAR the position is the bar start.
* NOTE_OFF_p / NOTE_ON_p end / start pitch p. At one position all note-offs (by pitch) come
  before all note-ons (by pitch), so a re-struck pitch reads "off, on".
* VELOCITY_b sets the bin for the following note-ons. It is emitted before a note-on when the
  bin changes, and always before the first note-on of a bar, so any bar-aligned window carries
  its own velocities.

Bar lines come from the score's meters: the same bars as `Score.bar_starts`, so meter changes
and cut-short bars work (a bar that is not a whole number of units gets the grid points inside
it). Onsets and offsets snap to the nearest grid point (halves to the later), so one in the last
half unit of a bar lands on the next downbeat. A note that snaps to zero length gets one unit; a
note held across a bar line has its NOTE_OFF in a later bar. A pitch re-struck while sounding
ends the old note at the new onset; notes of one pitch snapped to one onset become one (the
longer). Drum-channel notes and pitches outside [min_pitch, max_pitch] are dropped. Each such
change is counted in the optional `stats` Counter of `encode`/`encode_bars`.

Windows: a window of `encode_bars` may begin while notes from before it still sound; their
NOTE_OFFs then have no NOTE_ON. `decode` drops such orphan note-offs (and counts them), so a
window decodes to exactly the notes that start inside it. Decoding never raises on tokens:
anything illegal (ids outside the vocabulary, an orphan note-off, a shift past the bar end) is
skipped and counted in the optional `errors` Counter; EOS ends decoding; notes still sounding
at the end close at the end of the last bar.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Final

from musegen.music.score import MeterChange, Note, Score
from musegen.music.special_tokens import BAR, BOS, EOS, NUM_SPECIAL, SPECIAL_NAMES
from musegen.music.timing import FOUR_FOUR, PPQN, TimeSignature

CONFIG_KIND: Final = "performance"
CONFIG_VERSION: Final = 1
DEFAULT_VELOCITY: Final = 64  # for note-ons that come before any VELOCITY token
# Tried in order when a bar length (ticks) must be written as a time signature.
_METER_DENOMINATORS: Final = (4, 8, 16, 32, 64)

# Bar layout for decoding: one signature, meter changes, or one length in ticks per bar
# (the last length repeats).
Meters = TimeSignature | Sequence[MeterChange] | Sequence[int]
_Event = tuple[int, int, int, int]  # (time, 0 = off / 1 = on, pitch, velocity bin)


class TokenKind(StrEnum):
    PAD = "PAD"
    BOS = "BOS"
    EOS = "EOS"
    BAR = "BAR"
    NOTE_ON = "NOTE_ON"
    NOTE_OFF = "NOTE_OFF"
    TIME_SHIFT = "TIME_SHIFT"
    VELOCITY = "VELOCITY"


_SPECIAL_KINDS: Final = tuple(TokenKind)[:NUM_SPECIAL]  # PAD, BOS, EOS, BAR by id
if tuple(map(str, _SPECIAL_KINDS)) != SPECIAL_NAMES:  # pragma: no cover - a layout bug
    raise AssertionError("TokenKind must start with the shared special tokens, by id")


@dataclass(frozen=True, slots=True)
class PerformanceConfig:
    steps_per_quarter: int = 12
    velocity_bins: int = 16
    max_shift_steps: int = 48  # one 4/4 bar
    min_pitch: int = 21  # A0, the piano's range
    max_pitch: int = 108  # C8

    def __post_init__(self) -> None:
        if self.steps_per_quarter <= 0 or PPQN % self.steps_per_quarter:
            raise ValueError(f"steps_per_quarter must divide {PPQN}: {self.steps_per_quarter}")
        if not 1 <= self.velocity_bins <= 127:
            raise ValueError(f"velocity_bins must be in 1..127: {self.velocity_bins}")
        if self.max_shift_steps < 1:
            raise ValueError(f"max_shift_steps must be positive: {self.max_shift_steps}")
        if not 0 <= self.min_pitch <= self.max_pitch <= 127:
            raise ValueError(f"bad pitch range {self.min_pitch}..{self.max_pitch}")

    @property
    def unit_ticks(self) -> int:
        return PPQN // self.steps_per_quarter

    def to_dict(self) -> dict[str, Any]:
        return {"kind": CONFIG_KIND, "version": CONFIG_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceConfig:
        values = dict(data)
        if values.pop("kind", CONFIG_KIND) != CONFIG_KIND:
            raise ValueError(f"not a performance config: kind={data.get('kind')!r}")
        if values.pop("version", CONFIG_VERSION) != CONFIG_VERSION:
            raise ValueError(f"unsupported performance config version {data.get('version')!r}")
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown performance config keys: {sorted(unknown)}")
        return cls(**values)


class BarGrid:
    """Bar k's start tick and grid positions for any k >= 0; a 'grid index' counts positions
    from the first downbeat across bars, so index + 1 may be the next bar's downbeat."""

    def __init__(self, segments: Sequence[tuple[int, int]], unit: int) -> None:
        # (tick, ticks per bar): bars repeat from `tick` until the next segment starts a bar.
        self._segments = sorted(segments, key=lambda s: s[0])
        first = self._segments[0][0] if self._segments else -1
        if first != 0 or any(per_bar <= 0 for _, per_bar in self._segments):
            raise ValueError(f"bad bar layout {segments[:4]}")
        self._unit = unit
        self._segment = 0
        self._starts = [0]
        self._firsts = [0]  # grid index of each bar's downbeat

    def _extend(self, bar: int) -> None:
        while len(self._starts) <= bar + 1:  # bar k's length needs bar k+1's start
            start, segments = self._starts[-1], self._segments
            while self._segment + 1 < len(segments) and segments[self._segment + 1][0] <= start:
                self._segment += 1
            nxt = start + segments[self._segment][1]
            if self._segment + 1 < len(segments):
                nxt = min(nxt, segments[self._segment + 1][0])  # a meter change cuts the bar
            self._firsts.append(self._firsts[-1] + -(-(nxt - start) // self._unit))
            self._starts.append(nxt)

    def start(self, bar: int) -> int:
        self._extend(bar)
        return self._starts[bar]

    def positions(self, bar: int) -> int:
        self._extend(bar)
        return self._firsts[bar + 1] - self._firsts[bar]

    def tick(self, bar: int, position: int) -> int:
        return self.start(bar) + position * self._unit

    def snap(self, tick: int) -> int:
        """Grid index nearest to `tick` (halves round up)."""
        tick = max(0, tick)
        while self._starts[-1] <= tick:
            self._extend(len(self._starts))
        bar = bisect.bisect_right(self._starts, tick) - 1
        offset = tick - self._starts[bar]
        position = (offset + self._unit // 2) // self._unit
        # In a bar of a fractional number of units the next downbeat can be nearer than that.
        if self._starts[bar + 1] - tick <= abs(offset - position * self._unit):
            return self._firsts[bar + 1]
        return self._firsts[bar] + position

    def locate(self, index: int) -> tuple[int, int]:
        """(bar, position) of a grid index."""
        while self._firsts[-1] <= index:
            self._extend(len(self._starts))
        bar = bisect.bisect_right(self._firsts, index) - 1
        return bar, index - self._firsts[bar]


@dataclass(slots=True)
class _Span:
    pitch: int
    start: int  # grid index
    end: int  # grid index, > start
    velocity_bin: int


@dataclass(slots=True)
class _Decoding:
    grid: BarGrid
    bar: int = -1  # tokens before the first BAR belong to bar 0
    position: int = 0
    velocity: int = DEFAULT_VELOCITY
    sounding: dict[int, tuple[int, int]] = field(default_factory=dict)  # pitch -> (tick, vel)
    notes: list[Note] = field(default_factory=list)

    def now(self) -> int:
        self.bar = max(self.bar, 0)
        return self.grid.tick(self.bar, self.position)


class PerformanceTokenizer:
    """Token ids: PAD, BOS, EOS, BAR, then NOTE_ON_p and NOTE_OFF_p for p in min..max pitch,
    TIME_SHIFT_n for n in 1..max_shift_steps, VELOCITY_b for b in 0..velocity_bins-1."""

    def __init__(self, config: PerformanceConfig | None = None) -> None:
        self.config = config or PerformanceConfig()
        c = self.config
        pitches = c.max_pitch - c.min_pitch + 1
        starts = list(itertools.accumulate(
            (pitches, pitches, c.max_shift_steps, c.velocity_bins), initial=NUM_SPECIAL
        ))
        self.note_on_ids, self.note_off_ids, self.time_shift_ids, self.velocity_ids = (
            range(a, b) for a, b in itertools.pairwise(starts)
        )
        self.vocab_size = starts[-1]
        self.unit = c.unit_ticks
        # (kind, ids, value of the first id) for every valued block
        self._blocks = (
            (TokenKind.NOTE_ON, self.note_on_ids, c.min_pitch),
            (TokenKind.NOTE_OFF, self.note_off_ids, c.min_pitch),
            (TokenKind.TIME_SHIFT, self.time_shift_ids, 1),
            (TokenKind.VELOCITY, self.velocity_ids, 0),
        )
        by_bin: dict[int, list[int]] = {}
        for v in range(1, 128):
            by_bin.setdefault(self.velocity_bin(v), []).append(v)
        self._bin_velocity = tuple(vs[len(vs) // 2] for _, vs in sorted(by_bin.items()))

    # --- ids ----------------------------------------------------------------------------
    def note_on(self, pitch: int) -> int:
        return _pick(self.note_on_ids, pitch - self.config.min_pitch)

    def note_off(self, pitch: int) -> int:
        return _pick(self.note_off_ids, pitch - self.config.min_pitch)

    def time_shift(self, steps: int) -> int:
        return _pick(self.time_shift_ids, steps - 1)

    def velocity(self, velocity_bin: int) -> int:
        return _pick(self.velocity_ids, velocity_bin)

    def describe(self, token: int) -> tuple[TokenKind, int]:
        """(kind, value): the pitch, shift steps or velocity bin; 0 for the special tokens."""
        if 0 <= token < NUM_SPECIAL:
            return _SPECIAL_KINDS[token], 0
        for kind, ids, first in self._blocks:
            if token in ids:
                return kind, token - ids.start + first
        raise ValueError(f"token {token} outside vocabulary of {self.vocab_size}")

    def token_name(self, token: int) -> str:
        kind, value = self.describe(token)
        return str(kind) if token < NUM_SPECIAL else f"{kind}_{value}"

    def velocity_bin(self, velocity: int) -> int:
        return (min(127, max(1, velocity)) - 1) * self.config.velocity_bins // 127

    def bin_velocity(self, velocity_bin: int) -> int:
        """The middle MIDI velocity of a bin."""
        return self._bin_velocity[velocity_bin]

    def bar_grid(self, meters: Meters = FOUR_FOUR) -> BarGrid:
        """The bars `decode` lays tokens on; `positions(k)` bounds the TIME_SHIFTs in bar k."""
        return BarGrid(_layout(meters)[0], self.unit)

    # --- encoding -----------------------------------------------------------------------
    def encode(self, score: Score, stats: Counter[str] | None = None) -> list[int]:
        """BOS, every bar's tokens, EOS."""
        return [BOS, *itertools.chain.from_iterable(self.encode_bars(score, stats)), EOS]

    def encode_bars(self, score: Score, stats: Counter[str] | None = None) -> list[list[int]]:
        """Tokens per bar, each list starting with BAR; every bar of `score.bar_starts()`."""
        stats = Counter() if stats is None else stats
        grid = self.bar_grid(score.meters)
        per_bar: dict[int, list[_Event]] = {}
        for index, order, pitch, velocity_bin in self._events(score, grid, stats):
            bar, position = grid.locate(index)
            per_bar.setdefault(bar, []).append((position, order, pitch, velocity_bin))
        bars = max(len(score.bar_starts()), max(per_bar, default=-1) + 1)
        return [self._bar_tokens(per_bar.get(bar, [])) for bar in range(bars)]

    def _events(self, score: Score, grid: BarGrid, stats: Counter[str]) -> list[_Event]:
        """(grid index, 0 = off / 1 = on, pitch, velocity bin), in token order."""
        events: list[_Event] = []
        for span in self._resolve_overlaps(self._spans(score, grid, stats), stats):
            events.append((span.end, 0, span.pitch, span.velocity_bin))
            events.append((span.start, 1, span.pitch, span.velocity_bin))
        return sorted(events)

    def _spans(self, score: Score, grid: BarGrid, stats: Counter[str]) -> list[_Span]:
        c, spans = self.config, []
        for note in score.notes:
            if note.is_drum or not c.min_pitch <= note.pitch <= c.max_pitch:
                stats["drum" if note.is_drum else "out_of_range"] += 1
                continue
            start, end = grid.snap(note.start), grid.snap(note.end)
            if end <= start:
                stats["lengthened"] += 1
                end = start + 1
            spans.append(_Span(note.pitch, start, end, self.velocity_bin(note.velocity)))
        return spans

    @staticmethod
    def _resolve_overlaps(spans: list[_Span], stats: Counter[str]) -> list[_Span]:
        # A pitch sounds once at a time: keep the longest of equal onsets, cut overlaps short.
        spans.sort(key=lambda s: (s.pitch, s.start, -s.end))
        kept: list[_Span] = []
        for span in spans:
            prev = kept[-1] if kept and kept[-1].pitch == span.pitch else None
            if prev is not None and prev.start == span.start:
                stats["merged"] += 1
                continue
            if prev is not None and prev.end > span.start:
                stats["truncated"] += 1
                prev.end = span.start
            kept.append(span)
        return kept

    def _bar_tokens(self, events: list[_Event]) -> list[int]:
        """BAR, then (position, order, pitch, velocity bin) events as tokens."""
        tokens, now, velocity_bin = [BAR], 0, -1  # -1: re-state the velocity in every bar
        for position, order, pitch, vbin in events:
            while position > now:
                step = min(position - now, self.config.max_shift_steps)
                tokens.append(self.time_shift(step))
                now += step
            if order == 0:
                tokens.append(self.note_off(pitch))
                continue
            if vbin != velocity_bin:
                tokens.append(self.velocity(vbin))
                velocity_bin = vbin
            tokens.append(self.note_on(pitch))
        return tokens

    # --- decoding -----------------------------------------------------------------------
    def decode(
        self, tokens: Iterable[int], meters: Meters = FOUR_FOUR, errors: Counter[str] | None = None
    ) -> Score:
        """A Score (one track, channel 0) from tokens laid on the bars of `meters`."""
        errors = Counter() if errors is None else errors
        segments, changes = _layout(meters)
        state = _Decoding(BarGrid(segments, self.unit))
        for token in tokens:
            try:
                kind, value = self.describe(operator.index(token))
            except (TypeError, ValueError):
                errors["unknown"] += 1
                continue
            if kind is TokenKind.EOS:
                break
            self._apply(state, kind, value, errors)
        end = state.grid.start(state.bar + 1)
        for pitch, (start, velocity) in state.sounding.items():
            errors["unclosed"] += 1
            state.notes.append(Note(start, max(end, start + self.unit), pitch, velocity))
        return Score(state.notes, meters=changes, track_names=["performance"])

    def _apply(self, state: _Decoding, kind: TokenKind, value: int, errors: Counter[str]) -> None:
        if kind is TokenKind.BAR:
            state.bar, state.position = state.bar + 1, 0
        elif kind is TokenKind.TIME_SHIFT:
            state.now()  # opens bar 0 if no BAR came yet
            if state.position + value < state.grid.positions(state.bar):
                state.position += value
            else:
                errors["shift_past_bar"] += 1
        elif kind is TokenKind.VELOCITY:
            state.velocity = self.bin_velocity(value)
        elif kind is TokenKind.NOTE_ON:
            if value in state.sounding:  # never encoded: end the old note, as a re-strike would
                errors["restrike"] += 1
                self._close(state, value, errors)
            state.sounding[value] = (state.now(), state.velocity)
        elif kind is TokenKind.NOTE_OFF:
            if value in state.sounding:
                self._close(state, value, errors)
            else:
                errors["orphan_off"] += 1

    def _close(self, state: _Decoding, pitch: int, errors: Counter[str]) -> None:
        start, velocity = state.sounding.pop(pitch)
        end = state.now()
        if end <= start:
            errors["zero_length"] += 1
            end = start + self.unit
        state.notes.append(Note(start, end, pitch, velocity))

    # --- analysis -----------------------------------------------------------------------
    def onsets_per_bar(self, score: Score) -> list[int]:
        """Melodic density: onsets of the notes this tokenizer encodes, per bar of `score.bars()`
        (by raw onset tick, before any snapping)."""
        low, high = self.config.min_pitch, self.config.max_pitch
        return [
            sum(not n.is_drum and low <= n.pitch <= high for n in score.notes_in(start, end))
            for start, end in score.bars()
        ]


def _pick(ids: range, offset: int) -> int:
    if not 0 <= offset < len(ids):  # a negative offset would silently index from the end
        raise ValueError(f"value out of range for token ids {ids}")
    return ids[offset]


def _layout(meters: Meters) -> tuple[list[tuple[int, int]], list[MeterChange]]:
    """Bar segments (tick, ticks per bar) and the meter changes a decoded Score carries."""
    if isinstance(meters, TimeSignature):
        return [(0, meters.ticks_per_bar)], [MeterChange(0, meters)]
    changes = sorted((m for m in meters if isinstance(m, MeterChange)), key=lambda m: m.tick)
    lengths = [length for length in meters if isinstance(length, int)]
    if len(changes) + len(lengths) != len(meters) or (changes and lengths):
        raise TypeError("meters must be a TimeSignature, MeterChanges or bar lengths in ticks")
    if lengths:
        starts = list(itertools.accumulate(lengths[:-1], initial=0))
        changes = [
            MeterChange(tick, _meter_for(length))
            for i, (tick, length) in enumerate(zip(starts, lengths, strict=True))
            if i == 0 or length != lengths[i - 1]
        ]
        return list(zip(starts, lengths, strict=True)), changes
    if not changes or changes[0].tick > 0:
        changes.insert(0, MeterChange(0, FOUR_FOUR))
    return [(m.tick, m.signature.ticks_per_bar) for m in changes], changes


def _meter_for(bar_ticks: int) -> TimeSignature:
    """The simplest time signature of a bar length (x/64 approximates odd lengths)."""
    for denominator in _METER_DENOMINATORS:
        numerator, rest = divmod(bar_ticks * denominator, 4 * PPQN)
        if rest == 0 and numerator > 0:
            return TimeSignature(numerator, denominator)
    return TimeSignature(max(1, round(bar_ticks * 64 / (4 * PPQN))), 64)
