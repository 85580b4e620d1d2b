"""WaveNet over tokens: gated dilated causal convolutions with residual and skip paths.

Conditioning: token embedding + genre embedding + density embedding at the input, and, as in
WaveNet's global/local conditioning, every layer adds its own genre (global) + density (local,
per position) vector to its gate pre-activations (one lookup serves all layers).

Streaming: each layer keeps a ring buffer of its last ``(kernel_size - 1) * dilation`` inputs,
so a step computes only the current output column: O(layers), not O(receptive field).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musegen.models.base import (
    ConditionEmbedding,
    Generator,
    GeneratorConfig,
    StreamState,
    check_inputs,
    register_family,
)


@dataclass
class WaveNetConfig(GeneratorConfig):
    family: ClassVar[str] = "wavenet"
    channels: int = 64  # dilated-conv (gate) channels
    residual_channels: int = 64
    skip_channels: int = 128
    kernel_size: int = 2
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    stacks: int = 2
    dropout: float = 0.1

    @property
    def layer_dilations(self) -> tuple[int, ...]:
        return self.dilations * self.stacks

    @property
    def receptive_field(self) -> int:
        """How many input tokens (the current one included) a prediction can see."""
        return (self.kernel_size - 1) * sum(self.layer_dilations) + 1


@dataclass
class WaveNetState(StreamState):
    # Per layer: ring buffer [(kernel_size - 1) * dilation, B, residual_channels] of past inputs;
    # slot ``position % size`` holds the input from ``size`` steps ago (zeros before the start).
    queues: list[Tensor]
    position: int


class GatedLayer(nn.Module):
    def __init__(self, c: WaveNetConfig, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.kernel_size = c.kernel_size
        self.residual_channels = c.residual_channels
        self.skip_channels = c.skip_channels
        self.conv = nn.Conv1d(c.residual_channels, 2 * c.channels, c.kernel_size, dilation=dilation)
        # Residual and skip 1x1 convs fused into one: [R + S] outputs.
        self.out = nn.Conv1d(c.channels, c.residual_channels + c.skip_channels, 1)

    def _gate(self, gate_in: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """Gated activation, then (x + residual, skip); channels on dim 1 ([B, C] or [B, C, T])."""
        f, g = gate_in.chunk(2, dim=1)  # filter and gate halves: [B, C(, T)] each
        z = torch.tanh(f) * torch.sigmoid(g)
        if z.dim() == 3:
            rs = self.out(z)  # [B, R + S, T]
        else:  # one step: the 1x1 conv as a matmul, [R + S, C, 1] -> [R + S, C]
            rs = F.linear(z, self.out.weight.squeeze(-1), self.out.bias)  # [B, R + S]
        res, skip = rs.split([self.residual_channels, self.skip_channels], dim=1)
        return x + res, skip

    def forward(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, R, T], cond [B, 2C, T] -> (x [B, R, T], skip [B, S, T])."""
        pad = (self.kernel_size - 1) * self.dilation
        return self._gate(self.conv(F.pad(x, (pad, 0))) + cond, x)

    def step(self, x: Tensor, cond: Tensor, queue: Tensor, pos: int) -> tuple[Tensor, Tensor]:
        """x [B, R], cond [B, 2C], queue [(k-1) * d, B, R] -> (x [B, R], skip [B, S])."""
        size = queue.shape[0]
        # Tap m of the kernel sees the input (k - 1 - m) * d steps back; the last tap is x.
        taps = [queue[(pos - (self.kernel_size - 1 - m) * self.dilation) % size]
                for m in range(self.kernel_size - 1)]
        cols = torch.stack([*taps, x], dim=2)  # [B, R, k], same layout as conv.weight [2C, R, k]
        w = self.conv.weight.view(self.conv.out_channels, -1)  # [2C, R, k] -> [2C, R * k]
        assert self.conv.bias is not None
        gate_in = torch.addmm(self.conv.bias, cols.view(cols.shape[0], -1), w.t())  # [B, 2C]
        queue[pos % size] = x  # after reading: this slot held the oldest tap
        return self._gate(gate_in + cond, x)


@register_family(WaveNetConfig)
class WaveNetGenerator(Generator[WaveNetState]):
    config: WaveNetConfig

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.embed = nn.Embedding(c.vocab_size, c.residual_channels)
        self.cond_in = ConditionEmbedding(c.num_genres, c.num_density_bins, c.residual_channels)
        n = len(c.layer_dilations)
        self.cond_layers = ConditionEmbedding(c.num_genres, c.num_density_bins, n * 2 * c.channels)
        self.layers = nn.ModuleList(GatedLayer(c, d) for d in c.layer_dilations)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(c.skip_channels, c.skip_channels, 1),
            nn.ReLU(),
            nn.Conv1d(c.skip_channels, c.vocab_size, 1),
        )

    def forward(self, tokens: Tensor, genre: Tensor, density: Tensor) -> Tensor:
        check_inputs(tokens, genre, density)
        b, t = tokens.shape
        x = self.embed(tokens) + self.cond_in(genre, density)  # [B, T, R]
        x = x.transpose(1, 2)  # [B, T, R] -> [B, R, T]: conv layout
        # [B, T, L * 2C] -> [B, T, L, 2C] -> [B, L, 2C, T]
        cond = self.cond_layers(genre, density).view(b, t, len(self.layers), -1)
        cond = cond.permute(0, 2, 3, 1)
        skips: Tensor | None = None
        for i, layer in enumerate(self.layers):
            x, skip = layer(x, cond[:, i])  # [B, R, T], [B, S, T]
            skips = skip if skips is None else skips + skip
        assert skips is not None
        logits: Tensor = self.head(self.drop(skips))  # [B, V, T]
        return logits.transpose(1, 2)  # [B, V, T] -> [B, T, V]

    @torch.inference_mode()
    def start_stream(self, batch_size: int) -> WaveNetState:
        device, dtype = self._device_dtype()
        c = self.config
        queues = [
            torch.zeros((c.kernel_size - 1) * d, batch_size, c.residual_channels,
                        device=device, dtype=dtype)
            for d in c.layer_dilations
        ]
        return WaveNetState(queues=queues, position=0)

    @torch.inference_mode()
    def step(
        self, token: Tensor, genre: Tensor, density: Tensor, state: WaveNetState
    ) -> tuple[Tensor, WaveNetState]:
        b = token.shape[0]
        x = self.embed(token) + self.cond_in(genre, density)  # [B, R]
        cond = self.cond_layers(genre, density).view(b, len(self.layers), -1)  # [B, L, 2C]
        skips: Tensor | None = None
        for i, layer in enumerate(cast("Sequence[GatedLayer]", self.layers)):
            x, skip = layer.step(x, cond[:, i], state.queues[i], state.position)
            skips = skip if skips is None else skips + skip
        assert skips is not None
        state.position += 1
        return self._head_step(skips), state

    def _head_step(self, skips: Tensor) -> Tensor:
        """The 1x1-conv head on one column: skips [B, S] -> logits [B, V]."""
        h = skips
        for m in self.head:
            # a 1x1 conv on one column is a matmul: weight [out, in, 1] -> [out, in]
            h = F.linear(h, m.weight.squeeze(-1), m.bias) if isinstance(m, nn.Conv1d) else m(h)
        return h
