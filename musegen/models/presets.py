"""Named sizes per family: ``debug`` (tests; builds in milliseconds) and ``small``
(sized for a Raspberry Pi 4: roughly 0.5M to 1M parameters at a ~150-token vocabulary)."""

from __future__ import annotations

from typing import Any

from musegen.models.base import GeneratorConfig
from musegen.models.lstm import LSTMConfig
from musegen.models.transformer import TransformerConfig
from musegen.models.wavenet import WaveNetConfig

# family -> preset name -> (config class, hyper-parameters besides the label-set sizes)
_PRESETS: dict[str, dict[str, tuple[type[GeneratorConfig], dict[str, Any]]]] = {
    "lstm": {
        "debug": (LSTMConfig, {"d_embed": 16, "hidden": 24, "layers": 2, "dropout": 0.0}),
        "small": (LSTMConfig, {"d_embed": 128, "hidden": 256, "layers": 2, "dropout": 0.1}),
    },
    "transformer": {
        "debug": (
            TransformerConfig,
            {"d_model": 16, "heads": 2, "layers": 2, "max_len": 64, "dropout": 0.0,
             "ffn_mult": 2},
        ),
        "small": (
            TransformerConfig,
            {"d_model": 128, "heads": 4, "layers": 4, "max_len": 1024, "dropout": 0.1,
             "ffn_mult": 4},
        ),
    },
    "wavenet": {
        "debug": (
            WaveNetConfig,
            {"channels": 8, "residual_channels": 8, "skip_channels": 16, "kernel_size": 2,
             "dilations": (1, 2, 4), "stacks": 2, "dropout": 0.0},
        ),
        "small": (
            WaveNetConfig,
            {"channels": 64, "residual_channels": 64, "skip_channels": 128, "kernel_size": 2,
             "dilations": (1, 2, 4, 8, 16, 32, 64, 128), "stacks": 2, "dropout": 0.1},
        ),
    },
}


def preset_names() -> dict[str, list[str]]:
    """family -> its preset names."""
    return {family: sorted(names) for family, names in _PRESETS.items()}


def preset(
    family: str, name: str, vocab_size: int, num_genres: int, num_density_bins: int
) -> GeneratorConfig:
    """The config of preset ``name`` of ``family`` for the given label-set sizes."""
    try:
        config_cls, params = _PRESETS[family][name]
    except KeyError:
        raise ValueError(
            f"no preset {family!r}/{name!r}; known: {preset_names()}"
        ) from None
    return config_cls(
        vocab_size=vocab_size,
        num_genres=num_genres,
        num_density_bins=num_density_bins,
        **params,
    )
