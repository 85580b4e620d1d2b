"""Stacked LSTM generator: nn.LSTM for training, a hand-written fused cell for streaming.

Conditioning: token embedding + genre embedding + density embedding at the input; every
deeper layer also gets its own genre + density vector added to its input (cheap: a lookup and
an add) so the controls reach the top of the stack directly.
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
class LSTMConfig(GeneratorConfig):
    family: ClassVar[str] = "lstm"
    d_embed: int = 128
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1


@dataclass
class LSTMState(StreamState):
    h: Tensor  # [layers, B, hidden]
    c: Tensor  # [layers, B, hidden]
    gates: Tensor  # [B, 4 * hidden] scratch for the fused gate pre-activations
    x: Tensor  # [B, hidden] scratch: the input of the next layer


@register_family(LSTMConfig)
class LSTMGenerator(Generator[LSTMState]):
    config: LSTMConfig

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_embed)
        self.cond_in = ConditionEmbedding(c.num_genres, c.num_density_bins, c.d_embed)
        # One vector per deeper layer, packed in one table: [.., (layers - 1) * hidden].
        self.cond_layers = ConditionEmbedding(
            c.num_genres, c.num_density_bins, max(c.layers - 1, 1) * c.hidden
        )
        # Single-layer LSTMs (not num_layers=k) so a condition can be added between layers.
        self.lstms = nn.ModuleList(
            nn.LSTM(c.d_embed if k == 0 else c.hidden, c.hidden, batch_first=True)
            for k in range(c.layers)
        )
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.vocab_size)

    def forward(self, tokens: Tensor, genre: Tensor, density: Tensor) -> Tensor:
        check_inputs(tokens, genre, density)
        b, t = tokens.shape
        x = self.embed(tokens) + self.cond_in(genre, density)  # [B, T, d_embed]
        # [B, T, (L-1) * H] -> [B, T, L-1, H]
        cond = self.cond_layers(genre, density).view(b, t, -1, self.config.hidden)
        for k, lstm in enumerate(self.lstms):
            if k > 0:
                x = x + cond[:, :, k - 1]
            x, _ = lstm(self.drop(x) if k > 0 else x)  # [B, T, H]
        logits: Tensor = self.head(self.drop(x))  # [B, T, V]
        return logits

    @torch.inference_mode()
    def start_stream(self, batch_size: int) -> LSTMState:
        device, dtype = self._device_dtype()
        h = self.config.hidden

        def zeros(*shape: int) -> Tensor:
            return torch.zeros(*shape, device=device, dtype=dtype)

        return LSTMState(
            h=zeros(self.config.layers, batch_size, h),
            c=zeros(self.config.layers, batch_size, h),
            gates=zeros(batch_size, 4 * h),
            x=zeros(batch_size, h),
        )

    @torch.inference_mode()
    def step(
        self, token: Tensor, genre: Tensor, density: Tensor, state: LSTMState
    ) -> tuple[Tensor, LSTMState]:
        b = token.shape[0]
        x = self.embed(token) + self.cond_in(genre, density)  # [B, d_embed]
        # [B, (L-1) * H] -> [B, L-1, H]
        cond = self.cond_layers(genre, density).view(b, -1, self.config.hidden)
        for k, lstm in enumerate(cast("Sequence[nn.LSTM]", self.lstms)):
            if k > 0:
                # The previous layer's h plus this layer's condition, into the scratch buffer.
                x = torch.add(state.h[k - 1], cond[:, k - 1], out=state.x)
            self._cell(k, lstm, x, state)
        logits = F.linear(state.h[-1], self.head.weight, self.head.bias)  # [B, V], fresh
        return logits, state

    @staticmethod
    def _cell(k: int, lstm: nn.LSTM, x: Tensor, state: LSTMState) -> None:
        """One LSTM cell step on nn.LSTM's own weights (gate order i, f, g, o), in place."""
        h, c, gates = state.h[k], state.c[k], state.gates  # [B, H], [B, H], [B, 4H]
        hid = h.shape[1]
        w_ih, w_hh = cast(Tensor, lstm.weight_ih_l0), cast(Tensor, lstm.weight_hh_l0)
        b_ih, b_hh = cast(Tensor, lstm.bias_ih_l0), cast(Tensor, lstm.bias_hh_l0)
        # gates = x W_ih^T + b_ih + h W_hh^T + b_hh, two fused GEMMs into the scratch buffer
        torch.addmm(b_ih, x, w_ih.t(), out=gates)
        gates.addmm_(h, w_hh.t()).add_(b_hh)
        i_f = gates[:, : 2 * hid].sigmoid_()  # [B, 2H]: input and forget gates
        g = gates[:, 2 * hid : 3 * hid].tanh_()  # [B, H]: candidate cell
        o = gates[:, 3 * hid :].sigmoid_()  # [B, H]: output gate
        c.mul_(i_f[:, hid:]).addcmul_(i_f[:, :hid], g)  # c = f * c + i * g
        torch.tanh(c, out=h).mul_(o)  # h = o * tanh(c)
