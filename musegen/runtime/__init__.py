"""Fast inference paths for the generators, behind the models' own streaming interface.

``compile_streamer(model)`` returns the runtime for the model's family (see base.py for why
it is faster at batch 1), built from the model's current weights and stepped once, so numba
has compiled it before it is needed. The runtime is a snapshot: change the weights and
compile again (``stepper_for`` does so by itself).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from musegen.models import LSTMGenerator, TransformerGenerator, WaveNetGenerator
from musegen.models.base import Generator
from musegen.runtime.base import CompiledStreamer
from musegen.runtime.lstm import CompiledLSTM, CompiledLSTMState
from musegen.runtime.state import CompiledState, StreamingState
from musegen.runtime.transformer import CompiledTransformer, CompiledTransformerState
from musegen.runtime.wavenet import CompiledWaveNet, CompiledWaveNetState

__all__ = ["CompiledLSTM", "CompiledLSTMState", "CompiledState", "CompiledStreamer",
           "CompiledTransformer", "CompiledTransformerState", "CompiledWaveNet",
           "CompiledWaveNetState", "StreamingState", "compile_streamer", "stepper_for"]

_COMPILED: weakref.WeakKeyDictionary[Generator[Any], tuple[tuple[Any, ...], CompiledStreamer[Any]]]
_COMPILED = weakref.WeakKeyDictionary()
_blas_limited = False


def compile_streamer(model: Generator[Any]) -> CompiledStreamer[Any]:
    """The compiled runtime of ``model`` (an LSTM, Transformer or WaveNet generator)."""
    _limit_blas_threads()
    streamer: CompiledStreamer[Any]
    if isinstance(model, LSTMGenerator):
        streamer = CompiledLSTM(model)
    elif isinstance(model, TransformerGenerator):
        streamer = CompiledTransformer(model)
    elif isinstance(model, WaveNetGenerator):
        streamer = CompiledWaveNet(model)
    else:
        raise TypeError(f"no runtime for {type(model).__name__}")
    _warm_up(streamer)
    return streamer


def _warm_up(streamer: CompiledStreamer[Any]) -> None:
    """One step on a throwaway stream, so a compiled step is compiled (or loaded from numba's
    cache) now, while a model loads, and not on the first bar a player hears."""
    ids = np.zeros(1, dtype=np.int64)
    streamer.step_numpy(ids, ids, ids, streamer.start_stream(1))


def stepper_for(model: Generator[Any]) -> CompiledStreamer[Any]:
    """The compiled runtime of ``model``, rebuilt only when one of its parameters changed."""
    version = tuple((p.data_ptr(), p._version) for p in model.parameters())
    cached = _COMPILED.get(model)
    if cached is None or cached[0] != version:
        cached = (version, compile_streamer(model))
        _COMPILED[model] = cached
    return cached[1]


def _limit_blas_threads() -> None:
    """One BLAS thread: at these sizes a second thread costs more to wake than it saves,
    and generation must not steal the core the dispatch thread runs on."""
    global _blas_limited
    if not _blas_limited:
        threadpool_limits(limits=1, user_api="blas")
        _blas_limited = True
