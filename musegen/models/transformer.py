"""Decoder-only pre-norm Transformer with rotary positions and a preallocated KV cache.

Conditioning: token embedding + genre embedding + density embedding at the input; before
every block its own genre + density vector is added to the residual stream (one lookup for all
layers), so the controls are re-injected at every depth.
"""

from __future__ import annotations

import math
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
class TransformerConfig(GeneratorConfig):
    family: ClassVar[str] = "transformer"
    d_model: int = 128
    heads: int = 4
    layers: int = 4
    max_len: int = 1024
    dropout: float = 0.1
    ffn_mult: int = 4
    rope_base: float = 10000.0


@dataclass
class TransformerState(StreamState):
    kv: Tensor  # [layers, 2, B, heads, max_len, head_dim]
    position: int  # number of tokens already in the cache


def rope_tables(max_len: int, head_dim: int, base: float) -> tuple[Tensor, Tensor]:
    """cos, sin [max_len, head_dim / 2] for the rotate-half RoPE convention."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x [B, H, T, hd], cos/sin [T, hd/2] -> x rotated pairwise (i, i + hd/2) by position."""
    x1, x2 = x.chunk(2, dim=-1)  # [B, H, T, hd/2] each
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Block(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.dropout = c.dropout
        self.scale = 1.0 / math.sqrt(c.d_model // c.heads)
        self.ln1 = nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(c.d_model, c.ffn_mult * c.d_model),
            nn.GELU(),
            nn.Linear(c.ffn_mult * c.d_model, c.d_model),
        )
        self.drop = nn.Dropout(c.dropout)

    def _qkv(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x [B, T, D] -> q, k, v [B, H, T, hd] with RoPE applied to q and k."""
        b, t, d = x.shape
        # [B, T, 3D] -> [B, T, 3, H, hd] -> [3, B, H, T, hd]
        qkv = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _finish(self, x: Tensor, att: Tensor) -> Tensor:
        """att [B, H, T, hd] -> residual updates of attention and MLP on x [B, T, D]."""
        b, _, t, _ = att.shape
        att = att.transpose(1, 2).reshape(b, t, -1)  # [B, H, T, hd] -> [B, T, D]
        x = x + self.drop(self.proj(att))
        out: Tensor = x + self.drop(self.mlp(self.ln2(x)))
        return out

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """x [B, T, D] -> [B, T, D], causal."""
        q, k, v = self._qkv(x, cos, sin)
        p = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self._finish(x, att)

    def step(self, x: Tensor, cos: Tensor, sin: Tensor, kv: Tensor, pos: int) -> Tensor:
        """x [B, 1, D] at position ``pos``; kv [2, B, H, max_len, hd] is written at ``pos``."""
        q, k, v = self._qkv(x, cos, sin)  # [B, H, 1, hd] each
        kv[0, :, :, pos : pos + 1] = k
        kv[1, :, :, pos : pos + 1] = v
        # One query over the cached past [0..pos]: no mask needed. Plain matmuls, because
        # the CPU SDPA kernel is built for blocks of queries and costs ~10x more for one.
        keys, values = kv[0, :, :, : pos + 1], kv[1, :, :, : pos + 1]  # [B, H, pos+1, hd]
        scores = torch.matmul(q, keys.transpose(-1, -2)) * self.scale  # [B, H, 1, pos+1]
        att = torch.matmul(scores.softmax(dim=-1), values)  # [B, H, 1, hd]
        return self._finish(x, att)


@register_family(TransformerConfig)
class TransformerGenerator(Generator[TransformerState]):
    config: TransformerConfig
    rope_cos: Tensor
    rope_sin: Tensor

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        if c.d_model % c.heads or (c.d_model // c.heads) % 2:
            raise ValueError("d_model / heads must be an even integer (RoPE rotates pairs)")
        self.config = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.cond_in = ConditionEmbedding(c.num_genres, c.num_density_bins, c.d_model)
        self.cond_layers = ConditionEmbedding(
            c.num_genres, c.num_density_bins, c.layers * c.d_model
        )
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size)
        cos, sin = rope_tables(c.max_len, c.d_model // c.heads, c.rope_base)
        # Derived from the config: not saved with the weights.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                # GPT-2: scale residual projections by depth so the stream's variance is stable
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * c.layers))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, tokens: Tensor, genre: Tensor, density: Tensor) -> Tensor:
        check_inputs(tokens, genre, density)
        b, t = tokens.shape
        if t > self.config.max_len:
            raise ValueError(f"sequence of {t} tokens exceeds max_len={self.config.max_len}")
        x = self.drop(self.embed(tokens) + self.cond_in(genre, density))  # [B, T, D]
        # [B, T, L * D] -> [B, T, L, D]
        cond = self.cond_layers(genre, density).view(b, t, self.config.layers, -1)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        for i, block in enumerate(self.blocks):
            x = block(x + cond[:, :, i], cos, sin)
        logits: Tensor = self.head(self.ln_f(x))  # [B, T, V]
        return logits

    @torch.inference_mode()
    def start_stream(self, batch_size: int) -> TransformerState:
        device, dtype = self._device_dtype()
        c = self.config
        shape = (c.layers, 2, batch_size, c.heads, c.max_len, c.d_model // c.heads)
        return TransformerState(kv=torch.zeros(shape, device=device, dtype=dtype), position=0)

    @torch.inference_mode()
    def step(
        self, token: Tensor, genre: Tensor, density: Tensor, state: TransformerState
    ) -> tuple[Tensor, TransformerState]:
        pos = state.position
        if pos >= self.config.max_len:
            raise ValueError(
                f"stream is full: max_len={self.config.max_len} tokens; start a new stream "
                "(or re-prime it with the most recent tokens)"
            )
        b = token.shape[0]
        x = (self.embed(token) + self.cond_in(genre, density)).unsqueeze(1)  # [B, 1, D]
        # [B, L * D] -> [B, 1, L, D]
        cond = self.cond_layers(genre, density).view(b, 1, self.config.layers, -1)
        cos, sin = self.rope_cos[pos : pos + 1], self.rope_sin[pos : pos + 1]
        for i, block in enumerate(cast("Sequence[Block]", self.blocks)):
            x = block.step(x + cond[:, :, i], cos, sin, state.kv[i], pos)
        state.position = pos + 1
        logits: Tensor = self.head(self.ln_f(x[:, 0]))  # [B, V]
        return logits, state
