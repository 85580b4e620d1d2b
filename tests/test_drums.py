"""Drum patterns and drum tokens, on real Groove MIDI Dataset files and on hand-built bars."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.music.drum_map import CLASS_TO_GM_PITCH, NUM_DRUM_CLASSES, drum_class
from musegen.music.drum_tokens import DrumTokenizer, DrumTokenizerConfig
from musegen.music.drums import (
    DrumPattern,
    decode_drums,
    dequantize_offset,
    dequantize_velocity,
    drum_notes,
    empty_pattern,
    encode_drums,
    hits_per_bar,
    quantize_offset,
    quantize_velocity,
)
from musegen.music.midi_io import load_score, save_score
from musegen.music.score import DRUM_CHANNEL, MeterChange, Note, Score
from musegen.music.special_tokens import BAR, BOS, EOS, PAD
from musegen.music.timing import PPQN, TimeSignature

GMD = Path("/work/shared/data/groove-midi")
FILES = {  # five genres, beats and a fill, 6/8 and 4/4
    "rock_6-8": "drummer6/session1/3_rock_80_beat_6-8.mid",
    "hiphop": "drummer3/session2/25_hiphop_92_beat_4-4.mid",
    "jazz_swing": "drummer10/session1/6_jazz-swing_215_beat_4-4.mid",
    "latin": "drummer4/session1/9_latin-merengue_158_beat_4-4.mid",
    "funk_fill": "drummer1/session1/103_funk_95_fill_4-4.mid",
}
CLASS_OF_OUTPUT_PITCH = {pitch: cls for cls, pitch in enumerate(CLASS_TO_GM_PITCH)}
SNARE, KICK, HAT, CRASH, LOW_TOM, RIDE = 1, 0, 2, 7, 4, 8


@cache
def real(name: str) -> Score:
    return load_score(GMD / FILES[name])


def onsets(score: Score) -> Counter[tuple[int, int, int]]:
    """(class, onset tick, velocity) of every decoded note, read through the output pitches."""
    return Counter((CLASS_OF_OUTPUT_PITCH[n.pitch], n.start, n.velocity) for n in score.notes)


# --- Score <-> DrumPattern -------------------------------------------------------------------
@pytest.mark.parametrize("name", FILES)
def test_pattern_round_trip_keeps_every_onset_and_velocity(name: str) -> None:
    score = real(name)
    pattern = encode_drums(score)
    decoded = decode_drums(pattern)
    original = Counter((drum_class(n.pitch), n.start, n.velocity) for n in drum_notes(score))
    assert all(n.channel == DRUM_CHANNEL for n in decoded.notes)
    unmatched = original.copy()
    for (cls, tick, velocity), count in onsets(decoded).items():
        for _ in range(count):  # one-to-one: each decoded note uses up one original note
            near = [k for k in ((cls, t, velocity) for t in (tick, tick - 1, tick + 1))
                    if unmatched[k] > 0]
            assert near, f"decoded {(cls, tick, velocity)} matches no original onset"
            unmatched[near[0]] -= 1
    assert sum(unmatched.values()) == pattern.collisions
    assert len(decoded.notes) + pattern.collisions == len(drum_notes(score))
    assert decoded.meters == score.meters and decoded.tempos == score.tempos


def test_real_patterns_have_their_meter_and_bars() -> None:
    pattern = encode_drums(real("rock_6-8"))
    assert pattern.meters[0].signature == TimeSignature(6, 8)
    assert {b - a for a, b in pattern.bar_bounds()} == {12}  # 6/8 on a 16th grid
    assert sum(hits_per_bar(pattern)) == int(pattern.hits.sum()) > 0
    assert ((pattern.velocities > 0) == pattern.hits).all()
    assert (pattern.offsets >= -0.5).all() and (pattern.offsets < 0.5).all()
    assert pattern.offsets[pattern.hits].std() > 0  # the humanised feel is kept


def hand_score(channel: int = DRUM_CHANNEL) -> Score:
    """Bar 1 in 4/4: kick, two snares in one step, 8 eighth-note hats; bar 2 in 3/4: 3 hits."""
    notes = [Note(0, 60, 36, 100, channel), Note(480, 540, 38, 70, channel)]
    notes.append(Note(485, 545, 40, 90, channel))  # same step and class as the snare: louder
    notes += [Note(t, t + 60, 42, 64, channel) for t in range(0, 1920, 240)]
    notes += [Note(1920, 1980, 36, 110, channel), Note(1921, 1980, 49, 120, channel)]
    notes += [Note(2400 - 7, 2460, 43, 80, channel)]
    return Score(notes, meters=[MeterChange(0, TimeSignature(4, 4)),
                                MeterChange(1920, TimeSignature(3, 4))])


def test_hand_built_score_gives_known_density_and_collisions() -> None:
    score = hand_score()
    noisy = score.with_notes([*score.notes, Note(0, 480, 38, 50, channel=0)])  # a pitched part
    pattern = encode_drums(noisy)
    assert pattern.bar_starts == [0, 16] and pattern.num_steps == 28
    assert hits_per_bar(pattern) == [10, 3]
    assert pattern.collisions == 1
    assert pattern.velocities[4, SNARE] == 90
    assert pattern.offsets[4, SNARE] == pytest.approx(5 / 120)
    assert pattern.offsets[20, LOW_TOM] == pytest.approx(-7 / 120)
    # with nothing on channel 10 every drum-pitched note is read as a drum
    off_channel = encode_drums(hand_score(channel=3))
    assert (off_channel.hits == pattern.hits).all()
    assert (off_channel.velocities == pattern.velocities).all()


def test_onset_half_a_step_late_goes_to_the_next_step() -> None:
    pattern = encode_drums(Score([Note(59, 70, 36, 90, 9), Note(120 + 60, 200, 38, 90, 9)]))
    assert pattern.hits[0, KICK] and pattern.offsets[0, KICK] == pytest.approx(59 / 120)
    assert pattern.hits[2, SNARE] and pattern.offsets[2, SNARE] == -0.5
    assert [n.start for n in decode_drums(pattern).notes] == [59, 180]


def test_hand_built_bar_hits_per_bar() -> None:
    pattern = empty_pattern(3, TimeSignature(7, 8))
    assert pattern.bar_starts == [0, 14, 28] and pattern.num_steps == 42
    for step, cls in [(0, KICK), (0, HAT), (6, SNARE), (13, RIDE), (14, CRASH)]:
        pattern.hits[step, cls] = True
        pattern.velocities[step, cls] = 100
    assert hits_per_bar(pattern) == [4, 1, 0]


@pytest.mark.parametrize("name", ["rock_6-8", "hiphop"])
def test_decoded_score_survives_midi_files(name: str, tmp_path: Path) -> None:
    decoded = decode_drums(encode_drums(real(name)))
    path = tmp_path / "drums.mid"
    save_score(decoded, path)
    expected = sorted((n.start, n.pitch, n.velocity) for n in decoded.notes)
    back = load_score(path)
    assert {n.channel for n in back.notes} == {DRUM_CHANNEL}
    assert sorted((n.start, n.pitch, n.velocity) for n in back.notes) == expected
    assert back.meters == decoded.meters and back.tempos == decoded.tempos
    midi = pretty_midi.PrettyMIDI(str(path))
    drums = [i for i in midi.instruments if i.notes]
    assert len(drums) == 1 and drums[0].is_drum
    read = sorted((midi.time_to_tick(n.start), n.pitch, n.velocity) for n in drums[0].notes)
    assert [(p, v) for _, p, v in read] == [(p, v) for _, p, v in expected]
    assert all(abs(a[0] - b[0]) <= 1 for a, b in zip(read, expected, strict=True))
    assert {p for _, p, _ in read} <= set(CLASS_TO_GM_PITCH)


def test_every_class_reads_back_as_itself() -> None:
    pattern = empty_pattern(1)
    for cls in range(NUM_DRUM_CLASSES):
        pattern.hits[cls, cls] = True
        pattern.velocities[cls, cls] = 80
    again = encode_drums(decode_drums(pattern))
    assert (again.hits == pattern.hits).all()


# --- quantisation --------------------------------------------------------------------------
@pytest.mark.parametrize("bins", [1, 3, 8, 32, 127])
def test_velocity_bins_cover_the_range_and_decode_near(bins: int) -> None:
    quantized = [quantize_velocity(v, bins) for v in range(1, 128)]
    assert quantized == sorted(quantized) and set(quantized) == set(range(bins))
    for v, b in zip(range(1, 128), quantized, strict=True):
        assert abs(dequantize_velocity(b, bins) - v) <= 127 / bins
    assert bins != 127 or all(dequantize_velocity(b, 127) == b + 1 for b in range(127))


@pytest.mark.parametrize("bins", [1, 4, 16, 33])
def test_offset_bins_cover_the_range_and_decode_to_centres(bins: int) -> None:
    grid = [i / 960 - 0.5 for i in range(960)]
    quantized = [quantize_offset(o, bins) for o in grid]
    assert quantized == sorted(quantized) and set(quantized) == set(range(bins))
    for o, b in zip(grid, quantized, strict=True):
        assert abs(dequantize_offset(b, bins) - o) <= 0.5 / bins + 1e-9


# --- tokens --------------------------------------------------------------------------------
CONFIGS = [DrumTokenizerConfig(), DrumTokenizerConfig(8, 16, 8, 48)]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "32nds"])
@pytest.mark.parametrize("name", FILES)
def test_token_round_trip_within_one_bin(name: str, config: DrumTokenizerConfig) -> None:
    tokenizer = DrumTokenizer(config)
    pattern = encode_drums(real(name), config.steps_per_quarter)
    tokens = tokenizer.encode(pattern)
    assert all(0 <= t < tokenizer.vocab_size for t in tokens) and BOS not in tokens
    again = tokenizer.decode(tokens, pattern.meters)
    assert again.dropped_tokens == 0 and again.bar_starts == pattern.bar_starts
    assert (again.hits == pattern.hits).all()
    assert tokenizer.encode(again) == tokens  # decoding lands on bin centres: a fixed point
    exact = sorted(decode_drums(pattern).notes, key=lambda n: (n.pitch, n.start))
    rough = sorted(decode_drums(again).notes, key=lambda n: (n.pitch, n.start))
    slack = PPQN / config.steps_per_quarter / (2 * config.offset_bins) + 1
    for a, b in zip(exact, rough, strict=True):
        assert a.pitch == b.pitch and abs(a.start - b.start) <= slack
        assert abs(a.velocity - b.velocity) <= 127 / config.velocity_bins


def test_token_layout_of_a_bar() -> None:
    tokenizer = DrumTokenizer()
    assert tokenizer.vocab_size == 4 + 32 + 9 * 8 + 16
    assert (tokenizer.step_range.start, tokenizer.hit_range.start) == (4, 36)
    assert (tokenizer.offset_range.start, tokenizer.offset_range.stop) == (108, 124)
    names = [tokenizer.token_name(t) for t in range(tokenizer.vocab_size)]
    assert len(set(names)) == tokenizer.vocab_size and names[:5] == [
        "PAD", "BOS", "EOS", "BAR", "STEP_0"]
    bars = tokenizer.encode_bars(encode_drums(hand_score()))
    assert [bar[0] for bar in bars] == [BAR, BAR]
    assert [tokenizer.token_name(t) for t in bars[1]] == [
        "BAR", "STEP_0", "HIT_kick_6", "OFFSET_8", "HIT_crash_7", "OFFSET_8",
        "STEP_4", "HIT_low_tom_4", "OFFSET_7"]


def test_tokenizer_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError, match="max_steps_per_bar"):
        DrumTokenizer().encode(empty_pattern(1, TimeSignature(9, 4)))  # 36 sixteenths
    with pytest.raises(ValueError, match="grid"):
        DrumTokenizer().encode(empty_pattern(1, steps_per_quarter=8))


def test_config_round_trips_through_a_dict() -> None:
    config = DrumTokenizerConfig(8, 16, 8, 48)
    data = config.to_dict()
    assert data["kind"] == "drums" and data["version"] == 1
    assert DrumTokenizerConfig.from_dict(data) == config
    for bad in ({**data, "kind": "melody"}, {**data, "extra": 1}, {**data, "version": 99}):
        with pytest.raises(ValueError):
            DrumTokenizerConfig.from_dict(bad)


def test_garbage_tokens_are_dropped_and_counted() -> None:
    tok = DrumTokenizer()
    kick4, kick2 = tok.hit_token(KICK, 4), tok.hit_token(KICK, 2)
    o = tok.offset_token
    tokens = [
        BOS, o(3), tok.step_token(0),  # dropped: before any BAR
        BAR, o(2), kick4,  # dropped: OFFSET with no HIT, HIT with no STEP
        tok.step_token(0), kick4, o(15), o(6), kick2,  # kept, kept, kept, dropped x2
        tok.hit_token(SNARE, 7),  # kept without offset
        tok.step_token(20), tok.hit_token(HAT, 3),  # dropped: past the 16 steps, no step
        999, -1, PAD, BOS,  # dropped, dropped, padding, dropped
        BAR, tok.step_token(4), tok.hit_token(RIDE, 0), o(0),
        EOS, kick4, 12345,  # after EOS: not read
    ]
    pattern = tok.decode(tokens)
    assert pattern.dropped_tokens == 11
    assert hits_per_bar(pattern) == [2, 1]
    assert pattern.velocities[0, KICK] == dequantize_velocity(4, 8)
    assert pattern.offsets[0, KICK] == dequantize_offset(15, 16)
    assert pattern.offsets[0, SNARE] == 0.0 and pattern.hits[20, RIDE]
    score = tok.decode_to_score(tokens, bpm=90.0)
    assert len(score.notes) == 3 and score.tempos[0].us_per_quarter == 666_667


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=-5, max_value=130), max_size=80))
def test_random_tokens_never_raise(tokens: list[int]) -> None:
    tok = DrumTokenizer()
    pattern = tok.decode(tokens, [MeterChange(0, TimeSignature(3, 4))])
    assert isinstance(pattern, DrumPattern)
    read = tokens[: tokens.index(EOS)] if EOS in tokens else tokens
    assert 0 <= pattern.dropped_tokens <= len(read)
    assert int(pattern.hits.sum()) <= sum(t in tok.hit_range for t in read)
    assert len(pattern.bar_starts) == read.count(BAR)
    decode_drums(pattern)
