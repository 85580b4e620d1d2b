"""Tokens for drum patterns: one bar at a time, onsets in time order, feel kept in the tokens.

Vocabulary (ids in this order, sizes from `DrumTokenizerConfig`):

    PAD=0, BOS=1, EOS=2, BAR=3
    STEP_s              s < max_steps_per_bar: position of a step inside its bar
    HIT_{c,v}           9 drum classes x velocity_bins: class c struck with velocity bin v
    OFFSET_b            offset_bins: micro-timing of the hit just before, bin of [-0.5, 0.5)

One bar is `BAR`, then for each step with hits, in time order, `STEP_s` followed by
`HIT_{c,v} OFFSET_b` for each hit in class order. Empty bars are a lone `BAR`, so bar lines
are never lost and windows can be cut on them. `encode` adds no BOS/EOS: the caller frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np

from musegen.music.drum_map import DRUM_CLASSES, NUM_DRUM_CLASSES
from musegen.music.drums import (
    DrumPattern,
    Meters,
    decode_drums,
    dequantize_offset,
    dequantize_velocity,
    empty_pattern,
    quantize_offset,
    quantize_velocity,
    step_ticks,
)
from musegen.music.score import Score, TempoChange
from musegen.music.special_tokens import BAR, BOS, EOS, NUM_SPECIAL, PAD, SPECIAL_NAMES
from musegen.music.timing import FOUR_FOUR, bpm_to_us

__all__ = ["BAR", "BOS", "EOS", "PAD", "DrumTokenizer", "DrumTokenizerConfig"]


@dataclass(frozen=True, slots=True)
class DrumTokenizerConfig:
    """What fixes the vocabulary; saved next to a model so its tokens can be read back."""

    KIND: ClassVar[str] = "drums"
    VERSION: ClassVar[int] = 1

    steps_per_quarter: int = 4
    velocity_bins: int = 8
    offset_bins: int = 16
    max_steps_per_bar: int = 32

    def __post_init__(self) -> None:
        step_ticks(self.steps_per_quarter)
        if not 1 <= self.velocity_bins <= 127:
            raise ValueError(f"velocity_bins must be in 1..127, got {self.velocity_bins}")
        if self.offset_bins < 1 or self.max_steps_per_bar < 1:
            raise ValueError("offset_bins and max_steps_per_bar must be positive")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "version": self.VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrumTokenizerConfig:
        """Read `to_dict()` output back; refuse another tokenizer's config or an unknown field."""
        if data.get("kind") != cls.KIND or data.get("version") != cls.VERSION:
            raise ValueError(f"not a drums v{cls.VERSION} tokenizer config: {dict(data)}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k not in ("kind", "version")}
        if unknown := set(values) - known:
            raise ValueError(f"unknown tokenizer config fields {sorted(unknown)}")
        return cls(**{k: int(v) for k, v in values.items()})


class DrumTokenizer:
    """Turns DrumPatterns into token ids and back (see the module docstring for the layout)."""

    def __init__(self, config: DrumTokenizerConfig | None = None) -> None:
        self.config = config or DrumTokenizerConfig()
        c = self.config
        self.step_range = range(NUM_SPECIAL, NUM_SPECIAL + c.max_steps_per_bar)
        hits = NUM_DRUM_CLASSES * c.velocity_bins
        self.hit_range = range(self.step_range.stop, self.step_range.stop + hits)
        self.offset_range = range(self.hit_range.stop, self.hit_range.stop + c.offset_bins)
        self.vocab_size = self.offset_range.stop

    # --- ids ------------------------------------------------------------------------------
    def step_token(self, step: int) -> int:
        return self._id(self.step_range, step)

    def hit_token(self, cls: int, velocity_bin: int) -> int:
        if not 0 <= velocity_bin < self.config.velocity_bins:
            raise ValueError(f"velocity bin {velocity_bin} out of range")
        return self._id(self.hit_range, cls * self.config.velocity_bins + velocity_bin)

    def offset_token(self, offset_bin: int) -> int:
        return self._id(self.offset_range, offset_bin)

    def hit_of(self, token: int) -> tuple[int, int]:
        """(class, velocity bin) of a HIT token."""
        return divmod(token - self.hit_range.start, self.config.velocity_bins)

    @staticmethod
    def _id(ids: range, index: int) -> int:
        if not 0 <= index < len(ids):
            raise ValueError(f"index {index} outside 0..{len(ids) - 1}")
        return ids[index]

    def token_name(self, token: int) -> str:
        if 0 <= token < NUM_SPECIAL:
            return SPECIAL_NAMES[token]
        if token in self.step_range:
            return f"STEP_{token - self.step_range.start}"
        if token in self.hit_range:
            cls, vbin = self.hit_of(token)
            return f"HIT_{DRUM_CLASSES[cls]}_{vbin}"
        if token in self.offset_range:
            return f"OFFSET_{token - self.offset_range.start}"
        raise ValueError(f"token {token} outside the vocabulary of {self.vocab_size}")

    # --- encoding -------------------------------------------------------------------------
    def encode(self, pattern: DrumPattern) -> list[int]:
        """All bars' tokens, without BOS/EOS."""
        return [token for bar in self.encode_bars(pattern) for token in bar]

    def encode_bars(self, pattern: DrumPattern) -> list[list[int]]:
        """Tokens of each bar, each list starting with BAR.

        Raises ValueError if the pattern's grid differs from the config's or a bar is longer
        than max_steps_per_bar: dropping hits silently would corrupt training data.
        """
        if pattern.steps_per_quarter != self.config.steps_per_quarter:
            raise ValueError(
                f"pattern grid {pattern.steps_per_quarter} != tokenizer grid "
                f"{self.config.steps_per_quarter} steps per quarter"
            )
        return [self._encode_bar(pattern, start, end) for start, end in pattern.bar_bounds()]

    def _encode_bar(self, pattern: DrumPattern, start: int, end: int) -> list[int]:
        if end - start > self.config.max_steps_per_bar:
            raise ValueError(
                f"bar at step {start} has {end - start} steps, more than "
                f"max_steps_per_bar={self.config.max_steps_per_bar}"
            )
        c = self.config
        tokens = [BAR]
        for step in np.flatnonzero(pattern.hits[start:end].any(axis=1)):
            at = start + int(step)
            tokens.append(self.step_token(int(step)))
            for cls in np.flatnonzero(pattern.hits[at]):
                vbin = quantize_velocity(int(pattern.velocities[at, cls]), c.velocity_bins)
                obin = quantize_offset(float(pattern.offsets[at, cls]), c.offset_bins)
                tokens += [self.hit_token(int(cls), vbin), self.offset_token(obin)]
        return tokens

    # --- decoding -------------------------------------------------------------------------
    def decode(self, tokens: Iterable[int], meters: Meters = FOUR_FOUR) -> DrumPattern:
        """A pattern of one bar per BAR token laid out by `meters` (one signature or a meter
        map such as `pattern.meters`). Never raises on content: tokens that break the grammar
        are skipped and counted in `dropped_tokens` (PAD is skipped silently, a leading BOS
        too, and EOS ends the sequence)."""
        bars, dropped = self._split_bars(tokens)
        pattern = empty_pattern(len(bars), meters, self.config.steps_per_quarter)
        bounds = pattern.bar_bounds()
        for (start, end), bar in zip(bounds, bars, strict=True):
            dropped += self._decode_bar(pattern, start, end, bar)
        pattern.dropped_tokens = dropped
        return pattern

    def _split_bars(self, tokens: Iterable[int]) -> tuple[list[list[int]], int]:
        """Content tokens of each bar, and how many tokens fitted no bar."""
        bars: list[list[int]] = []
        dropped = 0
        for i, raw in enumerate(tokens):
            token = int(raw)
            if token == EOS:
                break
            if token == PAD or (token == BOS and i == 0):
                continue
            if token == BAR:
                bars.append([])
            elif bars and NUM_SPECIAL <= token < self.vocab_size:
                bars[-1].append(token)
            else:  # BOS inside the sequence, an id outside the vocabulary, or no BAR yet
                dropped += 1
        return bars, dropped

    def _decode_bar(self, pattern: DrumPattern, start: int, end: int, tokens: list[int]) -> int:
        """Write one bar's hits into the pattern; return how many tokens could not be placed."""
        c = self.config
        step: int | None = None  # absolute step of the last valid STEP
        pending: int | None = None  # class of the last HIT still waiting for its OFFSET
        dropped = 0
        for token in tokens:
            if token in self.step_range:
                at = start + token - self.step_range.start
                step, pending = (at, None) if at < end else (None, None)
                dropped += step is None  # a step past this bar's end
            elif token in self.hit_range:
                cls, vbin = self.hit_of(token)
                pending = None
                if step is None or pattern.hits[step, cls]:  # no step yet, or class repeated
                    dropped += 1
                    continue
                pattern.hits[step, cls] = True
                pattern.velocities[step, cls] = dequantize_velocity(vbin, c.velocity_bins)
                pending = cls  # a HIT left without OFFSET stays, on the grid
            elif pending is not None and step is not None:
                obin = token - self.offset_range.start
                pattern.offsets[step, pending] = dequantize_offset(obin, c.offset_bins)
                pending = None
            else:  # an OFFSET with no HIT before it
                dropped += 1
        return dropped

    def decode_to_score(
        self, tokens: Iterable[int], bpm: float = 120.0, meters: Meters = FOUR_FOUR
    ) -> Score:
        """Tokens straight to a drum Score at a fixed tempo."""
        pattern = self.decode(tokens, meters)
        pattern.tempos = [TempoChange(0, bpm_to_us(bpm))]
        return decode_drums(pattern)
