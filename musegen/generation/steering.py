"""Density steering: keep a bar's onsets on the requested count while it is being written.

The models are conditioned on the density bin of the bar they write, but a conditioned model
only leans toward its bin (and a bin is wide). Steering closes the loop inside the bar, as a
proportional controller in log-odds: with ``deficit(t) = target * (fraction of the bar done
at t) - onsets so far``, clipped to +-MAX_DEFICIT, the tokens that matter are shifted by

* an onset (drum HIT, NOTE_ON): ``+strength * deficit(now)``: more while behind, fewer while
  ahead;
* a move in time (TIME_SHIFT d): ``-strength * deficit(where it lands)``: a move that would
  leave the bar behind is held back, one that a busy bar can afford is helped;
* a drum STEP s: ``-strength * |deficit(where it lands, its hit counted)|``. A STEP brings one
  hit with it, so it never thins a bar: helping near STEPs while ahead (the TIME_SHIFT rule)
  would add the very hits a sparse bar must not have, and sparse requests landed at twice
  their count. Held back by how far off the line it lands, the STEP that keeps the bar on
  its line wins, and a bar that is ahead ends at the bar line instead;
* the bar line: ``-strength * (target - onsets so far)``: ending the bar now leaves out all
  that is still missing, so a bar the model would close at half time is kept open, and a bar
  already over its count is let go.

The model still chooses which drum, which pitch and where. ``strength = 0`` is the model
alone, which the model cards report beside the steered figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from musegen.generation.grammar import DrumGrammar, Grammar, PerformanceGrammar
from musegen.music.special_tokens import BAR

Logits = npt.NDArray[np.floating[Any]]

# Beyond this many onsets behind or ahead the push stops growing: a bar that cannot catch up
# (its steps are running out) must not turn into a wall of one token.
MAX_DEFICIT = 4.0
# Shift vectors kept per target (a bar has at most a few hundred (moment, onsets) pairs).
MAX_CACHED = 4096


class DensitySteering:
    def __init__(self, grammar: Grammar, strength: float) -> None:
        if strength < 0:
            raise ValueError(f"density steering strength must be >= 0, got {strength}")
        if isinstance(grammar, DrumGrammar):
            onsets, moves = grammar.tok.hit_range, grammar.tok.step_range
            # STEP s lands at the end of step s, carrying one hit
            self._lands = (np.arange(len(moves)) + 1.0) / grammar.steps_per_bar
            self._carried = 1.0
            self._bar_length = grammar.steps_per_bar
            self._moves_carry_onsets = True
        elif isinstance(grammar, PerformanceGrammar):
            onsets, moves = grammar.tok.note_on_ids, grammar.tok.time_shift_ids
            self._lands = np.arange(1.0, len(moves) + 1.0)  # shift i moves i + 1 units
            self._carried = 0.0
            self._bar_length = grammar.bar_units
            self._moves_carry_onsets = False
        else:
            raise TypeError(f"no onset tokens known for {type(grammar).__name__}")
        self.grammar = grammar
        self.strength = strength
        self._onset_ids = onsets
        self._onsets = slice(onsets.start, onsets.stop)
        self._moves = slice(moves.start, moves.stop)
        self._shifted = np.zeros(grammar.tok.vocab_size, dtype=np.float32)
        self._offsets: dict[tuple[int, int], Logits] = {}
        self.target = 0.0
        self.onsets = 0

    def start_bar(self, target_onsets: float) -> None:
        if target_onsets != self.target:
            self._offsets.clear()
        self.target, self.onsets = target_onsets, 0

    def steer(self, logits: Logits) -> Logits:
        """The logits to sample from now: `logits` itself at strength 0, else a buffer of this
        object (read it before the next call; `logits` is not written)."""
        if self.strength == 0.0:
            return logits
        # The shift depends only on (moment in the bar, onsets so far) under one target, and
        # bars at one target revisit the same pairs: one add per token instead of ten ops.
        key = (self._moment(), self.onsets)
        offsets = self._offsets.get(key)
        if offsets is None:
            if len(self._offsets) >= MAX_CACHED:
                self._offsets.clear()
            offsets = self._offsets[key] = self._offsets_now()
        np.add(logits, offsets, out=self._shifted)
        return self._shifted

    def _offsets_now(self) -> Logits:
        """The log-odds shift of every token at this moment (allocates: a cache miss)."""
        k, target, done = self.strength, self.target, float(self.onsets)
        offsets = np.zeros_like(self._shifted)
        offsets[self._onsets] = k * _clip(target * self._progress() - done)
        landing = np.clip(self._landing_progress() * target - (done + self._carried),
                          -MAX_DEFICIT, MAX_DEFICIT)
        offsets[self._moves] = -k * (np.abs(landing) if self._moves_carry_onsets else landing)
        offsets[BAR] = -k * _clip(target - done)
        return offsets

    def advance(self, token: int) -> None:
        """Count `token` (call before the grammar advances past it)."""
        self.onsets += token in self._onset_ids

    def _moment(self) -> int:
        """Where in the bar the grammar stands: a drum step, or performance time units."""
        g = self.grammar
        return g.step if isinstance(g, DrumGrammar) else g.position

    def _progress(self) -> float:
        """How much of the bar is done, counting the current moment (its onsets are due)."""
        return (self._moment() + 1) / self._bar_length

    def _landing_progress(self) -> npt.NDArray[np.float64]:
        """For each move token, how much of the bar will be done where it lands."""
        if isinstance(self.grammar, DrumGrammar):
            return self._lands
        return (self._moment() + self._lands + 1) / self._bar_length


def _clip(deficit: float) -> float:
    return min(max(deficit, -MAX_DEFICIT), MAX_DEFICIT)
