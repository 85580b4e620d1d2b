"""Density steering: onset logits move with how far the bar is behind or ahead of the request."""

from __future__ import annotations

import numpy as np
import pytest

from musegen.checkpoint import load_model
from musegen.evaluation.metrics import realised_densities
from musegen.generation.generator import BarGenerator, Controls
from musegen.generation.grammar import DrumGrammar, PerformanceGrammar
from musegen.generation.sampling import SamplingConfig
from musegen.generation.steering import MAX_DEFICIT, DensitySteering
from musegen.music.drum_tokens import DrumTokenizer
from musegen.music.performance import PerformanceTokenizer
from musegen.music.special_tokens import BAR


def test_drum_tokens_are_shifted_by_the_deficit_they_leave() -> None:
    tok = DrumTokenizer()
    grammar = DrumGrammar(tok)
    steering = DensitySteering(grammar, strength=0.5)
    logits = np.zeros(tok.vocab_size, dtype=np.float32)
    grammar.advance(BAR)
    steering.start_bar(16.0)  # one onset a 16th step
    for token in (tok.step_token(3), tok.hit_token(0, 4)):  # at step 3 with one hit
        steering.advance(token)
        grammar.advance(token)
    shifted = steering.steer(logits)
    hit, offset = tok.hit_token(1, 4), tok.offset_range.start
    assert shifted[hit] == pytest.approx(0.5 * (16 * 4 / 16 - 1))  # 3 behind: more hits
    # STEP s lands with one more hit at (s + 1) / 16 of the bar: step 4 leaves it 3 behind,
    # step 1 would be 0 behind (the grammar masks it anyway)
    assert shifted[tok.step_token(4)] == pytest.approx(-0.5 * (16 * 5 / 16 - 1 - 1))
    assert shifted[tok.step_token(1)] == pytest.approx(0.0)
    assert shifted[tok.step_token(15)] == pytest.approx(-0.5 * MAX_DEFICIT)  # capped
    assert shifted[BAR] == pytest.approx(-0.5 * MAX_DEFICIT)  # 15 short of the bar's 16
    assert shifted[offset] == 0.0 and logits[hit] == 0.0  # the model's logits left alone
    steering.start_bar(0.5)  # the same moment under a sparse request: ahead
    steering.advance(tok.hit_token(0, 4))
    sparse = steering.steer(logits)
    # a STEP brings a hit: ahead, every STEP is held back and the bar line is helped
    assert sparse[hit] < 0 and sparse[tok.step_token(15)] < 0 and sparse[BAR] > 0
    assert sparse[tok.step_token(4)] < sparse[tok.step_token(15)]  # further off the line
    assert DensitySteering(grammar, strength=0.0).steer(logits) is logits


def test_a_moment_seen_again_gets_the_same_shift_on_the_new_logits() -> None:
    tok = DrumTokenizer()
    grammar = DrumGrammar(tok)
    grammar.advance(BAR)
    steering = DensitySteering(grammar, strength=1.0)
    rng = np.random.default_rng(0)
    first, second = (rng.standard_normal(tok.vocab_size).astype(np.float32) for _ in range(2))
    steering.start_bar(20.0)
    shift = steering.steer(first) - first
    np.testing.assert_allclose(steering.steer(second) - second, shift, atol=1e-5)
    steering.start_bar(2.0)  # a new target at the same moment: a new shift
    assert not np.allclose(steering.steer(first) - first, shift, atol=1e-3)
    steering.start_bar(20.0)
    np.testing.assert_allclose(steering.steer(first) - first, shift, atol=1e-5)


def test_melody_steering_moves_note_ons_time_shifts_and_the_bar_line_only() -> None:
    tok = PerformanceTokenizer()
    grammar = PerformanceGrammar(tok)
    grammar.advance(BAR)
    steering = DensitySteering(grammar, strength=1.0)
    steering.start_bar(12.0)
    shifted = steering.steer(np.zeros(tok.vocab_size, dtype=np.float32))
    ons, shifts = tok.note_on_ids, tok.time_shift_ids
    assert (shifted[ons.start : ons.stop] > 0).all()
    # a longer shift skips more of the bar's due notes: held back more (until the cap)
    by_length = shifted[shifts.start : shifts.stop]
    assert (np.diff(by_length) <= 0).all() and by_length[-1] == -MAX_DEFICIT
    assert shifted[BAR] == -MAX_DEFICIT
    touched = len(ons) + len(shifts) + 1
    assert np.count_nonzero(shifted) <= touched
    with pytest.raises(ValueError, match=">= 0"):
        DensitySteering(grammar, strength=-1.0)


def test_steered_bars_land_near_the_requested_density() -> None:
    loaded = load_model("drums-lstm")
    control = loaded.meta.density_control
    # 4 a bar once landed near 8: STEPs, each bringing a hit, were helped while ahead
    for request in (4.0, 6.0, 30.0):
        gen = BarGenerator(loaded, SamplingConfig(density_steering=2.0), seed=4)
        bars = [gen.next_bar(Controls("funk", request)) for _ in range(8)]
        realised = realised_densities(loaded.codec, control, bars)
        assert abs(float(np.median(realised)) - request) <= 0.25 * request, (request, realised)


def test_the_models_own_steering_is_the_default_and_an_explicit_one_wins() -> None:
    loaded = load_model("drums-lstm")
    loaded.meta.sampling = {"density_steering": 2.5}
    assert BarGenerator(loaded).steering.strength == 2.5
    assert BarGenerator(loaded, SamplingConfig(density_steering=0.0)).steering.strength == 0.0
    loaded.meta.sampling = {}
    assert BarGenerator(loaded).steering.strength == 1.0  # DEFAULT_STEERING
