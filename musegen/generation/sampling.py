"""Pick the next token from logits: grammar mask, temperature, top-k, top-p, seeded.

The mask is applied first, so no choice of temperature or truncation can produce an illegal
token; top-k and top-p then trim the tail of what is legal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Below this, sampling is argmax: the distribution is one-hot to float32 precision anyway,
# and a smaller divisor rounds to 0 in float32 (0 / 0 = nan).
GREEDY_BELOW = 1e-4


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1.0: off

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def sample_token(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    config: SamplingConfig,
    generator: torch.Generator | None = None,
) -> int:
    """One token id from 1-D `logits` [V] restricted to the bool mask `allowed` [V]."""
    if not bool(allowed.any()):
        raise ValueError("the grammar allows no token here")
    logits = logits.float().masked_fill(~allowed, float("-inf"))
    if config.temperature < GREEDY_BELOW:
        return int(torch.argmax(logits))
    # Shift so the best legal logit is 0: dividing by a tiny temperature then sends the rest
    # to -inf instead of overflowing to inf - inf = nan.
    logits = (logits - logits.max()) / config.temperature
    if config.top_k:
        kth = torch.topk(logits, min(config.top_k, int(allowed.sum()))).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if config.top_p < 1.0:
        probs = _nucleus(probs, config.top_p)
    return int(torch.multinomial(probs, 1, generator=generator))


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches top_p."""
    sorted_probs, order = torch.sort(probs, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass of strictly likelier ones
    cut = before >= top_p
    cut[0] = False  # the likeliest always stays (a top_p that rounds to 0 in float32 too)
    sorted_probs = sorted_probs.masked_fill(cut, 0.0)
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return kept / kept.sum()
