"""Grammar masks accept every real sequence and make illegal sequences unsampleable."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from musegen.generation.grammar import DrumGrammar, Grammar, PerformanceGrammar
from musegen.generation.sampling import SamplingConfig, sample_token
from musegen.music.drum_tokens import DrumTokenizer
from musegen.music.drums import encode_drums
from musegen.music.midi_io import load_score
from musegen.music.performance import PerformanceTokenizer
from musegen.music.special_tokens import BAR
from tests.conftest import DATA, GROOVE

DRUM_FILES = [
    "drummer1/session1/1_funk_80_beat_4-4.mid",
    "drummer1/session1/100_neworleans-secondline_94_beat_4-4.mid",
    "drummer7/session3/100_hiphop_70_fill_4-4.mid",
]
MELODY_FILES = ["nottingham/MIDI/jigs10.mid", "pop909/001/001.mid"]


def _accepts(grammar: Grammar, tokens: list[int]) -> int:
    """Index of the first token the grammar refuses, or -1."""
    for i, token in enumerate(tokens):
        if not grammar.allowed()[token]:
            return i
        grammar.advance(token)
    return -1


@pytest.mark.parametrize("rel", DRUM_FILES)
def test_drum_grammar_accepts_real_playing(rel: str) -> None:
    path = GROOVE / rel
    tok = DrumTokenizer()
    tokens = [t for bar in tok.encode_bars(encode_drums(load_score(path))) for t in bar]
    assert _accepts(DrumGrammar(tok), tokens) == -1


@pytest.mark.parametrize("rel", MELODY_FILES)
def test_performance_grammar_accepts_real_playing(rel: str) -> None:
    tok = PerformanceTokenizer()
    score = load_score(DATA / rel).pitched()
    assert len(score.meters) == 1  # the grammar follows one meter, as a live session does
    meter = score.meters[0].signature
    tokens = [t for bar in tok.encode_bars(score) for t in bar]
    grammar = PerformanceGrammar(tok, meter, max_polyphony=64, max_hold_bars=64)
    assert _accepts(grammar, tokens) == -1


def _random_walk(grammar: Grammar, vocab: int, steps: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(vocab).astype(np.float32) * 3
    out = []
    for _ in range(steps):
        allowed = grammar.allowed().copy()
        token = sample_token(logits, allowed, SamplingConfig(temperature=2.0), rng)
        grammar.advance(token)
        out.append(token)
        if token == 2:  # EOS
            break
    return out


@pytest.mark.parametrize("seed", range(5))
def test_sampling_under_the_drum_grammar_never_breaks_the_layout(seed: int) -> None:
    tok = DrumTokenizer()
    tokens = _random_walk(DrumGrammar(tok), tok.vocab_size, 400, seed)
    pattern = tok.decode(tokens)
    assert pattern.dropped_tokens == 0 and tokens[0] == BAR


@pytest.mark.parametrize("seed", range(5))
def test_sampling_under_the_performance_grammar_never_breaks_the_layout(seed: int) -> None:
    tok = PerformanceTokenizer()
    tokens = _random_walk(PerformanceGrammar(tok), tok.vocab_size, 600, seed)
    errors: Counter[str] = Counter()
    tok.decode(tokens, errors=errors)
    assert sum(v for k, v in errors.items() if k != "unclosed") == 0, errors


def test_sampling_is_seeded_and_respects_top_k_and_top_p() -> None:
    logits = np.array([4.0, 3.0, 2.0, 1.0, 0.0, -1.0], dtype=np.float32)
    allowed = np.ones(6, dtype=bool)

    def draw(config: SamplingConfig, seed: int, n: int = 300) -> list[int]:
        rng = np.random.default_rng(seed)
        return [sample_token(logits, allowed, config, rng) for _ in range(n)]

    assert draw(SamplingConfig(), 7) == draw(SamplingConfig(), 7)
    assert set(draw(SamplingConfig(temperature=5.0, top_k=2), 1)) == {0, 1}
    # p(0) = 0.64, p(1) = 0.24: the nucleus for 0.8 is {0, 1}
    assert set(draw(SamplingConfig(temperature=1.0, top_p=0.8), 2)) == {0, 1}
    assert set(draw(SamplingConfig(temperature=0.0), 3, 20)) == {0}
    masked = allowed.copy()
    masked[0] = False
    assert sample_token(logits, masked, SamplingConfig(temperature=0.0)) == 1
    hot = SamplingConfig(temperature=3.0)
    assert 0 not in {sample_token(logits, masked, hot) for _ in range(50)}
    # extremes a knob or a client can send: greedy, never nan (1e-267 is 0 in float32)
    for extreme in (SamplingConfig(temperature=1e-300), SamplingConfig(top_p=1e-267),
                    SamplingConfig(temperature=1e-30, top_p=1e-30, top_k=3)):
        assert set(draw(extreme, 4, 20)) == {0}
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0.0)
    with pytest.raises(ValueError, match="allows no token"):
        sample_token(logits, np.zeros(6, dtype=bool), SamplingConfig())


def test_sampling_draws_in_proportion_to_the_tempered_softmax() -> None:
    logits = np.array([2.0, 1.0, 0.0, -1.0, 5.0], dtype=np.float32)
    allowed = np.array([True, True, True, True, False])
    rng = np.random.default_rng(11)
    for temperature in (0.5, 1.0, 2.0):
        config = SamplingConfig(temperature=temperature)
        counts = np.bincount([sample_token(logits, allowed, config, rng) for _ in range(4000)],
                             minlength=5)
        expected = np.exp(logits[:4] / temperature)
        expected /= expected.sum()
        assert counts[4] == 0
        # 4000 draws: a standard error under 0.008 per token
        np.testing.assert_allclose(counts[:4] / 4000, expected, atol=0.03)


def test_time_never_moves_past_the_bar_line() -> None:
    tok = PerformanceTokenizer()
    grammar = PerformanceGrammar(tok)
    grammar.advance(BAR)
    grammar.advance(tok.time_shift(40))
    allowed = np.flatnonzero(grammar.allowed()[tok.time_shift_ids.start : tok.time_shift_ids.stop])
    assert allowed.max() + 1 == 7  # 48 units in 4/4: at 40, shifts of 1..7 stay inside


def test_a_note_held_past_the_limit_must_be_released_next() -> None:
    tok = PerformanceTokenizer()
    grammar = PerformanceGrammar(tok, max_hold_bars=1.0)  # 48 units in 4/4
    for token in (BAR, tok.note_on(60), tok.note_on(64), tok.time_shift(47), BAR):
        grammar.advance(token)
    assert grammar.allowed()[tok.note_off(60)]  # 48 units: not yet over the limit
    assert grammar.allowed()[tok.note_on(67)]
    grammar.advance(tok.time_shift(1))
    allowed = np.flatnonzero(grammar.allowed())
    assert set(allowed) == {tok.note_off(60), tok.note_off(64)}
    grammar.advance(tok.note_off(60))
    grammar.advance(tok.note_off(64))
    assert grammar.allowed()[BAR] and grammar.allowed()[tok.note_on(60)]


def test_a_velocity_is_never_followed_by_another() -> None:
    tok = PerformanceTokenizer()
    grammar = PerformanceGrammar(tok)
    grammar.advance(BAR)
    vel = tok.velocity_ids
    assert grammar.allowed()[vel.start : vel.stop].all()
    grammar.advance(vel.start + 3)
    assert not grammar.allowed()[vel.start : vel.stop].any()
    grammar.advance(tok.note_on_ids.start + 20)
    assert grammar.allowed()[vel.start : vel.stop].all()
