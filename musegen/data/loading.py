"""Parse Pieces into Scores that hold only the part a model trains on, skipping bad files.

A long data run must not die on file 7,000 of 10,000: `iter_scores` turns any exception from
one file into a skip (a `logging.warning` naming the file and the reason, plus an entry in
the LoadReport) and goes on with the next file.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Iterator, Sequence

from tqdm import tqdm

from musegen.data.pieces import LoadReport, Piece
from musegen.music.drum_map import drum_class
from musegen.music.midi_io import MidiFileError, load_score
from musegen.music.score import Score

log = logging.getLogger(__name__)


def track_indices(score: Score, selectors: Sequence[str]) -> list[int]:
    """Indices of the tracks whose name matches a selector (case-insensitive, fnmatch)."""
    patterns = [s.strip().lower() for s in selectors]
    return [
        i
        for i, name in enumerate(score.track_names)
        if any(fnmatch.fnmatchcase(name.strip().lower(), p) for p in patterns)
    ]


def _drums(score: Score) -> Score:
    # Only channel-10 notes are drums: a piano file's notes 35-87 would otherwise pass as kit
    # pieces, and a file with none left is "drum-less" for a drum model.
    drums = score.with_notes(n for n in score.drums().notes if drum_class(n.pitch) is not None)
    if not drums.notes:
        raise MidiFileError("no drum notes (no channel-10 note that maps to a drum class)")
    return drums


def _melody(score: Score, tracks: tuple[str, ...] | None) -> Score:
    if tracks is None:
        melodic = score.pitched()
        where = "any track"
    else:
        melodic = score.pitched(track_indices(score, tracks))
        where = f"tracks {', '.join(tracks)}"
    if not melodic.notes:
        raise MidiFileError(f"no pitched notes in {where}")
    return melodic


def load_piece(piece: Piece) -> Score:
    """The piece's Score, reduced to its part; raises MidiFileError when nothing usable is left."""
    score = load_score(piece.path)
    return _drums(score) if piece.part == "drums" else _melody(score, piece.tracks)


def _reason(exc: Exception) -> str:
    if isinstance(exc, MidiFileError):
        return str(exc)
    # Not one of midi_io's known failures: keep the type so the report still says what broke.
    return f"unexpected {type(exc).__name__}: {exc}"


class ScoreStream(Iterator[tuple[Piece, Score]]):
    """The iterator `iter_scores` returns; `.report` fills in as it runs."""

    def __init__(self, pieces: Iterable[Piece], progress: bool, report: LoadReport) -> None:
        self.report = report
        self._items = self._run(list(pieces), progress)  # a list gives tqdm its total

    def __iter__(self) -> ScoreStream:
        return self

    def __next__(self) -> tuple[Piece, Score]:
        return next(self._items)

    def _run(self, pieces: list[Piece], progress: bool) -> Iterator[tuple[Piece, Score]]:
        for piece in tqdm(pieces, desc="loading MIDI", unit="file", disable=not progress):
            try:
                score = load_piece(piece)
            except Exception as exc:  # one bad file must never end the run
                self.report.skip(piece.path, _reason(exc))
                continue
            self.report.loaded += 1
            yield piece, score
        log.info("%s", self.report.summary())


def iter_scores(
    pieces: Iterable[Piece], progress: bool = True, report: LoadReport | None = None
) -> ScoreStream:
    """Yield (piece, score) for every piece that loads; skip and report every one that does not.

    Each skip is a logging.warning naming the file and the reason. The returned iterator's
    `.report` (the given `report`, or a new one) counts the skips by reason.
    """
    return ScoreStream(pieces, progress, LoadReport() if report is None else report)
