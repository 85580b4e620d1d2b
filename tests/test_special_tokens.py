"""Both codecs share one set of special tokens, at the ids shipped checkpoints were trained on."""

from __future__ import annotations

from musegen.music import special_tokens as st
from musegen.music.drum_tokens import DrumTokenizer
from musegen.music.performance import PerformanceTokenizer, TokenKind


def test_ids_never_move() -> None:
    assert (st.PAD, st.BOS, st.EOS, st.BAR, st.NUM_SPECIAL) == (0, 1, 2, 3, 4)
    assert st.SPECIAL_NAMES == ("PAD", "BOS", "EOS", "BAR")


def test_both_codecs_use_them() -> None:
    drums, perf = DrumTokenizer(), PerformanceTokenizer()
    for token, name in enumerate(st.SPECIAL_NAMES):
        assert drums.token_name(token) == name
        assert perf.token_name(token) == name
        assert perf.describe(token) == (TokenKind(name), 0)
    assert drums.step_range.start == st.NUM_SPECIAL
    assert perf.token_name(st.NUM_SPECIAL) != "BAR"
