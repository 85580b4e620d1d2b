"""PNG figures of an evaluation: piano rolls of generated bars per genre, and the requested
versus realised density curve. matplotlib is imported here only, with the Agg backend, so the
engine and the CLI start without it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from musegen.music.drum_map import DRUM_CLASSES, NUM_DRUM_CLASSES, drum_class
from musegen.music.genres import PartName
from musegen.music.score import Score
from musegen.music.timing import FOUR_FOUR, PPQN

log = logging.getLogger(__name__)

ROLLS_FILE = "piano_rolls.png"
DENSITY_FILE = "density.png"
_DRUM_STEP = PPQN // 4  # 16th
_MELODY_STEP = PPQN // 12


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def drum_roll(score: Score, bars: int) -> npt.NDArray[np.float64]:
    """Velocity (0..1) of each drum class (rows, kick at the bottom) at each 16th step."""
    steps = bars * FOUR_FOUR.ticks_per_bar // _DRUM_STEP
    roll = np.zeros((NUM_DRUM_CLASSES, steps))
    for note in score.notes:
        cls = drum_class(note.pitch)
        step = int(np.floor(note.start / _DRUM_STEP + 0.5))
        if cls is not None and step < steps:
            roll[cls, step] = max(roll[cls, step], note.velocity / 127)
    return roll


def melody_roll(score: Score, bars: int) -> tuple[npt.NDArray[np.float64], int]:
    """Velocity of each pitch (rows from the lowest pitch played) at each 1/12-beat unit."""
    units = bars * FOUR_FOUR.ticks_per_bar // _MELODY_STEP
    pitches = [n.pitch for n in score.notes] or [60]
    low, high = min(pitches), max(pitches)
    roll = np.zeros((high - low + 1, units))
    for note in score.notes:
        a = note.start // _MELODY_STEP
        b = max(note.end // _MELODY_STEP, a + 1)
        roll[note.pitch - low, a : min(b, units)] = note.velocity / 127
    return roll, low


def plot_piano_rolls(
    rolls: Mapping[str, Score], part: PartName, bars: int, path: str | Path
) -> Path:
    """One subplot per genre of the given decoded bars."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(rolls), 1, figsize=(10, 1.0 + 1.8 * len(rolls)), squeeze=False)
    for ax, (genre, score) in zip(axes[:, 0], rolls.items(), strict=True):
        if part == "drums":
            ax.imshow(drum_roll(score, bars), aspect="auto", origin="lower", cmap="Greys",
                      vmin=0, vmax=1, interpolation="nearest")
            ax.set_yticks(range(NUM_DRUM_CLASSES), DRUM_CLASSES, fontsize=6)
            per_bar = FOUR_FOUR.ticks_per_bar // _DRUM_STEP
        else:
            roll, low = melody_roll(score, bars)
            ax.imshow(roll, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1,
                      interpolation="nearest", extent=(0, roll.shape[1], low - 0.5,
                                                       low + roll.shape[0] - 0.5))
            ax.set_ylabel("pitch", fontsize=7)
            per_bar = FOUR_FOUR.ticks_per_bar // _MELODY_STEP
        for bar in range(1, bars):
            ax.axvline(bar * per_bar - 0.5, color="tab:red", linewidth=0.6)
        ax.set_title(genre, fontsize=9, loc="left")
        ax.set_xticks([])
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_density(
    streams: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path
) -> Path:
    """Realised against requested onsets per bar: every bar as a dot, the per-request mean of
    each genre as a line, and the identity line a perfect control would lie on."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    top = 1.0
    for genre, (requested, realised) in streams.items():
        req, real = np.asarray(requested, float), np.asarray(realised, float)
        levels = np.unique(req)
        means = [real[req == level].mean() for level in levels]
        (line,) = ax.plot(levels, means, marker="o", label=genre)
        ax.scatter(req, real, s=8, alpha=0.25, color=line.get_color())
        top = max(top, float(req.max(initial=0)), float(real.max(initial=0)))
    ax.plot([0, top], [0, top], "k--", linewidth=1, label="identity")
    ax.set_xlabel("requested onsets per 4/4 bar")
    ax.set_ylabel("realised onsets per 4/4 bar")
    ax.set_xlim(0, top * 1.05)
    ax.set_ylim(0, top * 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log.info("wrote %s", path)
    return path
