"""Dataset readers, per-piece splits and tolerant MIDI loading (no torch here).

    pieces = read_pieces("/work/shared/data/groove-midi")
    report = LoadReport()
    for piece, score in iter_scores(pieces, report=report):
        ...
    print(report.summary())
"""

from __future__ import annotations

from musegen.data.loading import ScoreStream, iter_scores, load_piece, track_indices
from musegen.data.pieces import LoadReport, Piece, PieceList, Skipped
from musegen.data.readers import (
    FOLDER,
    MISSING,
    READERS,
    DatasetReader,
    detect_reader,
    guess_part,
    read_folder,
    read_groove,
    read_nottingham,
    read_openewld,
    read_pieces,
    read_pop909,
    read_weimar,
)
from musegen.data.splits import VALIDATION_PERCENT, Split, hash_split, split_for

__all__ = [
    "FOLDER",
    "MISSING",
    "READERS",
    "VALIDATION_PERCENT",
    "DatasetReader",
    "LoadReport",
    "Piece",
    "PieceList",
    "ScoreStream",
    "Skipped",
    "Split",
    "detect_reader",
    "guess_part",
    "hash_split",
    "iter_scores",
    "load_piece",
    "read_folder",
    "read_groove",
    "read_nottingham",
    "read_openewld",
    "read_pieces",
    "read_pop909",
    "read_weimar",
    "split_for",
    "track_indices",
]
