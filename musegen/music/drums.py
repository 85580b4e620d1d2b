"""GrooVAE-style drum patterns: hits, velocities and micro-timing on a fixed step grid.

A `DrumPattern` is three `[steps, 9]` arrays over the nine GMD drum classes (`drum_map`):
`hits` says which class sounds at which grid step, `velocities` how hard (1..127, 0 where
silent) and `offsets` how far the played onset lies from its step, in fractions of a step in
[-0.5, 0.5). The grid has `steps_per_quarter` steps per quarter note (4 = 16th notes). As in
Gillick et al. 2019 the quantised pattern and the humanised feel live side by side: velocities
and offsets are data, never thrown away. Bars of any meter are kept as `bar_starts` (in steps)
next to the meters and tempos they came from (in ticks).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from musegen.music.drum_map import CLASS_TO_GM_PITCH, NUM_DRUM_CLASSES, drum_class
from musegen.music.score import DRUM_CHANNEL, MeterChange, Note, Score, TempoChange
from musegen.music.timing import FOUR_FOUR, PPQN, TimeSignature

DEFAULT_STEPS_PER_QUARTER = 4  # 16th-note grid, as GrooVAE
DRUM_NOTE_TICKS = PPQN // 8  # decoded hits last a 32nd: a drum's note-off carries no meaning
DRUM_TRACK_NAME = "Drums"
MIN_VELOCITY = 1
MAX_VELOCITY = 127

# One time signature for every bar, or a meter map in ticks as `Score.meters`.
Meters: TypeAlias = TimeSignature | Sequence[MeterChange]


@dataclass
class DrumPattern:
    """Hits, velocities and offsets of the nine drum classes on a grid of steps."""

    hits: NDArray[np.bool_]  # [steps, 9]
    velocities: NDArray[np.int16]  # [steps, 9], 1..127 where hit, 0 elsewhere
    offsets: NDArray[np.float32]  # [steps, 9], fraction of a step in [-0.5, 0.5), 0 elsewhere
    steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER
    bar_starts: list[int] = field(default_factory=lambda: [0])  # first step of every bar
    meters: list[MeterChange] = field(default_factory=list)  # in ticks, as the source score
    tempos: list[TempoChange] = field(default_factory=list)
    collisions: int = 0  # same-class hits dropped because a louder one shared their step
    dropped_tokens: int = 0  # tokens a tolerant decoder ignored (0 unless built from tokens)

    def __post_init__(self) -> None:
        step_ticks(self.steps_per_quarter)  # validates the grid
        shape = (self.hits.shape[0], NUM_DRUM_CLASSES)
        for name in ("hits", "velocities", "offsets"):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, want {shape}")
        starts = self.bar_starts
        if any(b <= a for a, b in itertools.pairwise(starts)) or (
            starts and (starts[0] != 0 or starts[-1] >= self.num_steps)
        ):
            raise ValueError(f"bar starts {starts} do not split {self.num_steps} steps")

    @property
    def num_steps(self) -> int:
        return int(self.hits.shape[0])

    @property
    def step_ticks(self) -> int:
        return step_ticks(self.steps_per_quarter)

    def bar_bounds(self) -> list[tuple[int, int]]:
        """(first step, end step) of every bar; the last bar ends with the pattern."""
        if not self.bar_starts:  # a pattern of zero bars (decoded from no BAR token)
            return []
        ends = [*self.bar_starts[1:], self.num_steps]
        return list(zip(self.bar_starts, ends, strict=True))


# --- grid and bars -------------------------------------------------------------------------
def step_ticks(steps_per_quarter: int) -> int:
    """Ticks of one grid step; the grid must divide PPQN so every step starts on a tick."""
    if steps_per_quarter <= 0 or PPQN % steps_per_quarter:
        raise ValueError(f"steps_per_quarter {steps_per_quarter} does not divide PPQN {PPQN}")
    return PPQN // steps_per_quarter


def nearest_step(tick: int, ticks_per_step: int) -> int:
    """The grid step nearest a tick; a tick exactly between two steps goes to the later one."""
    return (tick + ticks_per_step // 2) // ticks_per_step


def meter_list(meters: Meters) -> list[MeterChange]:
    """A meter map in ticks that starts at tick 0 (4/4 until the first change, as MIDI)."""
    if isinstance(meters, TimeSignature):
        return [MeterChange(0, meters)]
    changes = sorted(meters, key=lambda m: m.tick)
    if not changes or changes[0].tick > 0:
        changes.insert(0, MeterChange(0, FOUR_FOUR))
    return changes


def _bar_ticks(meters: list[MeterChange]) -> Iterator[int]:
    """Bar start ticks, forever; a meter change starts a new bar even if the last was cut short
    (the rule `Score.bar_starts` follows)."""
    change_ticks = [m.tick for m in meters]
    tick = 0
    while True:
        yield tick
        i = bisect.bisect_right(change_ticks, tick) - 1
        following = tick + meters[i].signature.ticks_per_bar
        if i + 1 < len(meters):
            following = min(following, meters[i + 1].tick)
        tick = following


def _bar_layout(
    meters: list[MeterChange], ticks_per_step: int, n_bars: int | None, until_tick: int = 0
) -> tuple[list[int], int]:
    """Bar start steps and total steps for `n_bars` bars, or for the bars starting before
    `until_tick`. Bars shorter than a step after rounding are merged into their neighbour."""
    ticks: list[int] = []
    for tick in _bar_ticks(meters):
        if len(ticks) == n_bars or (n_bars is None and ticks and tick >= until_tick):
            end = nearest_step(tick, ticks_per_step)
            break
        ticks.append(tick)
    starts: list[int] = []
    for step in (nearest_step(t, ticks_per_step) for t in ticks):
        if step < end and (not starts or step > starts[-1]):
            starts.append(step)
    return starts, end


def empty_pattern(
    n_bars: int,
    meters: Meters = FOUR_FOUR,
    steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER,
    tempos: Sequence[TempoChange] = (),
) -> DrumPattern:
    """A silent pattern of `n_bars` bars laid out by `meters`."""
    changes = meter_list(meters)
    starts, n_steps = _bar_layout(changes, step_ticks(steps_per_quarter), n_bars)
    return _silent(starts, n_steps, changes, steps_per_quarter, tempos)


def _silent(
    starts: list[int],
    n_steps: int,
    meters: list[MeterChange],
    steps_per_quarter: int,
    tempos: Sequence[TempoChange],
) -> DrumPattern:
    end_tick = n_steps * step_ticks(steps_per_quarter)
    shape = (n_steps, NUM_DRUM_CLASSES)
    return DrumPattern(
        hits=np.zeros(shape, dtype=np.bool_),
        velocities=np.zeros(shape, dtype=np.int16),
        offsets=np.zeros(shape, dtype=np.float32),
        steps_per_quarter=steps_per_quarter,
        bar_starts=starts,
        # meter changes past the end would describe bars the pattern does not have
        meters=[m for i, m in enumerate(meters) if i == 0 or m.tick < end_tick],
        tempos=list(tempos),
    )


# --- Score <-> DrumPattern -----------------------------------------------------------------
def drum_notes(score: Score) -> list[Note]:
    """The notes read as drums: those on channel 10, or every note if none is on channel 10.

    A score with any note on channel 10 (the GM drum channel) has said which notes are drums, so
    its pitched parts must not be read as a kit. Drum-only files from some e-kits and DAW exports
    put the kit on another channel; with nothing on channel 10, every note whose pitch maps to a
    drum class is taken. Pitches outside the nine classes are left out either way.
    """
    notes = [n for n in score.notes if n.is_drum] or score.notes
    return [n for n in notes if drum_class(n.pitch) is not None]


def encode_drums(score: Score, steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER) -> DrumPattern:
    """The score's drums as a pattern covering every bar up to the last onset.

    Each onset goes to its nearest step; its offset is (onset - step tick) / step ticks. Two
    hits of one class on one step keep the louder (the earlier on a tie), as GrooVAE does; the
    other is counted in `collisions`.
    """
    ticks_per_step = step_ticks(steps_per_quarter)
    notes = drum_notes(score)
    last_step = max((nearest_step(n.start, ticks_per_step) for n in notes), default=0)
    meters = meter_list(score.meters)
    starts, n_steps = _bar_layout(meters, ticks_per_step, None, last_step * ticks_per_step + 1)
    pattern = _silent(starts, n_steps, meters, steps_per_quarter, score.tempos)
    for note in notes:  # sorted by onset, so a tie keeps the earlier hit
        _place(pattern, note, ticks_per_step)
    return pattern


def _place(pattern: DrumPattern, note: Note, ticks_per_step: int) -> None:
    cls = drum_class(note.pitch)
    assert cls is not None  # drum_notes() kept only mapped pitches
    step = nearest_step(note.start, ticks_per_step)
    velocity = min(max(note.velocity, MIN_VELOCITY), MAX_VELOCITY)
    if pattern.hits[step, cls]:
        pattern.collisions += 1
        if velocity <= pattern.velocities[step, cls]:
            return
    pattern.hits[step, cls] = True
    pattern.velocities[step, cls] = velocity
    pattern.offsets[step, cls] = (note.start - step * ticks_per_step) / ticks_per_step


def offset_ticks(offset: float, ticks_per_step: int) -> int:
    """An offset in ticks, rounded half up and kept inside its step's half-open window so two
    steps never decode onto the same tick."""
    ticks = _round_half_up(float(offset) * ticks_per_step)
    return min(max(ticks, -(ticks_per_step // 2)), (ticks_per_step - 1) // 2)


def decode_drums(pattern: DrumPattern) -> Score:
    """A Score of the pattern's hits on channel 10 with one GM note per class (32nd long),
    onset = step tick + offset, keeping the pattern's meters and tempos."""
    ticks_per_step = pattern.step_ticks
    notes: list[Note] = []
    for step, cls in np.argwhere(pattern.hits):
        onset = int(step) * ticks_per_step
        onset = max(0, onset + offset_ticks(pattern.offsets[step, cls], ticks_per_step))
        velocity = min(max(int(pattern.velocities[step, cls]), MIN_VELOCITY), MAX_VELOCITY)
        pitch = CLASS_TO_GM_PITCH[int(cls)]
        notes.append(Note(onset, onset + DRUM_NOTE_TICKS, pitch, velocity, DRUM_CHANNEL, 0))
    return Score(notes, list(pattern.tempos), list(pattern.meters), [DRUM_TRACK_NAME])


def hits_per_bar(pattern: DrumPattern) -> list[int]:
    """Hits of all classes in every bar: the drum density."""
    return [int(pattern.hits[a:b].sum()) for a, b in pattern.bar_bounds()]


def _round_half_up(x: float) -> int:
    # not round(): banker's rounding would pull ties to even ticks, a bias a drummer never has
    return math.floor(x + 0.5)


# --- quantisation of the feel --------------------------------------------------------------
def _check_bins(bins: int, most: int) -> None:
    if not 1 <= bins <= most:
        raise ValueError(f"bins must be in 1..{most}, got {bins}")


def quantize_velocity(velocity: int, bins: int) -> int:
    """Bin of a MIDI velocity: 1..127 cut into `bins` bins of equal width."""
    _check_bins(bins, MAX_VELOCITY)
    v = min(max(int(velocity), MIN_VELOCITY), MAX_VELOCITY)
    return min((v - MIN_VELOCITY) * bins // MAX_VELOCITY, bins - 1)


def dequantize_velocity(bin_index: int, bins: int) -> int:
    """The velocity at the centre of a bin (an out-of-range bin is clamped)."""
    _check_bins(bins, MAX_VELOCITY)
    b = min(max(int(bin_index), 0), bins - 1)
    # bin b holds the velocities in [1 + b*width, 1 + (b+1)*width); take their middle one
    centre = _round_half_up(MIN_VELOCITY + (b + 0.5) * (MAX_VELOCITY / bins) - 0.5)
    return min(max(centre, MIN_VELOCITY), MAX_VELOCITY)


def quantize_offset(offset: float, bins: int) -> int:
    """Bin of an offset: [-0.5, 0.5) cut into `bins` bins of equal width."""
    _check_bins(bins, 1 << 16)
    return min(max(math.floor((float(offset) + 0.5) * bins), 0), bins - 1)


def dequantize_offset(bin_index: int, bins: int) -> float:
    """The offset at the centre of a bin (an out-of-range bin is clamped)."""
    _check_bins(bins, 1 << 16)
    b = min(max(int(bin_index), 0), bins - 1)
    return -0.5 + (b + 0.5) / bins
