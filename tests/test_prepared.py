from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musegen.data import loading
from musegen.data.prepared import PreparedDataset, prepare
from musegen.music.tokenizer import codec_from_config


def test_groove_is_parsed_into_labelled_bars(groove_prepared) -> None:
    data, _ = groove_prepared
    assert isinstance(data, PreparedDataset)
    assert len(data.pieces) == 1021 and not data.skipped
    assert data.total_bars == len(data.bar_offsets) - 1 == sum(p.num_bars for p in data.pieces)
    assert {p.split for p in data.pieces} == {"train", "validation"}
    # Every bar begins with the BAR token, so windows can be cut on bar lines.
    codec = codec_from_config(data.tokenizer)
    bar_token = codec.encode_bars(_one_bar_score())[0][0]
    assert np.all(data.tokens[data.bar_offsets[:-1]] == bar_token)


def test_windows_stay_inside_one_piece_and_carry_labels(groove_prepared) -> None:
    data, _ = groove_prepared
    windows = list(data.windows(bars=4, hop=2, split="validation"))
    assert windows and all(w.piece.split == "validation" for w in windows)
    for w in windows[:200]:
        assert len(w.densities) == 4 and len(w.bar_starts) == 4
        assert w.first_bar + 4 <= w.piece.num_bars
        assert w.bar_starts[0] == 0 and np.all(np.diff(w.bar_starts) > 0)
        assert w.piece.genre in {"rock", "funk", "jazz", "latin", "hiphop", "pop", "country",
                                 "reggae", "blues", "other"}


def test_second_run_reads_the_cache_and_parses_nothing(
    groove_prepared, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, cache = groove_prepared

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a cached dataset was parsed again")

    monkeypatch.setattr(loading, "load_score", refuse)
    again = prepare(data_root / "groove-midi", cache_dir=cache, progress=False)
    assert again.from_cache and not data.from_cache
    assert np.array_equal(again.tokens, data.tokens)
    assert [p.id for p in again.pieces] == [p.id for p in data.pieces]


def _one_bar_score():  # type: ignore[no-untyped-def]
    from musegen.music.score import Note, Score

    return Score([Note(0, 60, 36, 100, 9)])


def test_merged_datasets_keep_every_window_intact(groove_prepared) -> None:
    from musegen.data.prepared import merge

    data, _ = groove_prepared
    both = merge([data, data])
    assert len(both.pieces) == 2 * len(data.pieces) and both.total_bars == 2 * data.total_bars
    first = list(data.windows(bars=2, hop=7))
    again = list(both.windows(bars=2, hop=7))
    assert len(again) == 2 * len(first)
    for a, b in zip(first, again[len(first):], strict=True):
        assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.densities, b.densities)


def test_a_file_that_loads_but_cannot_be_tokenized_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import mido

    from tests.conftest import FUNK_80

    folder = tmp_path / "kit"
    folder.mkdir()
    (folder / "good.mid").write_bytes(FUNK_80.read_bytes())
    odd = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    odd.tracks.append(track)
    track.append(mido.MetaMessage("time_signature", numerator=9, denominator=4))  # 36 16ths
    for i in range(8):
        track.append(mido.Message("note_on", channel=9, note=36, velocity=90, time=0 if i == 0
                                  else 240))
        track.append(mido.Message("note_off", channel=9, note=36, time=60))
    odd.save(folder / "nine-four.mid")
    data = prepare(folder, part="drums", cache_dir=tmp_path / "cache", progress=False)
    assert [Path(p.path).name for p in data.pieces] == ["good.mid"]
    (skipped_path, reason), = data.skipped
    assert Path(skipped_path).name == "nine-four.mid" and "cannot encode" in reason
    assert "nine-four.mid" in caplog.text
