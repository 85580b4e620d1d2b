"""A dataset parsed once into bar-aligned tokens with per-bar density labels, cached on disk.

Parsing MIDI is the slow part (about 20 ms a file), so the first run stores every piece's
tokens, bar boundaries and labels in one `.npz` + `.json` pair under the cache folder. The key
covers the file listing (ids, sizes, mtimes), the tokenizer config and this module's format
version, so an edited folder or a new tokenizer rebuilds and a second run reparses nothing.
Training windows are cut from the cached bars on the fly (`windows`), always on bar lines and
always within one piece, so a split by piece stays a split by piece.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from musegen.data.loading import iter_scores
from musegen.data.pieces import Piece
from musegen.data.readers import read_pieces
from musegen.music.controls import DensityControl
from musegen.music.genres import PartName
from musegen.music.tokenizer import Codec, codec_for_part

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    env = os.environ.get("MUSEGEN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "musegen" / "data"


@dataclass(frozen=True)
class PieceRecord:
    id: str
    path: str
    genre: str
    raw_genre: str
    split: str
    seconds: float
    first_bar: int  # index into the dataset's bar arrays
    num_bars: int


@dataclass(frozen=True)
class Window:
    """`bars` consecutive bars of one piece: tokens (each bar starts with BAR) and labels."""

    piece: PieceRecord
    first_bar: int  # within the piece
    tokens: npt.NDArray[np.int32]
    bar_starts: npt.NDArray[np.int64]  # where each bar begins inside `tokens`
    densities: npt.NDArray[np.float32]  # per bar, onsets per 4/4 bar


@dataclass
class PreparedDataset:
    root: str
    part: PartName
    tokenizer: dict[str, Any]
    pieces: list[PieceRecord]
    tokens: npt.NDArray[np.int32]
    bar_offsets: npt.NDArray[np.int64]  # [total_bars + 1] start of each bar in `tokens`
    bar_density: npt.NDArray[np.float32]  # [total_bars]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    from_cache: bool = False

    @property
    def total_bars(self) -> int:
        return len(self.bar_density)

    def split(self, name: str) -> list[PieceRecord]:
        return [p for p in self.pieces if p.split == name]

    def windows(
        self, bars: int, hop: int = 1, split: str | None = None
    ) -> Iterator[Window]:
        """Every run of `bars` bars inside one piece, stepping `hop` bars."""
        for piece in self.pieces:
            if split is not None and piece.split != split:
                continue
            for first in range(0, piece.num_bars - bars + 1, hop):
                yield self.window(piece, first, bars)

    def window(self, piece: PieceRecord, first: int, bars: int) -> Window:
        lo = piece.first_bar + first
        offsets = self.bar_offsets[lo : lo + bars + 1]
        return Window(
            piece,
            first,
            self.tokens[offsets[0] : offsets[-1]],
            offsets[:-1] - offsets[0],
            self.bar_density[lo : lo + bars],
        )


def prepare(
    root: str | os.PathLike[str],
    part: PartName | None = None,
    labels: str | os.PathLike[str] | None = None,
    codec: Codec | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> PreparedDataset:
    """Read, parse, tokenize and label a dataset folder, or load it from the cache."""
    listing = read_pieces(root, part=part, labels=labels)
    pieces = listing.pieces
    part = part or (pieces[0].part if pieces else "drums")
    codec = codec or codec_for_part(part)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _cache_key(root, part, labels, codec, pieces)
    cached = _load(cache, key)
    if cached is not None:
        log.info("loaded %s from cache %s", root, cache)
        return cached
    dataset = _build(root, part, codec, pieces, progress)
    dataset.skipped = [*listing.skipped_pairs(), *dataset.skipped]
    _save(cache, key, dataset)
    return dataset


def _build(
    root: str | os.PathLike[str],
    part: PartName,
    codec: Codec,
    pieces: Sequence[Piece],
    progress: bool,
) -> PreparedDataset:
    density = DensityControl.for_part(part)
    records: list[PieceRecord] = []
    bar_tokens: list[list[int]] = []
    bar_density: list[float] = []
    scores = iter_scores(pieces, progress=progress)
    for piece, score in scores:
        try:
            bars = codec.encode_bars(score)
        except ValueError as exc:  # e.g. a 9/4 bar wider than the drum tokenizer's bar
            scores.report.skip(piece.path, f"cannot encode: {exc}")
            scores.report.loaded -= 1  # counted as loaded a moment ago
            continue
        dens = density.extract(score)[: len(bars)]
        bars = bars[: len(dens)]
        records.append(PieceRecord(
            piece.id, str(piece.path), piece.genre, piece.raw_genre or "", piece.split,
            score.duration_seconds, len(bar_density), len(bars),
        ))
        bar_tokens.extend(bars)
        bar_density.extend(dens)
    lengths = np.array([len(b) for b in bar_tokens], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = [t for bar in bar_tokens for t in bar]
    return PreparedDataset(
        str(root), part, codec.config_dict(), records,
        np.asarray(flat, dtype=np.int32), offsets, np.asarray(bar_density, dtype=np.float32),
        skipped=scores.report.skipped_pairs(),
    )


def _cache_key(
    root: str | os.PathLike[str],
    part: PartName,
    labels: str | os.PathLike[str] | None,
    codec: Codec,
    pieces: Sequence[Piece],
) -> str:
    digest = hashlib.sha256()
    head = {"format": CACHE_FORMAT, "root": str(Path(root).resolve()), "part": part,
            "tokenizer": codec.config_dict()}
    digest.update(json.dumps(head, sort_keys=True).encode())
    if labels is not None:
        digest.update(Path(labels).read_bytes())
    for p in pieces:
        try:
            st = p.path.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"{p.id}|{p.path}|{p.split}|{p.genre}|{stamp}\n".encode())
    return digest.hexdigest()[:24]


def _save(cache: Path, key: str, data: PreparedDataset) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    # Temporary names unique to this process: ranks of one torchrun job may build at once.
    stem = f"{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp_arrays, tmp_meta = cache / f"{stem}.npz", cache / f"{stem}.json"
    np.savez(tmp_arrays, tokens=data.tokens, bar_offsets=data.bar_offsets,
             bar_density=data.bar_density)
    meta = {"root": data.root, "part": data.part, "tokenizer": data.tokenizer,
            "pieces": [asdict(p) for p in data.pieces], "skipped": data.skipped}
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_arrays, cache / f"{key}.npz")  # arrays first: a json without arrays is
    os.replace(tmp_meta, cache / f"{key}.json")  # never read


def _load(cache: Path, key: str) -> PreparedDataset | None:
    meta_path, arrays_path = cache / f"{key}.json", cache / f"{key}.npz"
    if not (meta_path.exists() and arrays_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(arrays_path) as arrays:
            return PreparedDataset(
                meta["root"], meta["part"], meta["tokenizer"],
                [PieceRecord(**p) for p in meta["pieces"]],
                arrays["tokens"], arrays["bar_offsets"], arrays["bar_density"],
                [tuple(s) for s in meta["skipped"]], from_cache=True,
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable cache entry %s: %s", meta_path, exc)
        return None


def merge(datasets: Sequence[PreparedDataset]) -> PreparedDataset:
    """Several prepared datasets of one part and tokenizer as one (e.g. the four melody sets)."""
    if not datasets:
        raise ValueError("nothing to merge")
    first = datasets[0]
    if any(d.part != first.part or d.tokenizer != first.tokenizer for d in datasets):
        raise ValueError("can only merge datasets of one part and one tokenizer")
    pieces: list[PieceRecord] = []
    offsets: list[npt.NDArray[np.int64]] = []
    token_base = bar_base = 0
    for d in datasets:
        pieces += [replace(p, first_bar=p.first_bar + bar_base) for p in d.pieces]
        offsets.append(d.bar_offsets[:-1] + token_base)
        token_base += len(d.tokens)
        bar_base += d.total_bars
    return PreparedDataset(
        ";".join(d.root for d in datasets), first.part, first.tokenizer, pieces,
        np.concatenate([d.tokens for d in datasets]),
        np.concatenate([*offsets, np.array([token_base], dtype=np.int64)]),
        np.concatenate([d.bar_density for d in datasets]),
        [s for d in datasets for s in d.skipped],
        from_cache=all(d.from_cache for d in datasets),
    )
