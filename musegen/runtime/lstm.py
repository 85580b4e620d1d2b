"""Streaming step of :class:`musegen.models.LSTMGenerator` (see runtime/base.py): one compiled
call per token (``lstm_step`` in runtime/kernels.py) over tables folded here.

The same step tables as the torch streaming path (``_StepTables``): layer 0's input matmul is a
lookup of pre-projected embedding rows plus a per-(genre, density) row; each deeper layer is
one product over ``[h_below ; h_own]``. Folded so the small ops around them stay few:

* gate columns reordered to (i, f, o, g) and i, f, o pre-scaled by 1/2, so one tanh pass covers
  all four gates (``sigmoid(a) = (1 + tanh(a / 2)) / 2``);
* the state keeps ``2 h`` (the last 1/2 is folded into every weight that reads h);
* all layers' h live in one row ``[h_0 | h_1 | ...]``, so ``[h_below ; h_own]`` is contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musegen.models.lstm import LSTMGenerator
from musegen.runtime.base import CompiledStreamer, to_numpy, with_mean_genre
from musegen.runtime.kernels import lstm_step
from musegen.runtime.state import CompiledState

Array = np.ndarray[Any, Any]


@dataclass
class CompiledLSTMState(CompiledState):
    h2: Array  # [B, L * H]: 2 h of every layer, side by side
    c: Array  # [L, B, H]
    logits: Array  # [B, V]
    gates: Array  # [4H] scratch, reused per stream: pre-activations, order i, f, o, g
    tanh_c: Array  # [H]
    tmp: Array  # [4H]
    exp_bits: Array  # [4H] int32 (runtime/kernels.py)


class CompiledLSTM(CompiledStreamer[CompiledLSTMState]):
    family = "lstm"

    @torch.no_grad()
    def __init__(self, model: LSTMGenerator) -> None:
        c = model.config
        self.vocab_size, self.layers, self.hidden = c.vocab_size, c.layers, c.hidden
        tables = model._step_tables()
        hid = c.hidden
        # torch's gate order (i, f, g, o) -> (i, f, o, g); i, f, o halved for the tanh identity
        order = np.r_[0 : 2 * hid, 3 * hid : 4 * hid, 2 * hid : 3 * hid]
        scale = np.full(4 * hid, 0.5, dtype=np.float32)
        scale[3 * hid :] = 1.0

        def gate_cols(t: torch.Tensor) -> Array:
            return np.ascontiguousarray(to_numpy(t)[..., order] * scale)

        self.token_rows = gate_cols(tables.token)  # [V, 4H]
        # per layer [G + 1, D, 4H]: the last genre is the mean
        self.cond = np.stack([with_mean_genre(gate_cols(t)) for t in tables.cond])
        # weights that read h get 1/2: the state holds 2 h
        self.w_hh0 = gate_cols(tables.w_hh0_t) * 0.5  # [H, 4H]
        # [L - 1, 2H, 4H], one per deeper layer (an empty stack for a one-layer LSTM)
        self.w_cat = np.zeros((c.layers - 1, 2 * hid, 4 * hid), np.float32)
        for k, t in enumerate(tables.w_cat_t):
            self.w_cat[k] = gate_cols(t) * 0.5
        self.head_w = to_numpy(model.head.weight.t()) * 0.5  # [H, V]
        self.head_b = to_numpy(model.head.bias)

    def start_stream(self, batch_size: int) -> CompiledLSTMState:
        b, hid, n = batch_size, self.hidden, self.layers
        return CompiledLSTMState(
            h2=np.zeros((b, n * hid), np.float32), c=np.zeros((n, b, hid), np.float32),
            logits=np.zeros((b, self.vocab_size), np.float32),
            gates=np.zeros(4 * hid, np.float32), tanh_c=np.zeros(hid, np.float32),
            tmp=np.zeros(4 * hid, np.float32), exp_bits=np.zeros(4 * hid, np.int32),
        )

    def step_numpy(
        self, token: Array, genre: Array, density: Array, state: CompiledLSTMState
    ) -> Array:
        s = state
        lstm_step(token, genre, density, self.token_rows, self.cond, self.w_hh0, self.w_cat,
                  self.head_w, self.head_b, s.h2, s.c, s.gates, s.tanh_c, s.tmp, s.exp_bits,
                  s.exp_bits.view(np.float32), s.logits)
        return s.logits
