"""List the Pieces of a dataset folder from its own index, without parsing the MIDI files.

(The one exception: the folder reader parses a file to guess its part when the caller and
the labels give none.)

One small reader per dataset in /work/shared/data (see its README), each reading that
dataset's CSV index; plus `read_folder` for any user folder of .mid/.midi files with an
optional labels CSV. `detect_reader` recognises a dataset by its index file and columns and
falls back to the folder reader. A file named in an index but absent is skipped (reported
as "listed in index but missing"), never a crash: the held-out parts of the datasets and
partial copies both leave such holes.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Final

from musegen.data.pieces import LoadReport, Piece, PieceList
from musegen.data.splits import hash_split, parse_split, split_for
from musegen.music.genres import PartName, unify_genre
from musegen.music.midi_io import load_score

log = logging.getLogger(__name__)

MISSING: Final = "listed in index but missing"
MIDI_SUFFIXES: Final = frozenset({".mid", ".midi"})
FOLDER: Final = "folder"
_LABEL_COLUMNS: Final = frozenset({"file", "path", "genre", "split", "part"})  # not meta

Row = dict[str, str]
DatasetReader = Callable[[Path, LoadReport], list[Piece]]


def _rows(path: Path) -> list[Row]:
    # utf-8-sig: label files saved from spreadsheets often start with a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    # Blank cells of short rows come back as None; a stray trailing comma gives a None key.
    return [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in rows]


def _header(path: Path) -> set[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return {c.strip() for c in next(csv.reader(f), [])}
    except (OSError, UnicodeDecodeError):
        return set()


def _pick(row: Row, *columns: str) -> dict[str, str]:
    return {c: row[c] for c in columns if row.get(c)}


def _piece(
    dataset: str,
    key: str,
    path: Path,
    part: PartName,
    raw_genre: str,
    official_split: str | None = None,
    tracks: tuple[str, ...] | None = None,
    meta: Mapping[str, str] | None = None,
) -> Piece:
    piece_id = f"{dataset}:{key}"
    return Piece(
        id=piece_id,
        path=path,
        dataset=dataset,
        part=part,
        raw_genre=raw_genre,
        genre=unify_genre(raw_genre, part),
        split=split_for(piece_id, official_split),
        tracks=tracks,
        meta=dict(meta or {}),
    )


def _from_index(
    root: Path, index: str, report: LoadReport, make: Callable[[Path, Row], Piece]
) -> list[Piece]:
    """Build one Piece per index row, skipping the rows whose file is not there."""
    pieces: list[Piece] = []
    for row in _rows(root / index):
        piece = make(root, row)
        if piece.path.is_file():
            pieces.append(piece)
        else:
            report.skip(piece.path, MISSING)
    return pieces


# --- the datasets --------------------------------------------------------------------------


def _groove_piece(root: Path, row: Row) -> Piece:
    meta = _pick(row, "style", "bpm", "beat_type", "time_signature", "drummer", "duration")
    raw = row["style"].split("/")[0]  # "funk/groove1" -> "funk"
    path = root / row["midi_filename"]
    return _piece("groove-midi", row["id"], path, "drums", raw, row.get("split"), meta=meta)


def _pop909_piece(root: Path, row: Row) -> Piece:
    song = row["song_id"].zfill(3)  # spreadsheets may drop the leading zeros of "001"
    meta = _pick(row, "name", "artist", "num_beats_per_measure", "num_quavers_per_beat")
    tracks = ("MELODY", "BRIDGE", "PIANO")
    path = root / song / f"{song}.mid"
    return _piece("pop909", song, path, "melody", row.get("genre") or "pop", None, tracks, meta)


def _nottingham_piece(root: Path, row: Row) -> Piece:
    # The `split` column is "train" everywhere (the test tunes were withheld): hash split.
    meta = _pick(row, "style", "title", "meter", "key", "collection")
    key = PurePosixPath(row["midi"]).stem
    return _piece("nottingham", key, root / row["midi"], "melody", "folk", meta=meta)


def _openewld_piece(root: Path, row: Row) -> Piece:
    meta = _pick(row, "id", "title", "authors", "style", "time_signature", "key", "genres")
    # "midi/<authors>/<title>/<title>.mid" -> "<authors>/<title>", unique in the index
    parts = PurePosixPath(row["midi"]).parent.parts
    key = "/".join(parts[1:] if parts[:1] == ("midi",) else parts)
    return _piece("openewld", key, root / row["midi"], "melody", row.get("genre", ""), meta=meta)


def _weimar_piece(root: Path, row: Row) -> Piece:
    meta = _pick(
        row, "style", "rhythmfeel", "tempoclass", "avgtempo", "key", "signature",
        "performer", "title", "instrument",
    )
    # Track 1 ("solo (<instrument>)") is the solo; track 2 is a beat-wise bass annotation.
    path = root / row["midi"]
    return _piece("weimar-jazz", row["melid"], path, "melody", "jazz", None, ("solo*",), meta)


def read_groove(root: Path, report: LoadReport) -> list[Piece]:
    return _from_index(root, "info.csv", report, _groove_piece)


def read_pop909(root: Path, report: LoadReport) -> list[Piece]:
    return _from_index(root, "index.csv", report, _pop909_piece)


def read_nottingham(root: Path, report: LoadReport) -> list[Piece]:
    return _from_index(root, "metadata.csv", report, _nottingham_piece)


def read_openewld(root: Path, report: LoadReport) -> list[Piece]:
    return _from_index(root, "metadata.csv", report, _openewld_piece)


def read_weimar(root: Path, report: LoadReport) -> list[Piece]:
    return _from_index(root, "metadata.csv", report, _weimar_piece)


READERS: Final[dict[str, DatasetReader]] = {
    "groove-midi": read_groove,
    "pop909": read_pop909,
    "nottingham": read_nottingham,
    "openewld": read_openewld,
    "weimar-jazz": read_weimar,
}

# (index file, a column only that dataset's index has, reader name), checked in order.
_SIGNATURES: Final = (
    ("info.csv", "drummer", "groove-midi"),
    ("index.csv", "song_id", "pop909"),
    ("metadata.csv", "melody_midi", "nottingham"),
    ("metadata.csv", "leadsheet_mxl", "openewld"),
    ("metadata.csv", "melid", "weimar-jazz"),
)


def detect_reader(root: Path) -> str:
    """The name of the reader for a folder: a key of READERS, or FOLDER for anything else."""
    for index, column, name in _SIGNATURES:
        if column in _header(Path(root) / index):
            return name
    return FOLDER


# --- any folder of MIDI files --------------------------------------------------------------


def _rel_key(value: str) -> str:
    """A label file's path as the folder-relative POSIX key ("./a\\b.mid" -> "a/b.mid")."""
    return PurePosixPath(value.replace("\\", "/")).as_posix()


def _labels_by_file(root: Path, labels: Path) -> dict[str, Row]:
    if not labels.is_absolute() and not labels.exists():
        labels = root / labels  # a bare name means the file beside the music
    rows = _rows(labels)
    column = next((c for c in ("file", "path") if rows and c in rows[0]), None)
    if rows and column is None:
        raise ValueError(f"labels file {labels} needs a 'file' or 'path' column")
    return {_rel_key(row[column]): row for row in rows if column and row[column]}


def guess_part(path: Path) -> PartName:
    """drums when every note of the file is on channel 10, else melody."""
    try:
        score = load_score(path)
    except Exception:  # a broken file is reported when it is loaded; here it is just not drums
        return "melody"
    return "drums" if all(n.is_drum for n in score.notes) else "melody"


def _label_part(row: Row) -> PartName | None:
    label = row.get("part", "").lower()
    if label == "drums":
        return "drums"
    return "melody" if label == "melody" else None


def _folder_piece(root: Path, dataset: str, path: Path, row: Row, part: PartName | None) -> Piece:
    key = path.relative_to(root).as_posix()
    chosen = part or _label_part(row) or guess_part(path)
    piece_id = f"{dataset}:{key}"
    split = parse_split(row.get("split"))
    if row.get("split") and split is None:
        log.warning("%s: unknown split %r, using the hash split", path, row["split"])
    meta = {k: v for k, v in row.items() if k not in _LABEL_COLUMNS and v}
    raw = row.get("genre", "")
    return Piece(
        piece_id, path, dataset, chosen, raw, unify_genre(raw, chosen),
        split or hash_split(piece_id), None, meta,
    )


def read_folder(
    root: Path, report: LoadReport, part: PartName | None = None, labels: Path | None = None
) -> list[Piece]:
    """Every .mid/.midi file under root (recursive), labelled from an optional CSV.

    The CSV has a `file` or `path` column relative to root and optional `genre`, `split`
    (train/validation) and `part` columns; other columns go to `meta`. Files the CSV does not
    list are still read (genre "other", hash split). `part` from the caller wins over the
    CSV, which wins over the guess from the notes' channels.
    """
    root = Path(root)
    by_file = _labels_by_file(root, Path(labels)) if labels else {}
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    present = {p.relative_to(root).as_posix() for p in files}
    for key in sorted(by_file.keys() - present):
        report.skip(root / key, MISSING)
    dataset = root.resolve().name or FOLDER
    return [
        _folder_piece(root, dataset, p, by_file.get(p.relative_to(root).as_posix(), {}), part)
        for p in files
    ]


def read_pieces(
    root: str | os.PathLike[str],
    part: PartName | None = None,
    labels: str | os.PathLike[str] | None = None,
    report: LoadReport | None = None,
) -> PieceList:
    """List a folder's Pieces with the reader `detect_reader` picks.

    For a known dataset `part` filters (a melody run gets no groove pieces) and `labels` is
    ignored; for a plain folder they set the part and the labels. The result is a list of
    Pieces whose `.report` holds the files skipped as missing (`report` if one is given).
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    report = LoadReport() if report is None else report
    skipped_before = len(report.skipped)
    name = detect_reader(root)
    if name == FOLDER:
        pieces = read_folder(root, report, part, Path(labels) if labels else None)
    else:
        if labels:
            log.warning("%s is %s, which has its own index: ignoring %s", root, name, labels)
        pieces = [p for p in READERS[name](root, report) if part is None or p.part == part]
    missing = len(report.skipped) - skipped_before
    log.info("%s: %d pieces (%s reader), %d missing", root, len(pieces), name, missing)
    return PieceList(pieces, report)
