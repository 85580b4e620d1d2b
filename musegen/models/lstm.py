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
        self._tables: _StepTables | None = None
        self._tables_version: tuple[tuple[int, int], ...] = ()

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
        self._step_tables()
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
        tables = self._tables or self._step_tables()  # built by start_stream
        gates, h = state.gates, state.h  # [B, 4H], [L, B, H]
        for k in range(self.config.layers):
            cond = tables.cond[k][genre, density]  # [B, 4H]: condition and biases, folded
            if k == 0:
                # The input matmul is a lookup: embedding rows projected once per weight set.
                torch.add(tables.token[token], cond, out=gates)
                gates.addmm_(h[0], tables.w_hh0_t)
            else:
                # [W_ih | W_hh] in one GEMM over [h_{k-1} ; h_k] (adjacent rows of h)
                below_and_own = h[k - 1 : k + 1].transpose(0, 1).reshape(h.shape[1], -1)
                torch.addmm(cond, below_and_own, tables.w_cat_t[k - 1], out=gates)
            self._activate(k, state)
        logits = F.linear(h[-1], self.head.weight, self.head.bias)  # [B, V], fresh
        return logits, state

    def _step_tables(self) -> _StepTables:
        """Per-weight-set tables for streaming, rebuilt only when a parameter changed.

        Checked when a stream starts (not per step: walking the parameters costs more than
        the step saves); change the weights mid-stream and you must start a new stream.
        """
        version = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if self._tables is None or self._tables_version != version:
            self._tables = _StepTables.build(self)
            self._tables_version = version
        return self._tables

    @staticmethod
    def _activate(k: int, state: LSTMState) -> None:
        """LSTM gate nonlinearities and state update for layer k (gate order i, f, g, o)."""
        h, c, gates = state.h[k], state.c[k], state.gates  # [B, H], [B, H], [B, 4H]
        hid = h.shape[1]
        i_f = gates[:, : 2 * hid].sigmoid_()  # [B, 2H]: input and forget gates
        g = gates[:, 2 * hid : 3 * hid].tanh_()  # [B, H]: candidate cell
        o = gates[:, 3 * hid :].sigmoid_()  # [B, H]: output gate
        c.mul_(i_f[:, hid:]).addcmul_(i_f[:, :hid], g)  # c = f * c + i * g
        torch.tanh(c, out=h).mul_(o)  # h = o * tanh(c)


@dataclass
class _StepTables:
    """What a streaming step needs, precomputed from the weights (inference only).

    Layer 0's input is embedding(token) + condition(genre, density), so W_ih0 times it is a
    sum of two table rows; deeper layers get condition(genre, density) @ W_ih^T and both biases
    as one row per (genre, density) pair. This removes one matmul and most small ops a step.
    """

    token: Tensor  # [V, 4H]: E @ W_ih0^T + b_ih0 + b_hh0
    cond: list[Tensor]  # per layer [G, D, 4H]
    w_hh0_t: Tensor  # [H, 4H]
    w_cat_t: list[Tensor]  # per deeper layer [2H, 4H]: [W_ih ; W_hh]^T

    @classmethod
    @torch.no_grad()
    def build(cls, model: LSTMGenerator) -> _StepTables:
        c = model.config
        lstms = cast("Sequence[nn.LSTM]", model.lstms)
        genres = torch.arange(c.num_genres, device=model.embed.weight.device)
        bins = torch.arange(c.num_density_bins, device=genres.device)
        g_idx, d_idx = torch.meshgrid(genres, bins, indexing="ij")  # [G, D] each
        w_ih = [cast(Tensor, m.weight_ih_l0) for m in lstms]
        w_hh = [cast(Tensor, m.weight_hh_l0) for m in lstms]
        bias = [cast(Tensor, m.bias_ih_l0) + cast(Tensor, m.bias_hh_l0) for m in lstms]
        cond_in = model.cond_in.genre(g_idx) + model.cond_in.density(d_idx)  # [G, D, E]
        # [G, D, (L-1) * H] -> [G, D, L-1, H]
        deeper = (model.cond_layers.genre(g_idx) + model.cond_layers.density(d_idx)).view(
            c.num_genres, c.num_density_bins, -1, c.hidden
        )
        cond = [cond_in @ w_ih[0].t()]
        cond += [deeper[:, :, k - 1] @ w_ih[k].t() + bias[k] for k in range(1, c.layers)]
        return cls(
            token=model.embed.weight @ w_ih[0].t() + bias[0],
            cond=[t.contiguous() for t in cond],
            w_hh0_t=w_hh[0].t().contiguous(),
            w_cat_t=[torch.cat([w_ih[k], w_hh[k]], dim=1).t().contiguous()
                     for k in range(1, c.layers)],
        )
