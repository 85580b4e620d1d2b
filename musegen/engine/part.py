"""One generated voice: a model, its live controls, and the bars it turns into events.

Controls are an immutable `PartControls` swapped whole under a small lock; `render_bar`
takes one snapshot at the start of a bar, so a change made while a bar is being generated
applies from the next bar, and every bar is generated under one consistent set of values.
Setting a value is cheap and never waits for the model; `version` counts changes so the
worker can tell which queued bars were made with stale values.

Drum-machine controls: `hold` repeats the last bar instead of generating (a loop the player
can edit step by step with `edit_step`); `vary()` asks for one freshly generated bar.

Call and response: `respond=True` keeps the part silent until `answer(phrase)` arrives; the
phrase primes the model (on the generation thread, at the next render) and the part then
plays the following bars, as many as the phrase was long.

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

from musegen.checkpoint import LoadedModel, ModelMeta
from musegen.engine.events import NOTE_OFF, NOTE_ON, ScheduledEvent
from musegen.generation.generator import BarGenerator, Controls
from musegen.generation.sampling import SamplingConfig
from musegen.music.controls import ControlError
from musegen.music.score import DRUM_CHANNEL, Note, Score
from musegen.music.timing import FOUR_FOUR, PPQN, TimeSignature

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
    hold: bool = False  # loop the last bar (edits stick) instead of generating
    respond: bool = False  # call and response: silent except when answering a phrase


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
        self._phrase: tuple[list[list[Note]], int] | None = None  # an answer to prime on
        self._answer = (0, 0)  # bars [from, to) in which a responding part plays
        self._vary = False
        # Step edits by bar, applied again if that bar is regenerated (a control change
        # after the edit takes the bar back): an edit the player made is never lost.
        self._edits: dict[int, list[tuple[int, int, int]]] = {}

    @property
    def beats_per_bar(self) -> float:
        return self.meter.ticks_per_bar / PPQN

    @property
    def controls(self) -> PartControls:
        return self._controls

    @property
    def version(self) -> int:
        return self._version

    def set(self, **changes: float | str | bool | None) -> PartControls:
        """Change some controls (PartControls field names; None keeps a value) from the next
        bar on; raises ControlError on a bad value or an unknown name."""
        unknown = set(changes) - set(PartControls.__slots__)
        if unknown:
            raise ControlError(f"unknown control {sorted(unknown)[0]!r}; valid: "
                               f"{', '.join(PartControls.__slots__)}")
        given = {k: v for k, v in changes.items() if v is not None}
        with self._lock:
            self._controls = _validated(self._pending or self._loaded,
                                        replace(self._controls, **given))  # type: ignore[arg-type]
            self._version += 1
            return self._controls

    def swap_model(self, loaded: LoadedModel, controls: PartControls | None = None) -> None:
        """Play `loaded` from the next bar on (load it on the caller's thread first)."""
        with self._lock:
            self._controls = _validated(loaded, controls or self._controls)
            self._pending = loaded
            self._version += 1

    @property
    def meta(self) -> ModelMeta:
        """The model's metadata (the pending one after a swap, as controls are checked)."""
        return (self._pending or self._loaded).meta

    @property
    def model_name(self) -> str:
        return self.meta.name

    def vary(self) -> None:
        """Generate the next bar afresh even when holding (the hold then loops the new bar)."""
        with self._lock:
            self._vary = True
            self._version += 1

    def answer(self, phrase: Sequence[Sequence[Note]], from_bar: int) -> None:
        """Prime on `phrase` (one note list per bar, ticks from each bar's start) and play
        `len(phrase)` bars from `from_bar` on; the part is silent otherwise when `respond`."""
        with self._lock:
            self._phrase = ([list(notes) for notes in phrase], from_bar)
            self._version += 1

    def render_bar(self, bar: int) -> RenderedBar:
        """Generate bar number `bar` (from the song start) as events at absolute beats.

        Called by the generation worker only: the model state is not shared."""
        with self._lock:
            controls, version, pending = self._controls, self._version, self._pending
            phrase, vary = self._phrase, self._vary
            self._pending, self._phrase, self._vary = None, None, False
        if pending is not None:  # a fresh stream: the old model's state means nothing to it
            self._loaded = pending
            self._generator = BarGenerator(pending, self._sampling, self._seed)
        if phrase is not None:
            self._prime(phrase[0], controls.genre)
            self._answer = (phrase[1], phrase[1] + len(phrase[0]))
        last = next((r for r in reversed(self.rendered) if r.bar < bar), None)
        if controls.hold and not vary and last is not None:
            rendered = self._repeat(last, bar, version, controls)
        else:
            rendered = self._generate(bar, version, controls)
        with self._lock:
            for step, pitch, velocity in self._edits.get(bar, ()):
                rendered = replace(rendered, events=self._edited(rendered, step, pitch,
                                                                 velocity))
            for old in [b for b in self._edits if b < bar - RECORDED_BARS]:
                del self._edits[old]
            self.rendered.append(rendered)
        return rendered

    def _generate(self, bar: int, version: int, controls: PartControls) -> RenderedBar:
        generator = self._generator
        if generator.sampling.temperature != controls.temperature:
            generator.sampling = replace(generator.sampling, temperature=controls.temperature)
        tokens = generator.next_bar(Controls(controls.genre, controls.density))
        events: tuple[ScheduledEvent, ...] = ()
        if self._audible(bar, controls):
            notes = self._loaded.codec.decode(tokens).notes
            events = tuple(self._events(bar, notes, controls))
        return RenderedBar(bar, version, controls, tuple(tokens), events)

    def _repeat(self, last: RenderedBar, bar: int, version: int,
                controls: PartControls) -> RenderedBar:
        """`last` again at `bar` (a held loop), with fresh note ids."""
        shift = (bar - last.bar) * self.beats_per_bar
        events: list[ScheduledEvent] = []
        if self._audible(bar, controls):
            ids: dict[int, int] = {}
            for e in last.events:
                note_id = ids.setdefault(e.note_id, next(_note_ids))
                events.append(replace(e, beat=e.beat + shift, note_id=note_id))
        return RenderedBar(bar, version, controls, last.tokens, tuple(events))

    def _audible(self, bar: int, controls: PartControls) -> bool:
        if controls.mute:
            return False
        return not controls.respond or self._answer[0] <= bar < self._answer[1]

    def _prime(self, phrase: list[list[Note]], genre: str) -> None:
        """Feed the player's phrase to the model as the bars just heard."""
        bar_ticks = self.meter.ticks_per_bar
        # whatever channel the player used, the phrase is heard as this part's instrument
        channel = DRUM_CHANNEL if self._loaded.meta.part == "drums" else 0
        score = Score(notes=[replace(n, start=n.start + i * bar_ticks,
                                     end=n.end + i * bar_ticks, channel=channel)
                             for i, bar_notes in enumerate(phrase) for n in bar_notes])
        bars = self._loaded.codec.encode_bars(score)[: len(phrase)]
        if not bars:
            return
        densities = self._loaded.meta.density_control.extract(score)[: len(bars)]
        self._generator.prime(bars, densities, genre)

    def edit_step(self, bar: int, step: int, pitch: int, velocity: int) -> RenderedBar | None:
        """Set (velocity > 0) or clear one 16th step of `pitch` in rendered bar `bar`; returns
        the edited bar, or None when that bar is not (or no longer) rendered. A held part
        loops the edited bar from then on (the caller edits held bars already made after it)."""
        self.check_step(step, pitch, velocity)
        with self._lock:
            index = next((i for i in range(len(self.rendered) - 1, -1, -1)
                          if self.rendered[i].bar == bar), None)
            if index is None:
                return None
            old = self.rendered[index]
            edited = replace(old, events=self._edited(old, step, pitch, velocity))
            self.rendered[index] = edited
            self._edits.setdefault(bar, []).append((step, pitch, velocity))
            return edited

    def defer_step(self, bar: int, step: int, pitch: int, velocity: int) -> bool:
        """Keep a step edit for bar `bar`, not rendered yet, to go into it when it is; False
        (nothing kept) once that bar or a later one is rendered: edit it with `edit_step`.
        Checked and kept under the lock `render_bar` applies edits under, so an edit is
        either kept in time for the bar or refused, never lost in between."""
        self.check_step(step, pitch, velocity)
        with self._lock:
            if any(r.bar >= bar for r in self.rendered):
                return False
            self._edits.setdefault(bar, []).append((step, pitch, velocity))
            return True

    def check_step(self, step: int, pitch: int, velocity: int) -> None:
        """ControlError unless (step, pitch, velocity) is a valid step edit."""
        if not 0 <= pitch <= 127 or not 0 <= velocity <= 127:
            raise ControlError("pitch and velocity must be in 0..127")
        steps = self.meter.ticks_per_bar // GRID_TICKS
        if not 0 <= step < steps:
            raise ControlError(f"step {step} outside 0..{steps - 1}")

    def _edited(self, old: RenderedBar, step: int, pitch: int,
                velocity: int) -> tuple[ScheduledEvent, ...]:
        origin = old.bar * self.beats_per_bar
        lo = origin + step * GRID_TICKS / PPQN
        hi = lo + GRID_TICKS / PPQN
        cut = {e.note_id for e in old.events
               if e.kind == NOTE_ON and e.pitch == pitch and lo - 1e-9 <= e.beat < hi - 1e-9}
        events = [e for e in old.events if e.note_id not in cut]
        if velocity > 0:
            note_id = next(_note_ids)
            length = GRID_TICKS / PPQN / 2  # a drum hit: half a 16th, the GM kit rings anyway
            events += [ScheduledEvent(lo, NOTE_ON, self.channel, pitch, velocity, self.name,
                                      note_id),
                       ScheduledEvent(lo + length, NOTE_OFF, self.channel, pitch, 0, self.name,
                                      note_id)]
        events.sort(key=lambda e: (e.beat, e.kind == NOTE_ON))
        return tuple(events)

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
