"""Ship a training run as a model in `models/`: weights, configs and a model card.

The card is written from what the run recorded (config, parameter count, validation NLL) and
from `musegen eval` / `musegen bench` JSON when given, so its numbers are measured, not typed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from musegen.checkpoint import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, read_meta
from musegen.generation.sampling import DEFAULT_STEERING
from musegen.music.tokenizer import TOKENIZER_FILE

DATA_CREDITS = {
    "groove-midi": "Groove MIDI Dataset v1.0.0, Magenta (Gillick et al. 2019, \"Learning to "
    "Groove with Inverse Sequence Transformations\", ICML). Licence: CC BY 4.0.",
    "pop909": "POP909 (Wang et al. 2020, \"POP909: A Pop-song Dataset for Music Arrangement "
    "Generation\", ISMIR), Music X Lab. Licence: MIT.",
    "nottingham": "Nottingham Music Database by Eric Foxley, cleaned by Jukedeck "
    "(jukedeck/nottingham-dataset). Licence: GNU GPL v3.",
    "openewld": "OpenEWLD, Open Enhanced Wikifonia Leadsheet Dataset (00sapo). Licence: MIT.",
    "weimar-jazz": "Weimar Jazz Database, Jazzomat Research Project (Pfleiderer et al. 2017, "
    "\"Inside the Jazzomat\"), via the jazzodata R package. Licence: MIT.",
}


_FAMILY_NAMES = {"lstm": "LSTM", "transformer": "Transformer", "wavenet": "WaveNet-style"}

# eval output that describes the run rather than measuring the model
_NOT_METRICS = {"model", "part", "plots", "data"}
# what steering changes; NLL and the classifier's accuracy on real windows do not depend on it
MODEL_ALONE_KEYS = ("density_steering", "density_spearman", "density_median_rel_error",
                    "genre_adherence", "longest_copied_bars", "copied_bar_rate")


def ship(
    run: str | Path,
    models_root: str | Path,
    eval_json: dict[str, Any] | None = None,
    bench_row: dict[str, Any] | None = None,
    alone_json: dict[str, Any] | None = None,
    density_steering: float | None = None,
) -> Path:
    """Copy a run into `models_root/NAME` (or refresh a shipped model in place, when `run` is
    that folder) and write its card; `alone_json` is `musegen eval --density-steering 0`;
    `density_steering` becomes the model's default strength (chosen on validation)."""
    run = Path(run)
    meta, model_config = read_meta(run)
    dest = Path(models_root) / meta.name
    dest.mkdir(parents=True, exist_ok=True)
    if dest.resolve() != run.resolve():
        for name in (WEIGHTS_FILE, TOKENIZER_FILE):
            shutil.copyfile(run / name, dest / name)
    config = json.loads((run / CONFIG_FILE).read_text())
    if eval_json:
        measured = {k: v for k, v in eval_json.items() if k not in _NOT_METRICS}
        config["metrics"] = {**config.get("metrics", {}), **measured}
        medians = {g: v["density_median_train"]
                   for g, v in eval_json.get("per_genre", {}).items()
                   if v.get("density_median_train") is not None}
        if medians:  # where a genre's density starts (ModelMeta.default_density)
            config["density_defaults"] = {**config.get("density_defaults", {}), **medians}
    if alone_json:
        config["metrics_model_alone"] = {k: alone_json[k] for k in MODEL_ALONE_KEYS
                                         if k in alone_json}
    if density_steering is not None:
        config["sampling"] = {**config.get("sampling", {}), "density_steering": density_steering}
    (dest / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (dest / CARD_FILE).write_text(card_text(config, model_config, bench_row))
    return dest


def card_text(
    config: dict[str, Any], model_config: dict[str, Any], bench: dict[str, Any] | None
) -> str:
    training = config.get("training", {})
    data = [Path(d).name for d in training.get("data", [])]
    lines = [
        f"# {config['name']} (v{config.get('version', '0.1.0')})",
        "",
        f"A {_family_name(model_config)} generator for the **{config['part']}** part, conditioned "
        f"on genre ({', '.join(config['genres'])}) and on note density per bar "
        f"({config['density_range'][0]:g} to {config['density_range'][1]:g} onsets per 4/4 bar"
        + (", all hits" if config["part"] == "drums" else "") + ").",
        "",
        "## Data and licences",
        "",
        *[f"- `{d}`: {DATA_CREDITS.get(d, 'user data')}" for d in data],
        "",
        "The weights are derived from this data; use them under its licences and credit it.",
        "",
        "## Training",
        "",
        "```",
        f"musegen train --config configs/{config['name']}.toml --out runs/{config['name']}",
        "```",
        "",
        f"- parameters: {training.get('params', '?'):,}",
        f"- model: `{json.dumps(model_config)}`",
        f"- steps {training.get('steps')}, batch {training.get('batch_size')}, windows of "
        f"{training.get('window_bars')} bars, seed {training.get('seed')}; CPU",
        "",
        "## Metrics (`musegen eval`, on our validation split)",
        "",
        f"`musegen eval --model {config['name']} --data "
        + " --data ".join(training.get("data", [])) + " --json --plots plots/`",
        "",
        "Generated with the defaults a player gets, density steering included (see "
        "`musegen/generation/steering.py`; strength "
        f"{_steering(config)}); the model alone is below.",
        "",
        *_judged_genres(config),
        *_table({k: v for k, v in config.get("metrics", {}).items()
                 if k not in ("per_genre", "density_by_request", "realism")}),
        "",
        *_per_genre(config.get("metrics", {}).get("per_genre", {})),
        *_by_request(config.get("metrics", {}).get("density_by_request", [])),
        *_realism(config.get("metrics", {})),
        *_model_alone(config.get("metrics_model_alone")),
        "## Speed (`musegen bench`, batch 1, one thread)",
        "",
        *(_table(bench) if bench else ["not measured yet"]),
        "",
    ]
    return "\n".join(lines)


def _judged_genres(config: dict[str, Any]) -> list[str]:
    """Say which genres genre control was judged over, and which the model carries unjudged."""
    judged = config.get("metrics", {}).get("genres")
    if not judged:
        return []
    others = [g for g in config["genres"] if g not in judged and g != "other"]
    line = f"Genre control is judged over {', '.join(judged)}."
    if others:
        line += (f" The model also takes {', '.join(others)}, which were not judged"
                 " (`DEFAULT_GENRES` in `musegen/evaluation/suite.py` says why): treat their"
                 " genre control as untested.")
    return [line, ""]


def _steering(config: dict[str, Any]) -> str:
    own = config.get("sampling", {}).get("density_steering")
    if own is None:
        return f"{DEFAULT_STEERING:g}, the default"
    # ship records the value, not how it was found: the README says how the shipped ones were
    return f"{own:g}, this model's default, set when it was shipped"


def _model_alone(metrics: dict[str, Any] | None) -> list[str]:
    """The generation metrics with density steering off (`--density-steering 0`)."""
    if not metrics:
        return []
    return ["### The model alone (`--density-steering 0`)", "",
            *_table(metrics), ""]


def _family_name(model_config: dict[str, Any]) -> str:
    family = str(model_config["family"])
    return _FAMILY_NAMES.get(family, family)


def _per_genre(per_genre: dict[str, dict[str, Any]]) -> list[str]:
    if not per_genre:
        return []
    keys = [k for k in next(iter(per_genre.values())) if k != "realism"]
    rows = ["Per genre:", "", "| genre | " + " | ".join(keys) + " |",
            "| --- " * (len(keys) + 1) + "|"]
    rows += [f"| {g} | " + " | ".join(str(v.get(k)) for k in keys) + " |"
             for g, v in per_genre.items()]
    return [*rows, ""]


def _realism(metrics: dict[str, Any]) -> list[str]:
    """MGEval overlapped areas (musegen/evaluation/realism.py) per genre and feature."""
    rows = [(g, v["realism"]) for g, v in metrics.get("per_genre", {}).items() if "realism" in v]
    if not rows:
        return []
    out = ["Realism (overlapped area against real validation windows, 1 is best; generated at "
           "the genre's median density / other real pieces, the ceiling / shuffled bars, the "
           "floor):", "", "| genre | feature | generated | real | shuffled |",
           "| --- | --- | --- | --- | --- |"]
    for genre, features in [*rows, ("all", metrics.get("realism", {}))]:
        out += [f"| {genre} | {name} | {v.get('generated')} | {v.get('real')} | "
                f"{v.get('shuffled')} |" for name, v in features.items()]
    return [*out, ""]


def _by_request(rows: list[dict[str, Any]]) -> list[str]:
    """Each requested density (the sweep covers the advertised range) and what was played."""
    if not rows:
        return []
    return ["Density per request, all judged genres together:", "",
            "| requested | realised (median) | relative error |", "| --- | --- | --- |",
            *[f"| {r['requested']} | {r['realised_median']} | {r['rel_error']} |" for r in rows],
            ""]


def _table(values: dict[str, Any]) -> list[str]:
    if not values:
        return ["not measured yet"]
    rows = ["| metric | value |", "| --- | --- |"]
    for key, value in values.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        rows.append(f"| {key} | {shown} |")
    return rows
