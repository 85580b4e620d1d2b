"""Generator families behind one streaming interface (token ids and condition ids only).

Importing the package registers every family, so ``build_generator`` can find them.
"""

from __future__ import annotations

from musegen.models.base import (
    Generator,
    GeneratorConfig,
    StreamState,
    build_generator,
    config_from_dict,
    config_to_dict,
    family_registry,
)
from musegen.models.lstm import LSTMConfig, LSTMGenerator, LSTMState
from musegen.models.presets import preset, preset_names
from musegen.models.transformer import TransformerConfig, TransformerGenerator, TransformerState
from musegen.models.wavenet import WaveNetConfig, WaveNetGenerator, WaveNetState

__all__ = [
    "Generator",
    "GeneratorConfig",
    "LSTMConfig",
    "LSTMGenerator",
    "LSTMState",
    "StreamState",
    "TransformerConfig",
    "TransformerGenerator",
    "TransformerState",
    "WaveNetConfig",
    "WaveNetGenerator",
    "WaveNetState",
    "build_generator",
    "config_from_dict",
    "config_to_dict",
    "family_registry",
    "preset",
    "preset_names",
]
