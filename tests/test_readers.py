"""Dataset readers, per-piece splits and tolerant loading (musegen.data, no torch).

Listing a dataset only reads its CSV index; the few tests that parse MIDI parse a handful of
files, never a whole dataset.
"""

from __future__ import annotations

import csv
import logging
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from musegen.data import (
    FOLDER,
    MISSING,
    LoadReport,
    Piece,
    detect_reader,
    hash_split,
    iter_scores,
    load_piece,
    loading,
    read_pieces,
)
from musegen.data.splits import hash_bucket
from musegen.music.midi_io import MidiFileError

# (folder, index, rows present, validation pieces, unified genres that must appear)
DATASETS = [
    ("groove-midi", "info.csv", 1021, 124, {"rock", "funk", "jazz", "latin", "hiphop"}),
    ("pop909", "index.csv", 818, 68, {"pop"}),
    ("nottingham", "metadata.csv", 932, 96, {"folk"}),
    ("openewld", "metadata.csv", 502, 45, {"pop", "jazz", "rock", "folk", "funk", "latin"}),
    ("weimar-jazz", "metadata.csv", 409, 34, {"jazz"}),
]
GROOVE_FILES = (
    "drummer1/session1/1_funk_80_beat_4-4.mid",
    "drummer1/session1/10_jazz-funk_116_fill_4-4.mid",
)


def _csv_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.DictReader(f))


# --- the real datasets ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "index", "count", "validation", "genres"), DATASETS)
def test_each_reader_lists_its_dataset(
    data_root: Path, name: str, index: str, count: int, validation: int, genres: set[str]
) -> None:
    root = data_root / name
    assert detect_reader(root) == name
    pieces = read_pieces(root)
    assert len(pieces) == count == _csv_rows(root / index)
    assert not pieces.skipped
    assert len({p.id for p in pieces}) == count
    assert all(p.id.startswith(f"{name}:") and p.dataset == name for p in pieces)
    assert all(p.path.is_file() for p in pieces[:50])
    assert genres <= {p.genre for p in pieces}
    splits = Counter(p.split for p in pieces)
    assert splits == {"train": count - validation, "validation": validation}


def test_groove_keeps_the_official_split_and_labels(data_root: Path) -> None:
    pieces = read_pieces(data_root / "groove-midi")
    assert Counter(p.split for p in pieces) == {"train": 897, "validation": 124}
    first = next(p for p in pieces if p.id == "groove-midi:drummer1/session1/10")
    assert (first.part, first.raw_genre, first.genre) == ("drums", "jazz", "jazz")
    assert first.meta["style"] == "jazz/funk" and first.meta["beat_type"] == "fill"
    assert first.meta["bpm"] == "116" and first.meta["time_signature"] == "4-4"
    # Sub-styles fold into the unified drum labels (punk -> rock, afrocuban -> latin, ...).
    assert Counter(p.genre for p in pieces)["rock"] == 310 + 52


def test_melodic_readers_select_tracks_and_keep_style(data_root: Path) -> None:
    pop = read_pieces(data_root / "pop909")
    assert {p.tracks for p in pop} == {("MELODY", "BRIDGE", "PIANO")}
    notts = read_pieces(data_root / "nottingham")
    assert {"jig", "reel", "waltz"} <= {p.meta["style"] for p in notts}
    assert all(p.tracks is None and p.path.parent.name == "MIDI" for p in notts)
    jazz = read_pieces(data_root / "weimar-jazz")
    assert {p.tracks for p in jazz} == {("solo*",)}
    assert {"BEBOP", "COOL"} <= {p.meta["style"] for p in jazz}
    assert "SWING" in {p.meta["rhythmfeel"] for p in jazz}
    # A melody run over a drum set gets nothing; a drum run over a melody set likewise.
    assert read_pieces(data_root / "groove-midi", part="melody") == []
    assert read_pieces(data_root / "nottingham", part="drums") == []


def test_weimar_loads_only_the_solo_and_pop909_its_three_tracks(data_root: Path) -> None:
    solo = load_piece(read_pieces(data_root / "weimar-jazz")[0])
    assert solo.notes and {n.track for n in solo.notes} == {1}  # track 2 is the bass line
    song = load_piece(read_pieces(data_root / "pop909")[0])
    names = {song.track_names[n.track] for n in song.notes}
    assert names == {"MELODY", "BRIDGE", "PIANO"}


# --- splits ----------------------------------------------------------------------------------


def test_hash_split_is_stable_and_about_ten_percent() -> None:
    # Fixed values: SHA-1 gives the same answer on every run, machine and PYTHONHASHSEED.
    assert [hash_bucket(i) for i in ("pop909:001", "pop909:007", "nottingham:ashover1")] == [
        30, 3, 44,
    ]
    assert hash_split("pop909:007") == "validation" and hash_split("pop909:001") == "train"
    ids = [f"set:{i}" for i in range(5000)]
    share = sum(hash_split(i) == "validation" for i in ids) / len(ids)
    assert 0.05 < share < 0.15
    assert [hash_split(i) for i in ids] == [hash_split(i) for i in ids]


@pytest.mark.parametrize("name", ["pop909", "nottingham", "openewld", "weimar-jazz"])
def test_sets_without_official_split_use_the_piece_hash(data_root: Path, name: str) -> None:
    pieces = read_pieces(data_root / name)
    assert all(p.split == hash_split(p.id) for p in pieces)
    share = sum(p.split == "validation" for p in pieces) / len(pieces)
    assert 0.05 < share < 0.15  # Nottingham's CSV says train for all: the hash split applies
    assert [p.split for p in read_pieces(data_root / name)] == [p.split for p in pieces]


def test_all_windows_of_a_piece_share_its_split(data_root: Path, tmp_path: Path) -> None:
    """The split depends on the piece id only, never on a window or on where the files lie."""
    source = data_root / "groove-midi"
    for where in ("a/mine", "b/c/mine"):
        for rel in GROOVE_FILES:
            (tmp_path / where / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / rel, tmp_path / where / rel)
    first, second = (read_pieces(tmp_path / w, part="drums") for w in ("a/mine", "b/c/mine"))
    assert [(p.id, p.split) for p in first] == [(p.id, p.split) for p in second]
    piece = next(p for p in first if p.path.name.startswith("1_funk"))  # 86 s long
    score = load_piece(piece)
    windows = [(piece, start) for start, _ in score.bars()]  # every bar starts a window
    assert len(windows) > 4
    assert {hash_split(p.id) for p, _ in windows} == {piece.split}


# --- broken files ----------------------------------------------------------------------------


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n := n >> 7:
        out.append((n & 0x7F) | 0x80)
    return bytes(reversed(out))


def _track(data: bytes) -> bytes:
    return b"MTrk" + len(data).to_bytes(4, "big") + data


def _smf(*tracks: bytes) -> bytes:
    header = (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(tracks).to_bytes(2, "big")
    return b"MThd" + header + (480).to_bytes(2, "big") + b"".join(tracks)


def _note(pitch: int, channel: int = 0) -> bytes:
    on, off = bytes([0x90 | channel, pitch, 100]), bytes([0x80 | channel, pitch, 0])
    return b"\x00" + on + _vlq(480) + off


END = b"\x00\xff\x2f\x00"
TEMPO_0 = b"\x00\xff\x51\x03\x00\x00\x00"  # set_tempo 0 us: mido refuses to write it
TEMPO_120 = b"\x00\xff\x51\x03\x07\xa1\x20"

# file name -> what its reason must say
BROKEN = {
    "empty.mid": "empty",
    "random.mid": "corrupt",
    "truncated.mid": "corrupt",
    "zero_track.mid": "zero-length track",
    "tempo0.mid": "tempo 0",
    "huge_delta.mid": "absurd delta time",
    "no_notes.mid": "no notes",
    "piano.mid": "no drum notes",  # fine MIDI, but nothing a drum model can use
}


def _broken_folder(root: Path, groove: Path) -> None:
    real = (groove / GROOVE_FILES[0]).read_bytes()
    late_note = _vlq(0x0FFFFFFF) + bytes([0x90, 62, 100]) + b"\x00" + bytes([0x80, 62, 0])
    files = {
        "empty.mid": b"",
        "random.mid": random.Random(7).randbytes(300),
        "truncated.mid": real[: len(real) // 2],
        "zero_track.mid": _smf(_track(_note(60) + END), b"MTrk\x00\x00\x00\x00"),
        "tempo0.mid": _smf(_track(TEMPO_0 + _note(60) + END)),
        "huge_delta.mid": _smf(_track(_note(60) + late_note + END)),
        "no_notes.mid": _smf(_track(TEMPO_120 + END)),
        "piano.mid": _smf(_track(_note(60) + _note(64) + END)),
    }
    (root / "bad").mkdir(parents=True)
    for name, data in files.items():
        (root / "bad" / name).write_bytes(data)
    for i, rel in enumerate(GROOVE_FILES):
        shutil.copy(groove / rel, root / f"good{i}.mid")


def test_broken_files_are_skipped_with_reasons(
    data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _broken_folder(tmp_path, data_root / "groove-midi")
    pieces = read_pieces(tmp_path, part="drums")
    assert len(pieces) == 10 and detect_reader(tmp_path) == FOLDER
    report = LoadReport()
    with caplog.at_level(logging.WARNING, logger="musegen.data"):
        loaded = list(iter_scores(pieces, progress=False, report=report))
    assert sorted(p.path.name for p, _ in loaded) == ["good0.mid", "good1.mid"]
    assert all(score.notes for _, score in loaded)
    assert report.loaded == 2 and len(report.skipped) == len(BROKEN)
    for name, says in BROKEN.items():
        reason = report.reason_for(tmp_path / "bad" / name)
        assert reason is not None and says in reason, (name, reason)
        assert any(name in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert sum(report.counts().values()) == len(BROKEN)
    assert "skipped 8" in report.summary()


def test_any_exception_is_a_skip_and_the_stream_carries_its_report(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pieces = read_pieces(data_root / "groove-midi")[:2]

    def explode(path: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(loading, "load_score", explode)
    stream = iter_scores(pieces, progress=False)
    assert list(stream) == []
    assert stream.report.counts() == {"unexpected RuntimeError: boom": 2}


def test_melody_without_the_named_tracks_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "piano.mid"
    path.write_bytes(_smf(_track(_note(60) + END)))
    piece = Piece("x:piano.mid", path, "x", "melody", "", "other", "train", ("MELODY",))
    with pytest.raises(MidiFileError, match="no pitched notes in tracks MELODY"):
        load_piece(piece)


def test_files_missing_from_an_index_are_reported(data_root: Path, tmp_path: Path) -> None:
    source = data_root / "groove-midi"
    with (source / "info.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["midi_filename"] in GROOVE_FILES]
    with (tmp_path / "info.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / GROOVE_FILES[0]).parent.mkdir(parents=True)
    shutil.copy(source / GROOVE_FILES[0], tmp_path / GROOVE_FILES[0])  # the second is absent
    pieces = read_pieces(tmp_path)
    assert [p.id for p in pieces] == ["groove-midi:drummer1/session1/1"]
    assert pieces.report.reason_for(tmp_path / GROOVE_FILES[1]) == MISSING


# --- a user's folder with labels -----------------------------------------------------------


def test_folder_reader_takes_genre_and_split_from_labels(data_root: Path, tmp_path: Path) -> None:
    music = tmp_path / "my music"
    (music / "beats").mkdir(parents=True)
    (music / "tunes").mkdir()
    shutil.copy(data_root / "groove-midi" / GROOVE_FILES[0], music / "beats/groove.mid")
    shutil.copy(data_root / "groove-midi" / GROOVE_FILES[1], music / "beats/fill.MIDI")
    shutil.copy(data_root / "nottingham/MIDI/ashover1.mid", music / "tunes/waltz.mid")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,genre,split,mood\n"
        "beats/groove.mid,funk/groove1,validation,happy\n"
        "./tunes/waltz.mid,Jazz,train,\n"
        "tunes/gone.mid,Pop,train,\n",
        encoding="utf-8",
    )
    report = LoadReport()
    pieces = {p.path.name: p for p in read_pieces(music, labels=labels, report=report)}
    assert set(pieces) == {"groove.mid", "fill.MIDI", "waltz.mid"}
    groove, fill, waltz = pieces["groove.mid"], pieces["fill.MIDI"], pieces["waltz.mid"]
    assert (groove.part, groove.genre, groove.split) == ("drums", "funk", "validation")
    assert groove.id == "my music:beats/groove.mid" and groove.meta == {"mood": "happy"}
    assert (waltz.part, waltz.genre, waltz.split) == ("melody", "jazz", "train")
    # Unlabelled files are kept: no genre, and the hash split of their id.
    assert (fill.part, fill.genre, fill.split) == ("drums", "other", hash_split(fill.id))
    assert report.reason_for(music / "tunes/gone.mid") == MISSING
