"""Streaming step of :class:`musegen.models.WaveNetGenerator` (see runtime/base.py): one
compiled call per token (``wavenet_step`` in runtime/kernels.py) over tables folded here.

Three rewrites keep a layer to two products and a few vector ops:

* Project on write. The conv output at step t is ``sum_m W_m x(t - (k-1-m) d)``. Instead of
  queueing raw inputs and gathering the taps every step, each input is multiplied once, when it
  arrives, by ``[W_current | W_tap0 | ...]``; the tap projections are queued, so a step reads
  ready-made ``[2C]`` rows (one product per layer, no gather).
* Skips summed by one product. ``sum_i z_i @ Wskip_i`` is ``[z_1 .. z_L] @ vstack(Wskip_i)``,
  so each layer writes its gate into one row and the skip product runs once after the stack.
* Residual biases folded into the condition rows (see ``_fold_residual_biases``).

The sigmoid half of each gate is pre-scaled by 1/2 in the weights and conditions, so one tanh
pass serves both halves: ``2 tanh(f) sigmoid(g) = tanh(f) + tanh(f) tanh(g / 2)``, so the row
``[tanh(f), tanh(f) tanh(g / 2)]`` times the output weights stacked twice (and halved) is the
layer's output, with no ``1 +`` op. Ring buffers have the torch model's sizes: a step is
O(layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from musegen.models.wavenet import GatedLayer, WaveNetGenerator
from musegen.runtime.base import CompiledStreamer, condition_table, to_numpy
from musegen.runtime.kernels import wavenet_step
from musegen.runtime.state import SHARED, CompiledState

Array = np.ndarray[Any, Any]


@dataclass
class CompiledWaveNetState(CompiledState):
    position: int
    queue: Array  # [sum_i (k - 1) d_i, B, (k - 1) 2C] every layer's queued tap projections
    logits: Array  # [B, V]
    x: Array  # [R] scratch, reused per stream: the residual stream
    proj: Array  # [k 2C] x @ [W_current | W_tap0 | ...]
    gate: Array  # [2C]
    tmp: Array  # [2C]
    exp_bits: Array  # [2C] int32 (runtime/kernels.py)
    z_sum: Array  # [L C] every layer's 2 tanh(f) sigmoid(g): the skip product's input
    skips: Array  # [S]
    hidden: Array  # [S] the head's hidden layer
    # what ``queue`` starts at (its padding's projections, see _fold_residual_biases): read only
    queue_start: Array = field(metadata=SHARED)

    def reset(self) -> None:
        super().reset()
        self.queue[...] = self.queue_start


class CompiledWaveNet(CompiledStreamer[CompiledWaveNetState]):
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
        conv_w = []
        for layer in layers:
            taps = to_numpy(layer.conv.weight.permute(2, 0, 1).transpose(1, 2)) * half
            order = [c.kernel_size - 1, *range(c.kernel_size - 1)]
            conv_w.append(np.concatenate([taps[m] for m in order], 1))
        self.conv_w = np.stack(conv_w)  # [L, R, k 2C]
        # out.weight [R + S, C, 1] -> [C, R + S]; times 1/2 from the sigmoid identity
        out_w = [to_numpy(layer.out.weight.squeeze(-1).t()) * 0.5 for layer in layers]
        out_b = [to_numpy(cast(Tensor, layer.out.bias)) for layer in layers]
        # 2 tanh(f) sigmoid(g) = tanh(f) + tanh(f) tanh(g / 2): the layer's activated gate row
        # [tanh(f), tanh(f) tanh(g / 2)] times the weights stacked twice, [2C, R] and [2C, S]
        self.res_w = np.stack([np.vstack([w[:, :r]] * 2) for w in out_w])  # [L, 2C, R]
        self._fold_residual_biases([b[:r] for b in out_b])
        self.skip_w = np.ascontiguousarray(np.concatenate([w[:, r:] for w in out_w]))  # [L*C, S]
        self.skip_b = np.sum([b[r:] for b in out_b], axis=0).astype(np.float32)
        head1, head2 = cast(nn.Conv1d, model.head[1]), cast(nn.Conv1d, model.head[3])
        self.head_w1 = to_numpy(head1.weight.squeeze(-1).t())  # [S, S]
        self.head_b1 = to_numpy(cast(Tensor, head1.bias))
        self.head_w2 = to_numpy(head2.weight.squeeze(-1).t())  # [S, V]
        self.head_b2 = to_numpy(cast(Tensor, head2.bias))
        assert ch * n_layers == self.skip_w.shape[0]
        self.dilation_table = np.array(self.dilations, dtype=np.int64)
        lengths = [(c.kernel_size - 1) * d for d in self.dilations]
        self.queue_at = np.cumsum([0, *lengths[:-1]]).astype(np.int64)  # each layer's first row

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

    def start_stream(self, batch_size: int) -> CompiledWaveNetState:
        b, two_c = batch_size, 2 * self.channels

        def zeros(*shape: int) -> Array:
            return np.zeros(shape, dtype=np.float32)

        # each layer's rows start at its padding's projection (see _fold_residual_biases)
        queue_start = np.concatenate([np.tile(start, ((self.kernel_size - 1) * d, b, 1))
                                      for start, d in zip(self.queue_start, self.dilations,
                                                          strict=True)])
        queue_start.flags.writeable = False
        return CompiledWaveNetState(
            position=0, queue=queue_start.copy(), queue_start=queue_start,
            logits=zeros(b, self.vocab_size), x=zeros(self.residual),
            proj=zeros(self.kernel_size * two_c), gate=zeros(two_c), tmp=zeros(two_c),
            exp_bits=np.zeros(two_c, np.int32), z_sum=zeros(len(self.dilations) * self.channels),
            skips=zeros(self.skip), hidden=zeros(self.skip),
        )

    def step_numpy(
        self, token: Array, genre: Array, density: Array, state: CompiledWaveNetState
    ) -> Array:
        s = state
        wavenet_step(
            token, genre, density, s.position, self.token_rows, self.cond_in, self.cond_layers,
            self.conv_w, self.res_w, self.skip_w, self.skip_b, self.head_w1, self.head_b1,
            self.head_w2, self.head_b2, self.dilation_table, self.queue_at,
            s.queue, s.x, s.proj, s.gate, s.z_sum, s.skips, s.hidden, s.tmp, s.exp_bits,
            s.exp_bits.view(np.float32), s.logits,
        )
        s.position += 1
        return s.logits
