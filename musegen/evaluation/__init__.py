"""Model evaluation: likelihood, density and genre control, memorisation, and figures.

    from musegen.evaluation import EvalOptions, evaluate
    report = evaluate(load_model("drums-lstm"), prepare(root, part="drums"), EvalOptions())

`musegen eval` (musegen.cli.eval) prints the same report as one JSON object. matplotlib is
needed only for figures (`EvalOptions.plots`) and is imported only then.
"""

from __future__ import annotations

from musegen.evaluation.genre_classifier import GenreClassifier, features, train_classifier
from musegen.evaluation.metrics import (
    BarIndex,
    density_sweep,
    median_relative_error,
    rankdata,
    realised_densities,
    spearman,
)
from musegen.evaluation.suite import EvalError, EvalOptions, Stream, evaluate

__all__ = [
    "BarIndex",
    "EvalError",
    "EvalOptions",
    "GenreClassifier",
    "Stream",
    "density_sweep",
    "evaluate",
    "features",
    "median_relative_error",
    "rankdata",
    "realised_densities",
    "spearman",
    "train_classifier",
]
