"""Grammar masks: which tokens may come next, so sampling can never produce an illegal sequence.

Each grammar is a small state machine over one tokenizer's layout: `allowed()` gives a bool
mask over the vocabulary, `advance(token)` moves the state. Both are O(vocab) numpy work with
no allocation beyond the mask, cheap beside a model step.

Drums: BAR, then steps strictly forward inside the bar, each with hits in rising class order,
each hit followed by exactly one OFFSET.
Performance: no NOTE_OFF without its NOTE_ON, no re-strike of a sounding pitch, TIME_SHIFT only
up to the bar line (the BAR token crosses it), bounded polyphony, no VELOCITY right after one.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from musegen.music.drum_map import NUM_DRUM_CLASSES
from musegen.music.drum_tokens import DrumTokenizer
from musegen.music.performance import PerformanceTokenizer, TokenKind
from musegen.music.special_tokens import BAR, EOS
from musegen.music.timing import FOUR_FOUR, TimeSignature

Mask = npt.NDArray[np.bool_]


class Grammar(Protocol):
    def allowed(self) -> Mask: ...

    def advance(self, token: int) -> None: ...

    @property
    def bars_started(self) -> int: ...


class DrumGrammar:
    def __init__(self, tokenizer: DrumTokenizer, meter: TimeSignature = FOUR_FOUR) -> None:
        self.tok = tokenizer
        self.steps_per_bar = meter.steps_per_bar(tokenizer.config.steps_per_quarter)
        self.vbins = tokenizer.config.velocity_bins
        self._mask = np.zeros(tokenizer.vocab_size, dtype=bool)
        self.bars_started = 0
        self.step = -1  # current step in the bar, -1 before the first STEP
        self.last_class = -1
        self.need_offset = False

    def allowed(self) -> Mask:
        m, t = self._mask, self.tok
        m[:] = False
        if self.bars_started == 0:
            m[BAR] = True
            return m
        if self.need_offset:
            m[t.offset_range.start : t.offset_range.stop] = True
            return m
        m[BAR] = m[EOS] = True
        m[t.step_range.start + self.step + 1 : t.step_range.start + self.steps_per_bar] = True
        if self.step >= 0 and self.last_class + 1 < NUM_DRUM_CLASSES:
            first = t.hit_range.start + (self.last_class + 1) * self.vbins
            m[first : t.hit_range.stop] = True
        if self.step >= 0 and self.last_class < 0:  # a STEP must carry at least one hit
            m[:] = False
            m[t.hit_range.start : t.hit_range.stop] = True
        return m

    def advance(self, token: int) -> None:
        t = self.tok
        if token == BAR:
            self.bars_started += 1
            self.step, self.last_class = -1, -1
        elif token in t.step_range:
            self.step, self.last_class = token - t.step_range.start, -1
        elif token in t.hit_range:
            self.last_class, self.need_offset = t.hit_of(token)[0], True
        elif token in t.offset_range:
            self.need_offset = False


class PerformanceGrammar:
    def __init__(
        self,
        tokenizer: PerformanceTokenizer,
        meter: TimeSignature = FOUR_FOUR,
        max_polyphony: int = 12,
        max_hold_bars: float = 2.0,
    ) -> None:
        self.tok = tokenizer
        self.bar_units = meter.ticks_per_bar // tokenizer.unit
        self.max_polyphony = max_polyphony
        # A note held longer than this must be released next: a co-player never leaves a
        # note hanging, even when the model is unsure where the note-off goes.
        self.max_hold = int(max_hold_bars * self.bar_units)
        self.now = 0  # units since the first bar line
        self._bar_start = 0
        self._mask = np.zeros(tokenizer.vocab_size, dtype=bool)
        self.bars_started = 0
        self.position = 0  # units since the bar line
        self.sounding = np.zeros(tokenizer.config.max_pitch + 1, dtype=bool)
        # pitches struck at the current moment: releasing them now would be a zero-length note
        self.fresh = np.zeros_like(self.sounding)
        self.started = np.zeros(self.sounding.shape, dtype=np.int64)  # onset time per pitch
        self._lo = tokenizer.config.min_pitch
        # a VELOCITY sets the next notes' loudness: a second one at once says nothing (and a
        # model stuck on them would fill a bar with tokens that play nothing)
        self.velocity_set = False

    def allowed(self) -> Mask:
        m, t = self._mask, self.tok
        m[:] = False
        m[BAR] = True
        if self.bars_started == 0:
            return m
        overdue = self.sounding & (self.now - self.started > self.max_hold)
        if overdue.any():
            m[BAR] = False
            m[t.note_off_ids.start : t.note_off_ids.stop] = overdue[self._lo :]
            return m
        m[EOS] = True
        pitches = self.sounding[self._lo :]
        m[t.note_off_ids.start : t.note_off_ids.stop] = pitches & ~self.fresh[self._lo :]
        if int(pitches.sum()) < self.max_polyphony:
            m[t.note_on_ids.start : t.note_on_ids.stop] = ~pitches
        room = self.bar_units - 1 - self.position  # shifts may reach the last unit, not the line
        m[t.time_shift_ids.start : t.time_shift_ids.start + max(0, room)] = True
        m[t.velocity_ids.start : t.velocity_ids.stop] = not self.velocity_set
        return m

    def advance(self, token: int) -> None:
        kind, value = self.tok.describe(token)
        self.velocity_set = kind == TokenKind.VELOCITY
        if kind == TokenKind.BAR:
            if self.bars_started:
                self._bar_start += self.bar_units
            self.bars_started += 1
            self.position = 0
            self.now = self._bar_start
            self.fresh[:] = False
        elif kind == TokenKind.NOTE_ON:
            self.sounding[value] = self.fresh[value] = True
            self.started[value] = self.now
        elif kind == TokenKind.NOTE_OFF:
            self.sounding[value] = False
        elif kind == TokenKind.TIME_SHIFT:
            self.position += value
            self.now += value
            self.fresh[:] = False
