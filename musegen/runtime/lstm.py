"""numpy streaming step of :class:`musegen.models.LSTMGenerator` (see runtime/base.py).

The same step tables as the torch streaming path (``_StepTables``): layer 0's input matmul is a
lookup of pre-projected embedding rows plus a per-(genre, density) row; each deeper layer is
one GEMM over ``[h_below ; h_own]``. What changes is the cost of the small ops around them,
which at these sizes is most of a step:

* gate columns reordered to (i, f, o, g) and i, f, o pre-scaled by 1/2, so one tanh call covers
  all four gates (``sigmoid(a) = (1 + tanh(a / 2)) / 2``) and one ``+= 1`` covers i, f, o;
* the state keeps ``2 h`` (the last 1/2 is folded into every weight that reads h);
* all layers' h live in one row ``[h_0 | h_1 | ...]``, so ``[h_below ; h_own]`` is a view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musegen.models.lstm import LSTMGenerator
from musegen.runtime.base import NumpyStreamer, to_numpy, with_mean_genre

Array = np.ndarray[Any, Any]


@dataclass
class NumpyLSTMState:
    h2: Array  # [B, L * H]: 2 h of every layer, side by side
    h2_layers: list[Array]  # per layer [B, H] view of h2
    c: list[Array]  # per layer [B, H]
    gates: Array  # [B, 4H] pre-activations, order i, f, o, g
    ifo: Array  # [B, 3H] view of gates
    i: Array  # [B, H] views of gates
    f: Array
    o: Array
    g: Array
    tmp: Array  # [B, H]
    logits: Array  # [B, V]
    ones: Array  # [B, 3H]; array operands: numpy's scalar path costs more than the op
    halves: Array  # [B, H]


class NumpyLSTM(NumpyStreamer[NumpyLSTMState]):
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
        self.cond = [with_mean_genre(gate_cols(t)) for t in tables.cond]
        # weights that read h get 1/2: the state holds 2 h
        self.w_hh0 = gate_cols(tables.w_hh0_t) * 0.5  # [H, 4H]
        self.w_cat = [gate_cols(t) * 0.5 for t in tables.w_cat_t]  # per deeper layer [2H, 4H]
        self.head_w = to_numpy(model.head.weight.t()) * 0.5  # [H, V]
        self.head_b = to_numpy(model.head.bias)

    def start_stream(self, batch_size: int) -> NumpyLSTMState:
        b, hid, n = batch_size, self.hidden, self.layers
        h2 = np.zeros((b, n * hid), np.float32)
        gates = np.zeros((b, 4 * hid), np.float32)
        i, f, o, g = (gates[:, j * hid : (j + 1) * hid] for j in range(4))
        return NumpyLSTMState(
            h2=h2, h2_layers=[h2[:, k * hid : (k + 1) * hid] for k in range(n)],
            c=[np.zeros((b, hid), np.float32) for _ in range(n)],
            gates=gates, ifo=gates[:, : 3 * hid], i=i, f=f, o=o, g=g,
            tmp=np.zeros((b, hid), np.float32), logits=np.zeros((b, self.vocab_size), np.float32),
            ones=np.ones((b, 3 * hid), np.float32), halves=np.full((b, hid), 0.5, np.float32),
        )

    def step_numpy(
        self, token: Array, genre: Array, density: Array, state: NumpyLSTMState
    ) -> Array:
        gates, hid = state.gates, self.hidden
        if token.shape[0] == 1:  # integer indexing returns a view: no gather, no allocation
            tok, cond_at = int(token[0]), (int(genre[0]), int(density[0]))
        else:
            tok, cond_at = token, (genre, density)  # type: ignore[assignment]
        for k in range(self.layers):
            if k == 0:
                np.matmul(state.h2_layers[0], self.w_hh0, out=gates)
                gates += self.token_rows[tok]
            else:  # [2 h_{k-1} (this step) ; 2 h_k (last step)]: adjacent in h2
                np.matmul(state.h2[:, (k - 1) * hid : (k + 1) * hid], self.w_cat[k - 1],
                          out=gates)
            gates += self.cond[k][cond_at]
            self._activate(state, k)
        np.matmul(state.h2_layers[-1], self.head_w, out=state.logits)
        state.logits += self.head_b
        return state.logits

    @staticmethod
    def _activate(state: NumpyLSTMState, k: int) -> None:
        """Layer k's c and 2 h from the gates (i, f, o pre-scaled by 1/2)."""
        c, h2 = state.c[k], state.h2_layers[k]
        np.tanh(state.gates, out=state.gates)
        state.ifo += state.ones  # now 2 sigmoid(.) for i, f, o; tanh(.) for g
        c *= state.f
        np.multiply(state.i, state.g, out=state.tmp)
        c += state.tmp
        c *= state.halves  # c = sigmoid(f) c + sigmoid(i) g
        np.tanh(c, out=h2)
        h2 *= state.o  # 2 h = 2 sigmoid(o) tanh(c)
