"""numpy streaming step of :class:`musegen.models.WaveNetGenerator` (see runtime/base.py).

Three rewrites make a layer a handful of numpy calls:

* Project on write. The conv output at step t is ``sum_m W_m x(t - (k-1-m) d)``. Instead of
  queueing raw inputs and gathering the taps every step, each input is multiplied once, when it
  arrives, by ``[W_current | W_tap0 | ...]``; the tap projections are queued, so a step reads
  ready-made ``[2C]`` rows (one GEMM per layer, no gather).
* Skips summed by one GEMM. ``sum_i z_i @ Wskip_i`` is ``[z_1 .. z_L] @ vstack(Wskip_i)``, so
  each layer writes its gate into one row and the skip matmul runs once after the stack.
* Residual biases folded into the condition rows (see ``_fold_residual_biases``).

The sigmoid half of each gate is pre-scaled by 1/2 in the weights and conditions, so one tanh
call serves both halves: ``2 tanh(f) sigmoid(g) = tanh(f) + tanh(f) tanh(g / 2)``, so the row
``[tanh(f), tanh(f) tanh(g / 2)]`` times the output weights stacked twice (and halved) is the
layer's output, with no ``1 +`` op. Ring buffers have the torch model's sizes: a step is
O(layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from musegen.models.wavenet import GatedLayer, WaveNetGenerator
from musegen.runtime.base import NumpyStreamer, condition_table, to_numpy

Array = np.ndarray[Any, Any]


@dataclass
class _LayerViews:
    """Preallocated buffers and their slices for one layer (no slicing in the step loop)."""

    queue: Array  # [(k - 1) * d, B, (k - 1) * 2C] queued tap projections
    proj: Array  # [B, k * 2C] x @ [W_current | W_tap0 | ...]
    proj_now: Array  # [B, 2C] view: the current input's contribution
    proj_taps: Array  # [B, (k - 1) * 2C] view: what later steps will read
    gate: Array  # [B, 2C] view into the state's z_all
    tanh_f: Array  # [B, C] view of gate
    tanh_g: Array  # [B, C] view of gate: tanh(g / 2), then tanh(f) tanh(g / 2)


@dataclass
class NumpyWaveNetState:
    layers: list[_LayerViews]
    position: int
    x: Array  # [B, R] the residual stream
    res: Array  # [B, R] one layer's residual output
    z_all: Array  # [B, L * 2C] every layer's gate, activated
    z_halves: tuple[Array, Array]  # [B, L, C] views of z_all: tanh(f), tanh(f) tanh(g / 2)
    z_sum: Array  # [B, L * C] their sum, 2 tanh(f) sigmoid(g): the one skip GEMM's input
    skips: Array  # [B, S]
    hidden: Array  # [B, S] the head's hidden layer
    logits: Array  # [B, V]


class NumpyWaveNet(NumpyStreamer[NumpyWaveNetState]):
    family = "wavenet"

    @torch.no_grad()
    def __init__(self, model: WaveNetGenerator) -> None:
        c = model.config
        self.vocab_size = c.vocab_size
        self.kernel_size, self.dilations = c.kernel_size, c.layer_dilations
        self.channels, self.residual, self.skip = c.channels, c.residual_channels, c.skip_channels
        n_layers, ch, r = len(c.layer_dilations), c.channels, c.residual_channels
        half = np.ones(2 * ch, dtype=np.float32)
        half[ch:] = 0.5  # sigmoid half of the gate pre-scaled for the tanh identity
        self.token_rows = to_numpy(model.embed.weight)  # [V, R]
        self.cond_in = condition_table(model.cond_in)  # [G + 1, D, R]: the last genre is the mean
        layers = cast("Sequence[GatedLayer]", model.layers)
        conv_bias = to_numpy(torch.stack([cast(Tensor, layer.conv.bias) for layer in layers]))
        cond = condition_table(model.cond_layers)
        # [G, D, L * 2C] -> [G, D, L, 2C], plus each layer's conv bias, gate half scaled
        self.cond_layers = np.ascontiguousarray(
            (cond.reshape(*cond.shape[:2], n_layers, -1) + conv_bias) * half)
        # conv.weight [2C, R, k] -> taps [k, R, 2C]; columns [W_current | W_tap0 | ...]
        self.conv_w = []
        for layer in layers:
            taps = to_numpy(layer.conv.weight.permute(2, 0, 1).transpose(1, 2)) * half
            order = [c.kernel_size - 1, *range(c.kernel_size - 1)]
            self.conv_w.append(np.ascontiguousarray(np.concatenate([taps[m] for m in order], 1)))
        # out.weight [R + S, C, 1] -> [C, R + S]; times 1/2 from the sigmoid identity
        out_w = [to_numpy(layer.out.weight.squeeze(-1).t()) * 0.5 for layer in layers]
        out_b = [to_numpy(cast(Tensor, layer.out.bias)) for layer in layers]
        # 2 tanh(f) sigmoid(g) = tanh(f) + tanh(f) tanh(g / 2): the layer's activated gate row
        # [tanh(f), tanh(f) tanh(g / 2)] times the weights stacked twice, [2C, R] and [2C, S]
        self.res_w = [np.ascontiguousarray(np.vstack([w[:, :r]] * 2)) for w in out_w]
        self._fold_residual_biases([b[:r] for b in out_b])
        self.skip_w = np.ascontiguousarray(np.concatenate([w[:, r:] for w in out_w]))  # [L*C, S]
        self.skip_b = np.sum([b[r:] for b in out_b], axis=0).astype(np.float32)
        head1, head2 = cast(nn.Conv1d, model.head[1]), cast(nn.Conv1d, model.head[3])
        self.head_w1 = to_numpy(head1.weight.squeeze(-1).t())  # [S, S]
        self.head_b1 = to_numpy(cast(Tensor, head1.bias))
        self.head_w2 = to_numpy(head2.weight.squeeze(-1).t())  # [S, V]
        self.head_b2 = to_numpy(cast(Tensor, head2.bias))
        assert ch * n_layers == self.skip_w.shape[0]

    def _fold_residual_biases(self, res_b: list[Array]) -> None:
        """Keep the residual stream without its biases: x' = x - B_i, B_i = sum of the biases
        of the layers below i. Layer i's conv then misses B_i @ W, which is constant: added
        to the layer's condition rows, except for the padding before the stream starts (true
        input 0, not B_i), whose queued tap projections start at -B_i @ W_tap instead of 0.
        """
        two_c, below = 2 * self.channels, np.zeros_like(res_b[0])
        self.queue_start = []  # per layer [(k - 1) * 2C]
        for i, w in enumerate(self.conv_w):
            per_block = (below @ w).reshape(-1, two_c)  # [k, 2C]: current, then each tap
            self.cond_layers[:, :, i] += per_block.sum(axis=0)
            self.queue_start.append(-per_block[1:].reshape(-1))
            below = below + res_b[i]

    def start_stream(self, batch_size: int) -> NumpyWaveNetState:
        b, ch, k = batch_size, self.channels, self.kernel_size

        def zeros(*shape: int) -> Array:
            return np.zeros(shape, dtype=np.float32)

        n_layers = len(self.dilations)
        z_all, z_sum = zeros(b, n_layers * 2 * ch), zeros(b, n_layers * ch)
        z4 = z_all.reshape(b, n_layers, 2, ch)  # [B, L * 2C] -> [B, L, 2, C]: halves per layer
        layers = []
        for i, dilation in enumerate(self.dilations):
            proj, gate = zeros(b, k * 2 * ch), z_all[:, i * 2 * ch : (i + 1) * 2 * ch]
            layers.append(_LayerViews(
                queue=np.tile(self.queue_start[i], ((k - 1) * dilation, b, 1)), proj=proj,
                proj_now=proj[:, : 2 * ch], proj_taps=proj[:, 2 * ch :], gate=gate,
                tanh_f=gate[:, :ch], tanh_g=gate[:, ch:],
            ))
        return NumpyWaveNetState(
            layers=layers, position=0, x=zeros(b, self.residual), res=zeros(b, self.residual),
            z_all=z_all, z_sum=z_sum, z_halves=(z4[:, :, 0], z4[:, :, 1]),
            skips=zeros(b, self.skip), hidden=zeros(b, self.skip),
            logits=zeros(b, self.vocab_size),
        )

    def step_numpy(
        self, token: Array, genre: Array, density: Array, state: NumpyWaveNetState
    ) -> Array:
        pos, x, res = state.position, state.x, state.res
        if token.shape[0] == 1:  # integer indexing returns views: no gather, no allocation
            tok, g, d = int(token[0]), int(genre[0]), int(density[0])
            np.add(self.token_rows[tok], self.cond_in[g, d], out=x)  # [B, R]
            cond = self.cond_layers[g, d]  # [L, 2C], each row broadcast over B
        else:
            np.add(self.token_rows[token], self.cond_in[genre, density], out=x)
            cond = self.cond_layers[genre, density].transpose(1, 0, 2)  # [B, L, 2C] -> [L, B, 2C]
        one_tap = self.kernel_size == 2
        for i, lv in enumerate(state.layers):
            np.matmul(x, self.conv_w[i], out=lv.proj)  # [B, k * 2C]
            slot = pos % lv.queue.shape[0]
            if one_tap:  # the tap d steps back: the slot about to be overwritten
                np.add(lv.proj_now, lv.queue[slot], out=lv.gate)
            else:
                self._add_taps(lv, pos, self.dilations[i])
            lv.gate += cond[i]
            lv.queue[slot] = lv.proj_taps  # after reading: this slot held the oldest
            np.tanh(lv.gate, out=lv.gate)
            lv.tanh_g *= lv.tanh_f  # the gate row is now [tanh(f), tanh(f) tanh(g / 2)]
            np.matmul(lv.gate, self.res_w[i], out=res)
            x += res  # no bias: see _fold_residual_biases
        state.position = pos + 1
        return self._head(state)

    def _add_taps(self, lv: _LayerViews, pos: int, dilation: int) -> None:
        """gate = the current input's projection + the queued projections of the past taps."""
        k, two_c = self.kernel_size, 2 * self.channels
        np.copyto(lv.gate, lv.proj_now)
        size = lv.queue.shape[0]
        for m in range(k - 1):  # tap m was projected (k - 1 - m) * d steps ago
            lv.gate += lv.queue[(pos - (k - 1 - m) * dilation) % size, :,
                                m * two_c : (m + 1) * two_c]

    def _head(self, state: NumpyWaveNetState) -> Array:
        """Skips of all layers in one GEMM, then the 1x1-conv head: -> logits [B, V]."""
        skips, hidden = state.skips, state.hidden
        # the two halves summed once for all layers: a GEMM over [L * C], not [L * 2C]
        np.add(*state.z_halves, out=state.z_sum.reshape(state.z_halves[0].shape))
        np.matmul(state.z_sum, self.skip_w, out=skips)
        skips += self.skip_b
        np.maximum(skips, 0.0, out=skips)
        np.matmul(skips, self.head_w1, out=hidden)
        hidden += self.head_b1
        np.maximum(hidden, 0.0, out=hidden)
        np.matmul(hidden, self.head_w2, out=state.logits)
        state.logits += self.head_b2
        return state.logits
