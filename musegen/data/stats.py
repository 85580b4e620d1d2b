"""`musegen data stats`: what is in a dataset folder, from the same cached pipeline as training."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from musegen.data.prepared import PreparedDataset
from musegen.music.controls import DensityControl


@dataclass(frozen=True)
class DataStats:
    root: str
    part: str
    files: int
    loaded: int
    skipped: dict[str, int]  # reason -> count
    hours: float
    bars: int
    genres: dict[str, int]  # unified label -> pieces
    raw_genres: dict[str, int]
    splits: dict[str, int]
    density: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def compute_stats(data: PreparedDataset) -> DataStats:
    skipped = Counter(_reason_kind(reason) for _, reason in data.skipped)
    density = data.bar_density
    control = DensityControl.for_part(data.part)
    bins = Counter(control.to_bin(float(d)) for d in density)
    edges = (control.minimum, *control.edges, control.maximum)
    histogram = {
        f"{edges[i]:g}-{edges[i + 1]:g}": bins.get(i, 0) for i in range(control.num_bins)
    }
    percentiles = (
        {f"p{q}": round(float(np.percentile(density, q)), 2) for q in (10, 50, 90, 99)}
        if len(density) else {}
    )
    return DataStats(
        root=data.root,
        part=data.part,
        files=len(data.pieces) + len(data.skipped),
        loaded=len(data.pieces),
        skipped=dict(skipped.most_common()),
        hours=round(sum(p.seconds for p in data.pieces) / 3600, 2),
        bars=data.total_bars,
        genres=dict(Counter(p.genre for p in data.pieces).most_common()),
        raw_genres=dict(Counter(p.raw_genre for p in data.pieces).most_common()),
        splits=dict(Counter(p.split for p in data.pieces).most_common()),
        density={
            "unit": "onsets per 4/4 bar" + (" (all hits)" if data.part == "drums" else ""),
            "mean": round(float(density.mean()), 2) if len(density) else 0.0,
            **percentiles,
            "histogram": histogram,
        },
    )


def _reason_kind(reason: str) -> str:
    """Group reasons like 'corrupt MIDI: EOFError: ...' under their first clause."""
    return reason.split(":")[0].strip()


def format_stats(stats: DataStats) -> str:
    lines = [
        f"dataset   {stats.root} ({stats.part})",
        f"files     {stats.files} ({stats.loaded} loaded, {sum(stats.skipped.values())} skipped)",
    ]
    lines += [f"  skipped {n:>5}  {reason}" for reason, n in stats.skipped.items()]
    lines += [
        f"hours     {stats.hours:.2f}",
        f"bars      {stats.bars}",
        "splits    " + ", ".join(f"{k} {v}" for k, v in stats.splits.items()),
        "genres    " + ", ".join(f"{k} {v}" for k, v in stats.genres.items()),
        "  raw     " + ", ".join(f"{k} {v}" for k, v in stats.raw_genres.items()),
        f"density   {stats.density['unit']}: mean {stats.density['mean']}, "
        + ", ".join(f"{k} {v}" for k, v in stats.density.items() if k.startswith("p")),
    ]
    total = max(1, stats.bars)
    for label, count in stats.density["histogram"].items():
        bar = "#" * round(40 * count / total)
        lines.append(f"  {label:>7} {count:>7} {bar}")
    return "\n".join(lines)
