"""What a dataset reader produces: Pieces to load, and a report of the files it had to skip.

A Piece is only a pointer to a MIDI file plus its labels; nothing is parsed until
`musegen.data.loading.load_piece`, so listing a whole dataset stays cheap.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from musegen.data.splits import Split
from musegen.music.genres import PartName

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Piece:
    """One MIDI file of one dataset, with its labels.

    `id` is "<dataset>:<dataset-relative key>" (e.g. "groove-midi:drummer1/session1/1"): it
    names the piece on any machine and is what the validation split is hashed from.
    `tracks` selects the melodic tracks by name (case-insensitive, `fnmatch` wildcards
    allowed, e.g. "solo*"); None means every pitched track. It is ignored for drums.
    """

    id: str
    path: Path
    dataset: str
    part: PartName
    raw_genre: str
    genre: str
    split: Split
    tracks: tuple[str, ...] | None = None
    # A dict cannot be hashed; leaving it out of the hash keeps Piece usable as a dict key.
    meta: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Skipped:
    """A file left out of a run, and why (the reason says what is wrong with it)."""

    path: Path
    reason: str


@dataclass
class LoadReport:
    """What a listing or loading run skipped, so a long data run can go on and say why later."""

    loaded: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, path: Path, reason: str) -> None:
        """Record a skipped file and warn right away, naming the file and the reason."""
        self.skipped.append(Skipped(path, reason))
        log.warning("skipping %s: %s", path, reason)

    def counts(self) -> Counter[str]:
        """Number of skipped files per reason."""
        return Counter(s.reason for s in self.skipped)

    def skipped_pairs(self) -> list[tuple[str, str]]:
        """(path, reason) of every skipped file, in plain strings for JSON caches."""
        return [(str(s.path), s.reason) for s in self.skipped]

    def reason_for(self, path: Path) -> str | None:
        """The reason a file was skipped, or None if it was not."""
        return next((s.reason for s in self.skipped if s.path == path), None)

    def summary(self) -> str:
        lines = [f"loaded {self.loaded}, skipped {len(self.skipped)}"]
        lines += [f"  {n:5d}  {reason}" for reason, n in self.counts().most_common()]
        return "\n".join(lines)


class PieceList(list[Piece]):
    """What `read_pieces` returns: a plain list of Pieces that also carries the listing's report
    (files named in an index but missing), so callers need not pass a report in."""

    def __init__(self, pieces: Iterable[Piece] = (), report: LoadReport | None = None) -> None:
        super().__init__(pieces)
        self.report = LoadReport() if report is None else report

    @property
    def pieces(self) -> list[Piece]:
        return list(self)

    @property
    def skipped(self) -> list[Skipped]:
        return self.report.skipped

    def skipped_pairs(self) -> list[tuple[str, str]]:
        return self.report.skipped_pairs()
