"""Streaming step of :class:`musegen.models.TransformerGenerator` (see runtime/base.py).

The step is one compiled call (runtime/kernels.py); prefill, a block of rows at
once, is numpy GEMMs. Both use weights folded at load time:

* LayerNorm gains and biases go into the next linear layer's weights and bias, so a norm is
  centre and scale only;
* RoPE becomes ``q cos + swap(q) sin``: the swapped, sign-flipped copy of q and k comes out of
  the same GEMM as q, k, v (five column blocks), and the 1/sqrt(head_dim) attention scale is
  folded into q's columns;
* keys are cached transposed, ``[B, H, head_dim, max_len]``, so a query's scores run along
  contiguous rows;
* GELU is the exact erf form, as ``nn.GELU()``; its factor 1/2 is folded into the MLP's
  output weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from musegen.models.transformer import Block, TransformerGenerator, rope_tables
from musegen.runtime.base import CompiledStreamer, condition_table, to_numpy
from musegen.runtime.kernels import transformer_step
from musegen.runtime.state import CompiledState

Array = np.ndarray[Any, Any]


@dataclass
class _BlockWeights:
    qkv_w: Array  # [D, 5D]: q, k, v, swap(q), swap(k); ln1 and the q scale folded in
    qkv_b: Array  # [5D]
    proj_w: Array  # [D, D]
    proj_b: Array
    fc_w: Array  # [D, F]; ln2 folded in
    fc_b: Array
    out_w: Array  # [F, D]
    out_b: Array


@dataclass
class CompiledTransformerState(CompiledState):
    kt: Array  # [L, B, H, hd, max_len] keys, transposed
    v: Array  # [L, B, H, max_len, hd]
    position: int
    x: Array  # [B, D] residual stream
    logits: Array  # [B, V]
    xn: Array  # [D] scratch rows, reused per stream: normalised x, then each sublayer's output
    qkv: Array  # [5D]
    rope: Array  # [2D] rotated q and k
    att: Array  # [D] attention output, heads side by side
    hid: Array  # [F]
    scores: Array  # [max(max_len, F)] attention scores, then GELU scratch
    exp_bits: Array  # [max(max_len, F)] int32: exp's 2^i as float bits (runtime/kernels.py)


class CompiledTransformer(CompiledStreamer[CompiledTransformerState]):
    family = "transformer"

    @torch.no_grad()
    def __init__(self, model: TransformerGenerator) -> None:
        c = model.config
        self.vocab_size, self.layers, self.heads = c.vocab_size, c.layers, c.heads
        self.d_model, self.max_len, self.head_dim = c.d_model, c.max_len, c.d_model // c.heads
        self.ffn = c.ffn_mult * c.d_model
        self.eps = np.array([b.ln1.eps for b in cast("Sequence[Block]", model.blocks)],
                            dtype=np.float32)
        cos, sin = rope_tables(c.max_len, self.head_dim, c.rope_base)  # [T, hd/2]
        # per position, [cos, cos] and [sin, sin] per head, for q and k side by side: [T, 2D]
        self.cos = np.tile(to_numpy(cos), 4 * c.heads)
        self.sin = np.tile(to_numpy(sin), 4 * c.heads)
        self.token_rows = to_numpy(model.embed.weight)
        self.cond_in = condition_table(model.cond_in)  # [G + 1, D, D]: the last genre is the mean
        cond = condition_table(model.cond_layers)
        self.cond_layers = np.ascontiguousarray(cond.reshape(*cond.shape[:2], c.layers, -1))
        folded = [self._fold(b) for b in cast("Sequence[Block]", model.blocks)]
        # one [L, ...] array per weight for the kernel; per-layer views of it for prefill
        self.stacked = _BlockWeights(*(np.stack(layer_arrays)
                                       for layer_arrays in zip(*map(_arrays, folded), strict=True)))
        self.blocks = [_BlockWeights(*(a[i] for a in _arrays(self.stacked)))
                       for i in range(c.layers)]
        self.final_eps = model.ln_f.eps
        self.head_w, self.head_b = _fold_norm(model.ln_f, model.head.weight, model.head.bias)

    def _fold(self, block: Block) -> _BlockWeights:
        d, hd = self.d_model, self.head_dim
        w, b = _fold_norm(block.ln1, block.qkv.weight, block.qkv.bias)  # [D, 3D], [3D]
        scale = np.ones(3 * d, dtype=np.float32)
        scale[:d] = block.scale
        w, b = w * scale, b * scale
        # swap(x) per head: [x1, x2] -> [-x2, x1], so rope(x) = x cos + swap(x) sin
        swap = np.arange(2 * d).reshape(-1, 2, hd // 2)[:, ::-1].reshape(-1)
        sign = np.tile(np.r_[-np.ones(hd // 2), np.ones(hd // 2)], 2 * self.heads)
        w = np.concatenate([w, w[:, swap] * sign], axis=1).astype(np.float32)
        b = np.concatenate([b, b[swap] * sign]).astype(np.float32)
        fc, out = cast(nn.Linear, block.mlp[0]), cast(nn.Linear, block.mlp[2])
        fc_w, fc_b = _fold_norm(block.ln2, fc.weight, fc.bias)
        return _BlockWeights(
            qkv_w=np.ascontiguousarray(w), qkv_b=b,
            proj_w=to_numpy(block.proj.weight.t()), proj_b=to_numpy(block.proj.bias),
            fc_w=fc_w, fc_b=fc_b,
            out_w=to_numpy(out.weight.t()) * 0.5, out_b=to_numpy(out.bias),
        )

    def start_stream(self, batch_size: int) -> CompiledTransformerState:
        b, d, h, hd, t = batch_size, self.d_model, self.heads, self.head_dim, self.max_len

        def zeros(*shape: int) -> Array:
            return np.zeros(shape, dtype=np.float32)

        return CompiledTransformerState(
            kt=zeros(self.layers, b, h, hd, t), v=zeros(self.layers, b, h, t, hd), position=0,
            x=zeros(b, d), logits=zeros(b, self.vocab_size), xn=zeros(d), qkv=zeros(5 * d),
            rope=zeros(2 * d), att=zeros(d), hid=zeros(self.ffn), scores=zeros(max(t, self.ffn)),
            exp_bits=np.zeros(max(t, self.ffn), dtype=np.int32),
        )

    def step_numpy(
        self, token: Array, genre: Array, density: Array, state: CompiledTransformerState
    ) -> Array:
        pos = state.position
        if pos >= self.max_len:
            raise ValueError(
                f"stream is full: max_len={self.max_len} tokens; start a new stream "
                "(or re-prime it with the most recent tokens)"
            )
        w, s = self.stacked, state
        transformer_step(
            token, genre, density, pos, self.token_rows, self.cond_in, self.cond_layers,
            w.qkv_w, w.qkv_b, w.proj_w, w.proj_b, w.fc_w, w.fc_b, w.out_w, w.out_b, self.eps,
            self.cos, self.sin, self.head_w, self.head_b, self.final_eps,
            s.kt, s.v, s.x, s.xn, s.qkv, s.rope, s.att, s.hid, s.scores,
            s.exp_bits, s.exp_bits.view(np.float32), s.logits,
        )
        state.position = pos + 1
        return state.logits

    def prefill(
        self, tokens: Array, genres: Array, densities: Array, state: CompiledTransformerState
    ) -> Array:
        """T inputs in one causal pass, as ``forward`` does, caching their keys and values."""
        start, t = state.position, len(tokens)
        if t == 0 or start + t > self.max_len:
            raise ValueError(f"cannot prefill {t} tokens at position {start} "
                             f"(max_len={self.max_len})")
        x = self.token_rows[tokens] + self.cond_in[genres, densities]  # [T, D]
        cond = self.cond_layers[genres, densities]  # [T, L, D]
        for i, w in enumerate(self.blocks):
            x += cond[:, i]
            x += self._attend_block(i, w, _normalized(x, self.eps[i]), state)
            hid = _normalized(x, self.eps[i]) @ w.fc_w + w.fc_b  # [T, F]
            x += (hid * (1.0 + torch.erf(torch.from_numpy(hid) / np.sqrt(2)).numpy())) @ w.out_w
            x += w.out_b
        state.position = start + t
        last = _normalized(x[-1:], self.final_eps)  # [1, D]
        np.matmul(last, self.head_w, out=state.logits)
        state.logits += self.head_b
        return state.logits

    def _attend_block(
        self, i: int, w: _BlockWeights, xn: Array, state: CompiledTransformerState
    ) -> Array:
        """Causal attention of T normalised rows [T, D] after the cached prefix -> [T, D]."""
        d, h, hd, start, t = self.d_model, self.heads, self.head_dim, state.position, len(xn)
        end = start + t
        qkv = xn @ w.qkv_w + w.qkv_b  # [T, 5D]
        rope = qkv[:, : 2 * d] * self.cos[start:end] + qkv[:, 3 * d :] * self.sin[start:end]
        q = rope[:, :d].reshape(t, h, hd).transpose(1, 0, 2)  # [T, D] -> [H, T, hd]
        state.kt[i, 0, :, :, start:end] = rope[:, d:].reshape(t, h, hd).transpose(1, 2, 0)
        state.v[i, 0, :, start:end] = qkv[:, 2 * d : 3 * d].reshape(t, h, hd).transpose(1, 0, 2)
        scores = q @ state.kt[i, 0, :, :, :end]  # [H, T, end]
        # future keys masked by adding -inf: a boolean-mask store costs 20x more
        scores += np.where(np.arange(end)[None, :] > np.arange(start, end)[:, None],
                           np.float32(-np.inf), np.float32(0.0))  # [T, end], broadcast over H
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        att = scores @ state.v[i, 0, :, :end]  # [H, T, hd]
        out: Array = att.transpose(1, 0, 2).reshape(t, d) @ w.proj_w + w.proj_b  # -> [T, D]
        return out


def _normalized(x: Array, eps: float) -> Array:
    """LayerNorm without its affine part, for a block of rows [T, D] (allocates: prefill)."""
    centred = x - x.mean(axis=-1, keepdims=True)
    out: Array = centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)
    return out


def _arrays(weights: _BlockWeights) -> list[Array]:
    """The arrays of a block in field order (not ``astuple``: that deep-copies them)."""
    return [getattr(weights, f.name) for f in fields(weights)]


def _fold_norm(norm: nn.LayerNorm, weight: Tensor, bias: Tensor) -> tuple[Array, Array]:
    """linear(layernorm(x)) = normalise(x) @ W' + b': the norm's gain and bias folded in.

    weight [out, in] (nn.Linear layout) -> W' [in, out], b' [out].
    """
    gain, shift = to_numpy(norm.weight), to_numpy(norm.bias)
    w = to_numpy(weight).T  # [in, out]
    return np.ascontiguousarray(w * gain[:, None]), (shift @ w + to_numpy(bias)).astype(np.float32)
