"""Pick the next token from logits: grammar mask, temperature, top-k, top-p, seeded.

The mask is applied first, so no choice of temperature or truncation can produce an illegal
token; top-k and top-p then trim the tail of what is legal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Below this, sampling is argmax: the distribution is one-hot to float32 precision anyway
# (the logits are float32), and a knob at 0 must not divide by 0.
GREEDY_BELOW = 1e-4
# What generation uses unless told otherwise (see generation/steering.py and the model cards).
DEFAULT_STEERING = 1.0
DEFAULT_GUIDANCE = 0.0


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1.0: off
    # density steering (generation/steering.py): log-odds per onset behind; 0: the model
    # alone; None: the model's own default (its config's "sampling"), else DEFAULT_STEERING
    density_steering: float | None = None
    # genre guidance (generation/generator.py): w in l + w (l - l(mean genre)); 0: off
    genre_guidance: float = DEFAULT_GUIDANCE

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.density_steering is not None and self.density_steering < 0:
            raise ValueError(f"density_steering must be >= 0, got {self.density_steering}")
        if self.genre_guidance < 0:
            raise ValueError(f"genre_guidance must be >= 0, got {self.genre_guidance}")


def steering_strength(config: SamplingConfig, model_defaults: Mapping[str, float]) -> float:
    """The density steering to use: the caller's, else the model's default, else ours."""
    if config.density_steering is not None:
        return config.density_steering
    return float(model_defaults.get("density_steering", DEFAULT_STEERING))


def sample_token(
    logits: NDArray[np.floating[Any]],
    allowed: NDArray[np.bool_],
    config: SamplingConfig,
    rng: np.random.Generator | None = None,
) -> int:
    """One token id from 1-D `logits` [V] restricted to the bool mask `allowed` [V]."""
    return TokenSampler(len(logits), config).sample(logits, allowed, rng)


class TokenSampler:
    """Samples one token per call into buffers made once, for a generator's token loop.

    numpy, not torch: at one token of ~100-250 logits a torch sampler is dominated by
    per-op dispatch (``torch.multinomial`` alone cost ~50 us here, a whole model step ~120 us);
    and at this size each numpy call costs more than its arithmetic, so the common path
    (no top-k, no top-p) is eight in-place calls with no array allocated.
    """

    def __init__(self, vocab_size: int, config: SamplingConfig) -> None:
        self.config = config
        self._scores = np.empty(vocab_size, dtype=np.float64)
        self._cdf = np.empty(vocab_size, dtype=np.float64)
        self._inv_temperature = 1.0 / max(config.temperature, GREEDY_BELOW)

    def sample(
        self,
        logits: NDArray[np.floating[Any]],
        allowed: NDArray[np.bool_],
        rng: np.random.Generator | None = None,
    ) -> int:
        scores, config = self._scores, self.config
        scores.fill(-np.inf)
        np.copyto(scores, logits, where=allowed)
        best = int(scores.argmax())
        top = scores[best]
        if top == -np.inf:
            raise ValueError("the grammar allows no token here")
        if config.temperature < GREEDY_BELOW:
            return best
        # Shift so the best legal logit is 0: dividing by a tiny temperature then sends the
        # rest to -inf instead of overflowing to inf - inf = nan.
        scores -= top
        if config.temperature != 1.0:
            scores *= self._inv_temperature
        if config.top_k:
            k = min(config.top_k, int(allowed.sum()))
            kth = np.partition(scores, -k)[-k]
            scores[scores < kth] = -np.inf
        probs = np.exp(scores, out=scores)  # exp(-inf) = 0: masked and trimmed; the best is 1
        if config.top_p < 1.0:
            probs = _nucleus(probs / probs.sum(), config.top_p)
        cdf = np.add.accumulate(probs, out=self._cdf)  # np.cumsum: 3x the cost (a wrapper)
        draw = (rng or np.random.default_rng()).random() * cdf[-1]
        token = int(cdf.searchsorted(draw, side="right"))
        # draw < cdf[-1] unless it rounds up to it; zero-probability tokens are never landed on
        return token if token < len(cdf) else int(np.flatnonzero(probs)[-1])


def _nucleus(probs: NDArray[np.floating[Any]], top_p: float) -> NDArray[np.floating[Any]]:
    """Keep the smallest set of most likely tokens whose mass reaches top_p."""
    order = np.argsort(-probs, kind="stable")
    sorted_probs = probs[order]
    before = np.cumsum(sorted_probs) - sorted_probs  # mass of strictly likelier ones
    cut = before >= top_p
    cut[0] = False  # the likeliest always stays (a top_p that rounds to 0 too)
    kept = np.zeros_like(probs)
    kept[order[~cut]] = sorted_probs[~cut]
    kept /= kept.sum()
    return kept
