"""One interface over the part tokenizers, and the JSON config saved with every checkpoint.

A checkpoint stores `tokenizer.json`; `codec_from_config` rebuilds the exact vocabulary, so a
model is never fed ids from a different layout than it was trained on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from musegen.music.drum_tokens import DrumTokenizer, DrumTokenizerConfig
from musegen.music.drums import encode_drums
from musegen.music.genres import PartName
from musegen.music.performance import PerformanceConfig, PerformanceTokenizer
from musegen.music.score import Score, TempoChange
from musegen.music.timing import bpm_to_us

TOKENIZER_FILE = "tokenizer.json"
_T = TypeVar("_T", DrumTokenizer, PerformanceTokenizer)


class Codec(Protocol):
    """Score <-> token ids for one part, bar by bar."""

    part: PartName

    @property
    def vocab_size(self) -> int: ...

    def config_dict(self) -> dict[str, Any]: ...

    def encode_bars(self, score: Score) -> list[list[int]]: ...

    def decode(self, tokens: Sequence[int], bpm: float = 120.0) -> Score: ...


class _TokenizerCodec(Generic[_T]):
    """What both codecs share: the tokenizer they wrap, its vocabulary and config."""

    part: PartName

    def __init__(self, tokenizer: _T) -> None:
        self.tokenizer: _T = tokenizer

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.vocab_size)

    def config_dict(self) -> dict[str, Any]:
        return self.tokenizer.config.to_dict()


class DrumCodec(_TokenizerCodec[DrumTokenizer]):
    part: PartName = "drums"

    def __init__(self, config: DrumTokenizerConfig | None = None) -> None:
        super().__init__(DrumTokenizer(config or DrumTokenizerConfig()))

    def encode_bars(self, score: Score) -> list[list[int]]:
        pattern = encode_drums(score, self.tokenizer.config.steps_per_quarter)
        return self.tokenizer.encode_bars(pattern)

    def decode(self, tokens: Sequence[int], bpm: float = 120.0) -> Score:
        return self.tokenizer.decode_to_score(list(tokens), bpm=bpm)


class PerformanceCodec(_TokenizerCodec[PerformanceTokenizer]):
    part: PartName = "melody"

    def __init__(self, config: PerformanceConfig | None = None) -> None:
        super().__init__(PerformanceTokenizer(config or PerformanceConfig()))

    def encode_bars(self, score: Score) -> list[list[int]]:
        return self.tokenizer.encode_bars(score)

    def decode(self, tokens: Sequence[int], bpm: float = 120.0) -> Score:
        score = self.tokenizer.decode(list(tokens))
        score.tempos = [TempoChange(0, bpm_to_us(bpm))]
        return score


def codec_for_part(part: PartName) -> Codec:
    return DrumCodec() if part == "drums" else PerformanceCodec()


def codec_from_config(config: dict[str, Any]) -> Codec:
    kind = config.get("kind")
    if kind == "drums":
        return DrumCodec(DrumTokenizerConfig.from_dict(config))
    if kind == "performance":
        return PerformanceCodec(PerformanceConfig.from_dict(config))
    raise ValueError(f"unknown tokenizer kind {kind!r}: valid are 'drums', 'performance'")


def save_tokenizer_config(codec: Codec, folder: str | os.PathLike[str]) -> Path:
    path = Path(folder) / TOKENIZER_FILE
    path.write_text(json.dumps(codec.config_dict(), indent=2, sort_keys=True) + "\n")
    return path


def load_tokenizer_config(folder: str | os.PathLike[str]) -> Codec:
    return codec_from_config(json.loads((Path(folder) / TOKENIZER_FILE).read_text()))
