"""One generated voice: a model, its live controls, and the bars it turns into events.

Controls are an immutable `PartControls` swapped whole under a small lock; `render_bar`
takes one snapshot at the start of a bar, so a change made while a bar is being generated
applies from the next bar, and every bar is generated under one consistent set of values.
Setting a value is cheap and never waits for the model; `version` counts changes so the
worker can tell which queued bars were made with stale values.

Feel: `humanize` 1 keeps the model's microtiming, 0 snaps onsets to the 16th grid (values in
between scale the offset from the grid). `swing` delays every second 16th by swing x 1/3 of
a 16th: at 1 the pair of 16ths is 2:1, the triplet feel. Durations are kept.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from musegen.checkpoint import LoadedModel
from musegen.controls import ControlError
from musegen.engine.events import NOTE_OFF, NOTE_ON, ScheduledEvent
from musegen.generation.generator import BarGenerator, Controls
from musegen.generation.sampling import SamplingConfig
from musegen.score import DRUM_CHANNEL, Note
from musegen.timing import FOUR_FOUR, PPQN, TimeSignature

GRID_TICKS = PPQN // 4  # a 16th
SWING_SHARE = 1.0 / 3.0  # full swing: an off-16th lands a third of a 16th late
RECORDED_BARS = 64  # what `rendered` remembers (for a display and for tests)

_note_ids = itertools.count()  # next() on a count is atomic in CPython: ids stay unique


@dataclass(frozen=True, slots=True)
class PartControls:
    genre: str
    density: float  # onsets per 4/4 bar, as the model was trained
    temperature: float = 1.0
    mute: bool = False
    humanize: float = 1.0
    swing: float = 0.0


@dataclass(frozen=True, slots=True)
class RenderedBar:
    bar: int
    version: int  # the Part.version its controls came from
    controls: PartControls
    tokens: tuple[int, ...]
    events: tuple[ScheduledEvent, ...]  # empty when muted


def shape_onset(tick: int, humanize: float, swing: float) -> float:
    """Onset in ticks after humanize (distance from the nearest 16th scaled) and swing."""
    step = math.floor(tick / GRID_TICKS + 0.5)
    grid = step * GRID_TICKS
    onset = grid + humanize * (tick - grid)
    if step % 2:
        onset += swing * SWING_SHARE * GRID_TICKS
    return onset


class Part:
    def __init__(
        self,
        name: str,
        loaded: LoadedModel,
        controls: PartControls,
        *,
        channel: int | None = None,
        sampling: SamplingConfig | None = None,
        seed: int = 0,
        meter: TimeSignature = FOUR_FOUR,
    ) -> None:
        self.name = name
        self.channel = _default_channel(loaded) if channel is None else channel
        if not 0 <= self.channel <= 15:
            raise ValueError(f"channel {self.channel} outside 0..15")
        self.meter = meter
        self.rendered: deque[RenderedBar] = deque(maxlen=RECORDED_BARS)
        self._lock = threading.Lock()
        self._controls = _validated(loaded, controls)
        self._version = 0
        self._pending: LoadedModel | None = None
        self._loaded = loaded
        self._sampling = sampling or SamplingConfig()
        self._seed = seed
        self._generator = BarGenerator(loaded, self._sampling, seed)

    @property
    def beats_per_bar(self) -> float:
        return self.meter.ticks_per_bar / PPQN

    @property
    def controls(self) -> PartControls:
        return self._controls

    @property
    def version(self) -> int:
        return self._version

    def set(
        self,
        *,
        genre: str | None = None,
        density: float | None = None,
        temperature: float | None = None,
        mute: bool | None = None,
        humanize: float | None = None,
        swing: float | None = None,
    ) -> PartControls:
        """Change some controls from the next bar on; raises ControlError on a bad value."""
        with self._lock:
            c = self._controls
            new = PartControls(
                c.genre if genre is None else genre,
                c.density if density is None else density,
                c.temperature if temperature is None else temperature,
                c.mute if mute is None else mute,
                c.humanize if humanize is None else humanize,
                c.swing if swing is None else swing,
            )
            self._controls = _validated(self._pending or self._loaded, new)
            self._version += 1
            return self._controls

    def swap_model(self, loaded: LoadedModel, controls: PartControls | None = None) -> None:
        """Play `loaded` from the next bar on (load it on the caller's thread first)."""
        with self._lock:
            self._controls = _validated(loaded, controls or self._controls)
            self._pending = loaded
            self._version += 1

    def render_bar(self, bar: int) -> RenderedBar:
        """Generate bar number `bar` (from the song start) as events at absolute beats.

        Called by the generation worker only: the model state is not shared."""
        with self._lock:
            controls, version, pending = self._controls, self._version, self._pending
            self._pending = None
        if pending is not None:  # a fresh stream: the old model's state means nothing to it
            self._loaded = pending
            self._generator = BarGenerator(pending, self._sampling, self._seed)
        generator = self._generator
        if generator.sampling.temperature != controls.temperature:
            generator.sampling = replace(generator.sampling, temperature=controls.temperature)
        tokens = generator.next_bar(Controls(controls.genre, controls.density))
        events: tuple[ScheduledEvent, ...] = ()
        if not controls.mute:
            notes = self._loaded.codec.decode(tokens).notes
            events = tuple(self._events(bar, notes, controls))
        rendered = RenderedBar(bar, version, controls, tuple(tokens), events)
        self.rendered.append(rendered)
        return rendered

    def _events(self, bar: int, notes: Sequence[Note], c: PartControls) -> list[ScheduledEvent]:
        origin = bar * self.beats_per_bar
        out: list[ScheduledEvent] = []
        for note in notes:
            start = shape_onset(note.start, c.humanize, c.swing)
            end = start + (note.end - note.start)
            note_id = next(_note_ids)
            out.append(ScheduledEvent(origin + start / PPQN, NOTE_ON, self.channel, note.pitch,
                                      note.velocity, self.name, note_id))
            out.append(ScheduledEvent(origin + end / PPQN, NOTE_OFF, self.channel, note.pitch,
                                      0, self.name, note_id))
        return out


def _default_channel(loaded: LoadedModel) -> int:
    return DRUM_CHANNEL if loaded.meta.part == "drums" else 0


def _validated(loaded: LoadedModel, c: PartControls) -> PartControls:
    """The controls with the genre normalised, or ControlError saying what is valid."""
    meta = loaded.meta
    genre = meta.genre_control.validate(c.genre)
    density = meta.density_control.validate(c.density)
    if not 0.0 <= c.temperature <= 10.0:  # also rejects NaN
        raise ControlError(f"temperature {c.temperature} outside 0..10")
    for name, value in (("humanize", c.humanize), ("swing", c.swing)):
        if not 0.0 <= value <= 1.0:
            raise ControlError(f"{name} {value} outside 0..1")
    return replace(c, genre=genre, density=density, mute=bool(c.mute))
