"""The whole evaluation of one model on one dataset folder, as one JSON-ready dict.

1. NLL in bits per token on the validation split (windows of the model's `window_bars`).
2. Density control: per genre, one continuing stream of generated bars; the requested density
   steps through a sweep over the whole range the model advertises (what its knob reaches)
   in a seeded random order (so drift along the stream cannot pass for control), N bars per
   request, each request taking effect from the next bar. Realised onsets per bar are
   measured on the decoded bars; besides the overall figures, each request's median and its
   error (the worst request is reported: a knob end that does nothing shows there).
3. Genre control: a judge (an MLP ensemble, `genre_classifier.py`) trained on real training
   windows is checked on real validation windows, then applied to the generated streams cut
   into windows of `window_bars` bars; adherence is also given as a ratio to the judge's own
   accuracy on real windows of the genre.
4. Realism beside control (`realism.py`): per genre and MGEval feature, the overlapped area
   of generated against real validation windows, with real-vs-real as the ceiling and
   shuffled bars as the floor, in the same run.
5. Memorisation: the longest run of generated bars found consecutively in the training split.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from musegen.checkpoint import LoadedModel
from musegen.data.prepared import PreparedDataset
from musegen.evaluation.genre_classifier import FloatArray, features, train_classifier
from musegen.evaluation.metrics import (
    BarIndex,
    density_sweep,
    median_relative_error,
    per_request_errors,
    realised_densities,
    spearman,
)
from musegen.evaluation.realism import feature_names, realism, thin, window_features
from musegen.generation.generator import BarGenerator, Controls
from musegen.generation.sampling import SamplingConfig, steering_strength
from musegen.music.score import Score

log = logging.getLogger(__name__)

# The genres genre control is judged over by default: the ones the project's targets name for
# each part (drums: the GMD's rock, funk, jazz, latin, hiphop; melody: pop, jazz, folk).
# A melody model also carries rock, funk and latin, but our melody data has 1559, 153 and 58
# training windows of them (and 160, 14 and 0 validation windows): too few to train or check
# a classifier on. They can still be asked for with `--genres`.
DEFAULT_GENRES: dict[str, tuple[str, ...]] = {
    "drums": ("rock", "funk", "jazz", "latin", "hiphop"),
    "melody": ("pop", "jazz", "folk"),
}
MIN_GENRE_WINDOWS = 4  # training windows a genre needs to be evaluated by default
EVAL_BATCH = 16
PLOT_BARS = 4
REALISM_BARS = 64  # per genre, at its median density: 32 windows of 2 bars


class EvalError(ValueError):
    """The evaluation cannot run on this model and data; the message says why."""


@dataclass
class EvalOptions:
    bars_per_request: int = 8
    densities: int = 7
    seed: int = 0
    max_windows: int = 10000
    genres: tuple[str, ...] | None = None
    plots: Path | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


@dataclass
class Stream:
    """One genre's generated bars, with the density requested and realised for each."""

    genre: str
    requested: list[float] = field(default_factory=list)
    bars: list[list[int]] = field(default_factory=list)
    realised: list[float] = field(default_factory=list)

    def windows(self, bars: int) -> list[list[int]]:
        return [[t for bar in self.bars[i : i + bars] for t in bar]
                for i in range(0, len(self.bars) - bars + 1, bars)]


def evaluate(loaded: LoadedModel, data: PreparedDataset, options: EvalOptions) -> dict[str, Any]:
    window = int(loaded.meta.training.get("window_bars", 2))
    counts = window_counts(data, window)
    genres = choose_genres(loaded, counts["train"], options.genres)
    sweep = density_sweep(loaded.meta.density_control, options.densities)
    log.info("evaluating %s on %s: genres %s, densities %s", loaded.meta.name, data.root,
             genres, sweep)
    streams = [generate_stream(loaded, g, sweep, options, options.seed + i)
               for i, g in enumerate(genres)]
    result: dict[str, Any] = {
        "model": loaded.meta.name, "part": loaded.meta.part, "data": data.root,
        "window_bars": window, "genres": list(genres), "density_requests": sweep,
        "temperature": options.sampling.temperature,
        "density_steering": steering_strength(options.sampling, loaded.meta.sampling),
        "genre_guidance": options.sampling.genre_guidance,
        "nll_bits_per_token": nll_bits(loaded, data, window, options.max_windows),
        **density_metrics(streams),
    }
    medians = train_density_medians(data)
    genre_result, per_genre = genre_metrics(loaded, data, streams, window, options.max_windows,
                                            options.seed)
    for g in genres:
        per_genre[g] |= {"train_windows": counts["train"].get(g, 0),
                         "validation_windows": counts["validation"].get(g, 0),
                         "density_median_train": medians.get(g)}
    result |= genre_result | copy_metrics(BarIndex.from_dataset(data, "train"), streams)
    result["realism"] = realism_metrics(loaded, data, genres, medians, window, per_genre, options)
    result["per_genre"] = per_genre
    if options.plots is not None:
        result["plots"] = write_plots(loaded, streams, sweep, options.plots)
    ready: dict[str, Any] = json_ready(result)
    return ready


def window_counts(data: PreparedDataset, window: int) -> dict[str, dict[str, int]]:
    """Non-overlapping windows of `window` bars per split and genre."""
    out: dict[str, dict[str, int]] = {"train": {}, "validation": {}}
    for piece in data.pieces:
        n = piece.num_bars // window
        split = out.setdefault(piece.split, {})
        split[piece.genre] = split.get(piece.genre, 0) + n
    return out


def choose_genres(
    loaded: LoadedModel, train_counts: dict[str, int], asked: Sequence[str] | None
) -> tuple[str, ...]:
    meta = loaded.meta
    if asked:
        genres = tuple(meta.genre_control.validate(g) for g in asked)
        if short := [g for g in genres if train_counts.get(g, 0) < MIN_GENRE_WINDOWS]:
            raise EvalError(f"too few training windows for genre {', '.join(short)} "
                            f"(need {MIN_GENRE_WINDOWS}; have {train_counts})")
        return genres
    wanted = DEFAULT_GENRES.get(meta.part, meta.genres)
    genres = tuple(g for g in wanted if g in meta.genres and g != "other"
                   and train_counts.get(g, 0) >= MIN_GENRE_WINDOWS)
    if not genres:
        raise EvalError(f"no genre of {meta.name} has {MIN_GENRE_WINDOWS} training windows "
                        f"in the data (have {train_counts or 'none'})")
    return genres


def train_density_medians(data: PreparedDataset) -> dict[str, float]:
    """Each genre's median onsets per bar over its training bars: the density a player gets
    on picking the genre (`musegen ship` records them as the model's `density_defaults`)."""
    bars: dict[str, list[FloatArray]] = {}
    for p in data.split("train"):
        span = data.bar_density[p.first_bar : p.first_bar + p.num_bars]
        bars.setdefault(p.genre, []).append(span.astype(np.float64))
    return {g: float(np.median(np.concatenate(v))) for g, v in bars.items() if v}


def nll_bits(loaded: LoadedModel, data: PreparedDataset, window: int, max_windows: int
             ) -> float | None:
    from musegen.training.config import TrainConfig
    from musegen.training.examples import build_examples
    from musegen.training.trainer import evaluate_nll_bits

    meta = loaded.meta
    max_len = int(meta.training.get("max_len", 512))
    max_len = min(max_len, int(getattr(loaded.model.config, "max_len", None) or max_len))
    examples = build_examples([data], "validation", window, int(meta.training.get("hop_bars", 1)),
                              meta.density_control, meta.genre_control, max_len)
    if not len(examples):
        log.warning("no %d-bar validation windows in %s: no NLL", window, data.root)
        return None
    config = TrainConfig(meta.name, meta.part, loaded.family, batch_size=EVAL_BATCH,
                         eval_batches=max(1, math.ceil(max_windows / EVAL_BATCH)))
    device = next(loaded.model.parameters()).device
    return evaluate_nll_bits(loaded.model, examples, config, device)


def generate_stream(
    loaded: LoadedModel, genre: str, sweep: Sequence[float], options: EvalOptions, seed: int
) -> Stream:
    order = np.random.default_rng(seed).permutation(len(sweep))
    generator = BarGenerator(loaded, options.sampling, seed=seed)
    stream = Stream(genre)
    for i in order:
        controls = Controls(genre, sweep[int(i)])
        for _ in range(options.bars_per_request):
            stream.bars.append(generator.next_bar(controls))
            stream.requested.append(controls.density)
    stream.realised = realised_densities(loaded.codec, loaded.meta.density_control, stream.bars)
    return stream


def density_metrics(streams: Sequence[Stream]) -> dict[str, Any]:
    requested = [d for s in streams for d in s.requested]
    realised = [d for s in streams for d in s.realised]
    rows = per_request_errors(requested, realised)
    worst = max(rows, key=lambda r: r["rel_error"]) if rows else None
    return {"density_spearman": spearman(requested, realised),
            "density_median_rel_error": median_relative_error(requested, realised),
            "density_worst_request": worst, "density_by_request": rows}


def genre_metrics(
    loaded: LoadedModel, data: PreparedDataset, streams: Sequence[Stream], window: int,
    max_windows: int, seed: int = 0,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    genres = [s.genre for s in streams]
    per_genre: dict[str, dict[str, Any]] = {
        s.genre: {"density_spearman": spearman(s.requested, s.realised),
                  "density_median_rel_error": median_relative_error(s.requested, s.realised),
                  "density_worst_request_rel_error": max(
                      (r["rel_error"] for r in per_request_errors(s.requested, s.realised)),
                      default=None)}
        for s in streams
    }
    if len(genres) < 2:
        log.warning("genre metrics need two genres with data; have %s", genres)
        return {"genre_accuracy_real": None, "genre_adherence": None}, per_genre
    x_train, y_train = real_windows(loaded, data, "train", genres, window, max_windows)
    x_val, y_val = real_windows(loaded, data, "validation", genres, window, max_windows)
    classifier = train_classifier(x_train, y_train, genres, seed=seed)
    for stream in streams:
        generated = [_features(loaded, w, window) for w in stream.windows(window)]
        predicted = classifier.predict(np.asarray(generated))
        real = [i for i, g in enumerate(y_val) if g == stream.genre]
        per_genre[stream.genre] |= {
            "adherence": float(np.mean([p == stream.genre for p in predicted]))
            if predicted else None,
            "generated_windows": len(predicted),
            "accuracy_real": classifier.accuracy(x_val[real], [y_val[i] for i in real])
            if real else None,
        }
    for v in per_genre.values():
        real_rate = v["accuracy_real"]
        v["adherence_ratio"] = (v["adherence"] / real_rate if v["adherence"] is not None
                                and real_rate else None)
    rates = [v["adherence"] for v in per_genre.values() if v["adherence"] is not None]
    accuracy = classifier.accuracy(x_val, y_val) if y_val else None
    adherence = float(np.mean(rates)) if rates else None
    return {
        "genre_accuracy_real": accuracy,
        "genre_adherence": adherence,
        "genre_adherence_ratio": adherence / accuracy if adherence is not None and accuracy
        else None,
        "genre_chance": 1 / len(genres),
        "classifier_windows": {"train": len(y_train), "validation": len(y_val)},
    }, per_genre


def real_windows(
    loaded: LoadedModel, data: PreparedDataset, split: str, genres: Sequence[str], window: int,
    max_windows: int,
) -> tuple[FloatArray, list[str]]:
    """Features and genres of non-overlapping real windows, evenly thinned to `max_windows`."""
    found = [w for w in data.windows(window, window, split) if w.piece.genre in genres]
    if len(found) > max_windows:
        keep = np.linspace(0, len(found) - 1, max_windows).astype(np.int64)
        found = [found[i] for i in keep]
    x = [_features(loaded, w.tokens.tolist(), window) for w in found]
    width = len(features(Score([]), loaded.meta.part, window))
    return np.asarray(x).reshape(len(x), width), [w.piece.genre for w in found]


def _features(loaded: LoadedModel, tokens: Sequence[int], window: int) -> FloatArray:
    return features(loaded.codec.decode(tokens), loaded.meta.part, window)


def realism_metrics(
    loaded: LoadedModel, data: PreparedDataset, genres: Sequence[str],
    medians: dict[str, float], window: int, per_genre: dict[str, dict[str, Any]],
    options: EvalOptions,
) -> dict[str, dict[str, float]]:
    """Per genre (into `per_genre[g]["realism"]`) and averaged over genres (returned): for each
    feature, OA of generated, of real training pieces (ceiling) and of shuffled bars (floor)
    against the genre's real validation windows. The generated bars are a stream of their own
    at the genre's median density, the default a player gets (the density sweep's streams
    would be judged on the sweep, not on realism)."""
    part, names = loaded.meta.part, feature_names(loaded.meta.part)
    lo, hi = loaded.meta.density_range
    streams = [generate_stream(loaded, g, [min(max(medians.get(g, (lo + hi) / 2), lo), hi)],
                               replace(options, bars_per_request=REALISM_BARS),
                               options.seed + 1000 + i)
               for i, g in enumerate(genres)]
    seed = options.seed

    def feats(tokens: Sequence[int]) -> dict[str, FloatArray]:
        return window_features(loaded.codec.decode(list(tokens)), part, window)

    shuffled = thin([feats(w) for w in shuffled_windows(data, window, seed)])
    totals: dict[str, dict[str, list[float]]] = {}
    for stream in streams:
        real = thin([feats(w.tokens.tolist()) for w in data.windows(window, window, "validation")
                     if w.piece.genre == stream.genre])
        ceiling = thin([feats(w.tokens.tolist()) for w in data.windows(window, window, "train")
                        if w.piece.genre == stream.genre])
        if len(real) < 2 or len(ceiling) < 2:
            continue
        sets = {"generated": thin([feats(w) for w in stream.windows(window)]),
                "real": ceiling, "shuffled": shuffled}
        found = {k: realism(real, other, names) for k, other in sets.items()}
        per_genre[stream.genre]["realism"] = {n: {k: found[k][n] for k in sets} for n in names}
        for n in names:
            for k in sets:
                totals.setdefault(n, {}).setdefault(k, []).append(found[k][n])
    return {n: {k: float(np.mean(v)) for k, v in by_set.items()} for n, by_set in totals.items()}


def shuffled_windows(data: PreparedDataset, window: int, seed: int, count: int = 200
                     ) -> list[list[int]]:
    """`count` windows of bars drawn at random from the whole validation split."""
    bars = [b for p in data.split("validation") for b in range(p.first_bar,
                                                                p.first_bar + p.num_bars)]
    rng = np.random.default_rng(seed)
    offsets = data.bar_offsets
    picks = rng.choice(len(bars), size=(count, window)) if bars else np.zeros((0, window))
    return [[int(t) for i in row for t in data.tokens[offsets[bars[i]] : offsets[bars[i] + 1]]]
            for row in picks]


def copy_metrics(index: BarIndex, streams: Sequence[Stream]) -> dict[str, Any]:
    bars = [bar for s in streams for bar in s.bars]
    return {
        "longest_copied_bars": max((index.longest_copied_run(s.bars) for s in streams),
                                   default=0),
        "copied_bar_rate": float(np.mean([index.contains(b) for b in bars])) if bars else 0.0,
        "generated_bars": len(bars),
    }


def write_plots(
    loaded: LoadedModel, streams: Sequence[Stream], sweep: Sequence[float], folder: Path
) -> dict[str, str]:
    from musegen.evaluation.plots import DENSITY_FILE, ROLLS_FILE, plot_density, plot_piano_rolls

    middle = sweep[len(sweep) // 2]
    rolls, bars = {}, 1
    for s in streams:
        chosen = [b for b, d in zip(s.bars, s.requested, strict=True) if d == middle][:PLOT_BARS]
        bars = max(bars, len(chosen))
        rolls[f"{s.genre} ({middle:g} onsets/bar requested)"] = loaded.codec.decode(
            [t for bar in chosen for t in bar])
    return {
        "piano_rolls": str(plot_piano_rolls(rolls, loaded.meta.part, bars,
                                            folder / ROLLS_FILE)),
        "density": str(plot_density({s.genre: (s.requested, s.realised) for s in streams},
                                    folder / DENSITY_FILE)),
    }


def json_ready(value: Any) -> Any:
    """Floats rounded to 4 places, NaN as null (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    return value
