"""The performance representation on hand-built scores and on real files from each melodic set."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from pathlib import Path

import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.music.midi_io import load_score, save_score
from musegen.music.performance import (
    BarGrid,
    PerformanceConfig,
    PerformanceTokenizer,
    TokenKind,
)
from musegen.music.score import DRUM_CHANNEL, MeterChange, Note, Score
from musegen.music.special_tokens import BAR, BOS, EOS
from musegen.music.timing import PPQN, TimeSignature

DATA = Path("/work/shared/data")
REAL_FILES = {
    "pop909": DATA / "pop909/001/001.mid",
    "nottingham": DATA / "nottingham/MIDI/ashover1.mid",  # 3/4 with meter changes, 1024 tpq
    "nottingham_jig": DATA / "nottingham/MIDI/jigs10.mid",
    "openewld": DATA / "openewld/midi/A._Emmett_Adams-Douglas_Furber/The_Bells_of_St._Marys/"
    "The_Bells_of_St._Marys.mid",
    "weimar_jazz": DATA / "weimar-jazz/midi/001_ArtPepper_Anthropology-1.mid",
}
TOL = 20 + 1  # half a time unit, plus one tick of rounding
TOK = PerformanceTokenizer()


def real(name: str) -> Score:
    path = REAL_FILES[name]
    if not path.exists():
        pytest.skip(f"missing {path}")
    return load_score(path)


def bar_of(starts: list[int], tick: int) -> int:
    return bisect.bisect_right(starts, tick) - 1


def round_trip(score: Score) -> tuple[Score, Counter[str]]:
    stats: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    decoded = TOK.decode(TOK.encode(score, stats), score.meters, errors)
    assert not errors, errors  # the encoder only writes legal sequences
    return decoded, stats


# --- vocabulary and config ------------------------------------------------------------------
def test_vocabulary_layout() -> None:
    firsts = (TOK.note_on(21), TOK.note_off(21), TOK.time_shift(1), TOK.velocity(0))
    assert firsts == (4, 92, 180, 228) and TOK.vocab_size == 244 == TOK.velocity(15) + 1
    with pytest.raises(ValueError):
        TOK.note_on(20)  # below the range, not an id counted from the end
    assert [TOK.token_name(t) for t in (0, 1, 2, 3)] == ["PAD", "BOS", "EOS", "BAR"]
    assert TOK.token_name(TOK.note_on(60)) == "NOTE_ON_60"
    assert TOK.token_name(TOK.time_shift(48)) == "TIME_SHIFT_48"
    builders = {
        TokenKind.NOTE_ON: TOK.note_on,
        TokenKind.NOTE_OFF: TOK.note_off,
        TokenKind.TIME_SHIFT: TOK.time_shift,
        TokenKind.VELOCITY: TOK.velocity,
    }
    for token in range(4, TOK.vocab_size):
        kind, value = TOK.describe(token)
        assert builders[kind](value) == token
    with pytest.raises(ValueError):
        TOK.describe(TOK.vocab_size)


def test_velocity_bins_cover_1_to_127() -> None:
    for velocity in range(1, 128):
        assert TOK.velocity_bin(TOK.bin_velocity(TOK.velocity_bin(velocity))) == TOK.velocity_bin(
            velocity
        )
    assert TOK.velocity_bin(1) == 0 and TOK.velocity_bin(127) == 15


def test_config_round_trip_and_checks() -> None:
    config = PerformanceConfig(steps_per_quarter=4, velocity_bins=8)
    data = config.to_dict()
    assert data["kind"] == "performance" and data["version"] == 1
    assert PerformanceConfig.from_dict(data) == config
    with pytest.raises(ValueError):
        PerformanceConfig.from_dict({**data, "kind": "drums"})
    with pytest.raises(ValueError):
        PerformanceConfig.from_dict({**data, "bogus": 1})
    with pytest.raises(ValueError):
        PerformanceConfig(steps_per_quarter=7)  # 480 is not a multiple of 7


# --- hand-built scores -------------------------------------------------------------------------
def test_exact_tokens_of_a_small_score() -> None:
    score = Score([Note(0, 480, 60, 100), Note(480, 960, 64, 100), Note(960, 2400, 67, 50)])
    v100, v50 = TOK.velocity(TOK.velocity_bin(100)), TOK.velocity(TOK.velocity_bin(50))
    on, off, shift = TOK.note_on, TOK.note_off, TOK.time_shift
    assert TOK.encode(score) == [
        BOS,
        BAR, v100, on(60), shift(12), off(60), on(64), shift(12), off(64), v50, on(67),
        BAR, shift(12), off(67),  # held over the bar line; velocity re-stated only at note-ons
        EOS,
    ]  # fmt: skip


def test_overlaps_range_and_zero_length_are_resolved_and_counted() -> None:
    notes = [
        Note(0, 480, 10, 80),  # below range
        Note(0, 480, 120, 80),  # above range
        Note(0, 480, 60, 80),
        Note(5, 960, 60, 80),  # same snapped onset as the one above: merged, longest kept
        Note(0, 960, 62, 80),
        Note(480, 960, 62, 80),  # re-struck while sounding: the first is cut at 480
        Note(100, 105, 64, 80),  # both ends snap to 120: one unit long
        Note(0, 480, 38, 80, channel=DRUM_CHANNEL),
    ]
    stats: Counter[str] = Counter()
    decoded = TOK.decode(TOK.encode(Score(notes), stats))
    assert stats == Counter(out_of_range=2, merged=1, truncated=1, lengthened=1, drum=1)
    got = sorted((n.start, n.end, n.pitch) for n in decoded.notes)
    assert got == [(0, 480, 62), (0, 960, 60), (120, 160, 64), (480, 960, 62)]


def test_long_bars_need_several_shifts_and_meter_changes_move_bar_lines() -> None:
    meters = [MeterChange(0, TimeSignature(5, 4)), MeterChange(2400, TimeSignature(6, 8))]
    score = Score([Note(2200, 2300, 60, 64), Note(2400 + 1400, 2400 + 1440, 62, 64)], meters=meters)
    bars = TOK.encode_bars(score)
    assert bars[0][:3] == [BAR, TOK.time_shift(48), TOK.time_shift(7)]  # 55 units into 5/4
    assert bars[1][:2] == [BAR, TOK.time_shift(35)]  # the 6/8 bar starts at 2400
    assert bars[2] == [BAR, TOK.note_off(62)]  # ends on the next downbeat: a bar of its own
    decoded = TOK.decode([t for bar in bars for t in bar], meters)
    assert [(n.start, n.end) for n in decoded.notes] == [(2200, 2320), (3800, 3840)]


def test_grid_of_bars_that_are_not_whole_units() -> None:
    grid = BarGrid([(0, 420)], unit=40)  # 7/32: 10.5 units, grid points 0..400 in each bar
    assert grid.positions(0) == 11 and grid.start(1) == 420
    assert grid.locate(grid.snap(415)) == (1, 0)  # rounds past the last point: next downbeat
    assert grid.locate(grid.snap(399)) == (0, 10)
    assert grid.tick(*grid.locate(grid.snap(845))) == 840


def test_bar_grid_matches_score_bar_starts_on_a_meter_change_file() -> None:
    score = real("nottingham")
    grid = TOK.bar_grid(score.meters)
    starts = score.bar_starts()
    assert len({m.signature for m in score.meters}) > 1
    assert [grid.start(k) for k in range(len(starts))] == starts


def test_onsets_per_bar_counts_known_onsets() -> None:
    meters = [MeterChange(0, TimeSignature(4, 4)), MeterChange(1920, TimeSignature(3, 4))]
    notes = [
        Note(0, 480, 60, 80),
        Note(0, 480, 64, 80),  # a chord: two onsets
        Note(1919, 2000, 67, 80),
        Note(2000, 2100, 10, 80),  # out of range: not encoded, not counted
        Note(3360, 3400, 62, 80),  # first beat of bar 2 (3/4 bars from 1920)
        Note(4700, 4800, 64, 80),
        Note(3400, 3500, 36, 80, channel=DRUM_CHANNEL),
    ]
    assert TOK.onsets_per_bar(Score(notes, meters=meters)) == [3, 0, 2]


def test_decode_with_bar_lengths_and_windows_from_encode_bars() -> None:
    score = real("pop909")
    decoded, _ = round_trip(score)
    bars, starts = TOK.encode_bars(score), score.bar_starts()
    k, size = 10, 4
    window = [t for bar in bars[k : k + size] for t in bar]
    lengths = [starts[i + 1] - starts[i] for i in range(k, k + size)]
    errors: Counter[str] = Counter()
    part = TOK.decode(window, lengths, errors)
    first, stop = starts[k], starts[k + size]
    inside = [n for n in decoded.notes if first <= n.start < stop]
    assert sorted((n.start - first, n.pitch, n.velocity) for n in inside) == sorted(
        (n.start, n.pitch, n.velocity) for n in part.notes
    )
    orphans = [n for n in decoded.notes if n.start < first <= n.end < stop]
    assert orphans and errors["orphan_off"] == len(orphans)
    assert errors["unclosed"] == sum(n.end >= stop for n in inside)
    assert part.meters[0].signature == score.meters[0].signature


# --- real files ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_round_trip_keeps_onsets_pitches_velocities_and_bars(name: str) -> None:
    score = real(name)
    decoded, stats = round_trip(score)
    source = [n for n in score.notes if not n.is_drum and 21 <= n.pitch <= 108]
    assert len(source) == len(score.pitched().notes) - stats["out_of_range"]
    assert len(decoded.notes) == len(source) - stats["merged"]
    starts = score.bar_starts(until=score.end_tick + 8 * PPQN * 4)
    by_pitch: dict[int, list[Note]] = defaultdict(list)
    for note in source:
        by_pitch[note.pitch].append(note)
    for note in decoded.notes:
        near = [o for o in by_pitch[note.pitch] if abs(o.start - note.start) <= TOL]
        assert near, f"decoded {note} has no source onset"
        assert any(TOK.velocity_bin(o.velocity) == TOK.velocity_bin(note.velocity) for o in near)
        bar = bar_of(starts, note.start)
        # onsets stay in their bar, unless they lie in a bar's last half unit: then the downbeat
        source_bars = {bar_of(starts, o.start) for o in near}
        assert bar in source_bars or (bar - 1 in source_bars and note.start == starts[bar])
        assert note.end > note.start
    decoded_by_pitch: dict[int, list[int]] = defaultdict(list)
    for note in decoded.notes:
        decoded_by_pitch[note.pitch].append(note.start)
    for note in source:
        assert any(abs(note.start - d) <= TOL for d in decoded_by_pitch[note.pitch]), note


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_every_bar_line_has_a_bar_token_and_its_own_velocity(name: str) -> None:
    score = real(name)
    bars = TOK.encode_bars(score)
    assert len(bars) >= len(score.bar_starts())
    for bar in bars:
        assert bar[0] == BAR and BAR not in bar[1:]
        ons = [i for i, t in enumerate(bar) if t in TOK.note_on_ids]
        if ons:
            assert any(t in TOK.velocity_ids for t in bar[: ons[0]])


@pytest.mark.parametrize("name", ["pop909", "weimar_jazz", "nottingham"])
def test_saved_decoded_score_reads_back_the_same(name: str, tmp_path: Path) -> None:
    decoded, _ = round_trip(real(name))
    path = tmp_path / f"{name}.mid"
    save_score(decoded, path)
    expected = sorted((n.start, n.end, n.pitch, n.velocity) for n in decoded.notes)
    assert sorted((n.start, n.end, n.pitch, n.velocity) for n in load_score(path).notes) == expected
    midi = pretty_midi.PrettyMIDI(str(path))
    notes = sorted(
        (round(n.start, 6), round(n.end, 6), n.pitch, n.velocity)
        for inst in midi.instruments
        for n in inst.notes
    )
    seconds = decoded.seconds_at
    assert notes == sorted(
        (round(seconds(n.start), 6), round(seconds(n.end), 6), n.pitch, n.velocity)
        for n in decoded.notes
    )


# --- tolerant decoding -------------------------------------------------------------------------
def check_sane(score: Score) -> None:
    for note in score.notes:
        assert note.end > note.start >= 0 and 21 <= note.pitch <= 108 and 1 <= note.velocity <= 127


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-5, TOK.vocab_size + 5), max_size=400))
def test_garbage_ids_never_raise(tokens: list[int]) -> None:
    errors: Counter[str] = Counter()
    check_sane(TOK.decode(tokens, errors=errors))
    before_eos = tokens[: tokens.index(EOS)] if EOS in tokens else tokens
    assert errors["unknown"] == sum(not 0 <= t < TOK.vocab_size for t in before_eos)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(range(TOK.vocab_size)), max_size=400),
    st.sampled_from([TimeSignature(3, 4), [MeterChange(960, TimeSignature(7, 8))], [420, 1920]]),
)
def test_illegal_sequences_of_legal_ids_never_raise(tokens: list[int], meters: object) -> None:
    check_sane(TOK.decode(tokens, meters))  # type: ignore[arg-type]


def test_illegal_tokens_are_counted() -> None:
    tokens = [TOK.note_off(60), BAR, TOK.time_shift(48), TOK.note_on(60), TOK.note_on(60),
              TOK.time_shift(10), "x", 9999, TOK.note_on(62), EOS, TOK.note_on(64)]  # fmt: skip
    errors: Counter[str] = Counter()
    score = TOK.decode(tokens, errors=errors)  # type: ignore[arg-type]
    assert errors == Counter(
        orphan_off=1, shift_past_bar=1, restrike=1, zero_length=1, unknown=2, unclosed=2
    )
    assert sorted((n.start, n.end, n.pitch) for n in score.notes) == [
        (0, 40, 60), (0, 1920, 60), (400, 1920, 62)
    ]  # fmt: skip
