"""numpy streaming step of :class:`musegen.models.TransformerGenerator` (see runtime/base.py).

Folded at load time, so a block is a few BLAS calls and elementwise ops on preallocated rows:

* LayerNorm gains and biases go into the next linear layer's weights and bias, so a norm is
  centre and scale only;
* RoPE becomes ``q cos + swap(q) sin``: the swapped, sign-flipped copy of q and k comes out of
  the same GEMM as q, k, v (five column blocks), and the 1/sqrt(head_dim) attention scale is
  folded into q's columns;
* keys are cached transposed, ``[B, H, head_dim, max_len]``, so the scores are one batched GEMM
  over the cached prefix.

GELU is the exact erf form, as ``nn.GELU()``, with torch's erf on a shared buffer (numpy
has none); its factor 1/2 is folded into the MLP's output weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from musegen.models.transformer import Block, TransformerGenerator, rope_tables
from musegen.runtime.base import NumpyStreamer, condition_table, to_numpy

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
class NumpyTransformerState:
    kt: Array  # [L, B, H, hd, max_len] keys, transposed
    v: Array  # [L, B, H, max_len, hd]
    position: int
    x: Array  # [B, D] residual stream
    xn: Array  # [B, D] normalised
    qkv: Array  # [B, 5D]
    rope: Array  # [B, 2D] rotated q and k
    scores: Array  # [B, H, 1, max_len]
    att: Array  # [B, H, 1, hd]
    d_tmp: Array  # [B, D]
    hid: Array  # [B, F]
    erf: Array  # [B, F] GELU scratch
    erf_t: torch.Tensor  # torch view of erf
    ones: Array  # [B, F]; array operands: numpy's scalar path costs more than the op
    inv_sqrt2: Array  # [B, F]
    rope_tmp: Array  # [B, 2D]
    sq: Array  # [B, D]
    stat: Array  # [B, 1] a mean or variance per row
    mean_col: Array  # [D, 1] all 1/D
    logits: Array  # [B, V]


class NumpyTransformer(NumpyStreamer[NumpyTransformerState]):
    family = "transformer"

    @torch.no_grad()
    def __init__(self, model: TransformerGenerator) -> None:
        c = model.config
        self.vocab_size, self.layers, self.heads = c.vocab_size, c.layers, c.heads
        self.d_model, self.max_len, self.head_dim = c.d_model, c.max_len, c.d_model // c.heads
        self.ffn = c.ffn_mult * c.d_model
        self.eps = [b.ln1.eps for b in cast("Sequence[Block]", model.blocks)]
        cos, sin = rope_tables(c.max_len, self.head_dim, c.rope_base)  # [T, hd/2]
        # per position, [cos, cos] and [sin, sin] per head, for q and k side by side: [T, 2D]
        self.cos = np.tile(to_numpy(cos), 4 * c.heads)
        self.sin = np.tile(to_numpy(sin), 4 * c.heads)
        self.token_rows = to_numpy(model.embed.weight)
        self.cond_in = condition_table(model.cond_in)  # [G + 1, D, D]: the last genre is the mean
        cond = condition_table(model.cond_layers)
        self.cond_layers = np.ascontiguousarray(cond.reshape(*cond.shape[:2], c.layers, -1))
        self.blocks = [self._fold(b) for b in cast("Sequence[Block]", model.blocks)]
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

    def start_stream(self, batch_size: int) -> NumpyTransformerState:
        b, d, h, hd, t = batch_size, self.d_model, self.heads, self.head_dim, self.max_len

        def zeros(*shape: int) -> Array:
            return np.zeros(shape, dtype=np.float32)

        erf = zeros(b, self.ffn)
        return NumpyTransformerState(
            kt=zeros(self.layers, b, h, hd, t), v=zeros(self.layers, b, h, t, hd), position=0,
            x=zeros(b, d), xn=zeros(b, d), qkv=zeros(b, 5 * d), rope=zeros(b, 2 * d),
            scores=zeros(b, h, 1, t), att=zeros(b, h, 1, hd), d_tmp=zeros(b, d),
            hid=zeros(b, self.ffn), erf=erf, erf_t=torch.from_numpy(erf),
            ones=np.ones((b, self.ffn), np.float32),
            inv_sqrt2=np.full((b, self.ffn), 1 / np.sqrt(2), np.float32),
            rope_tmp=zeros(b, 2 * d), logits=zeros(b, self.vocab_size),
            sq=zeros(b, d), stat=zeros(b, 1), mean_col=np.full((d, 1), 1 / d, np.float32),
        )

    def step_numpy(
        self, token: Array, genre: Array, density: Array, state: NumpyTransformerState
    ) -> Array:
        pos = state.position
        if pos >= self.max_len:
            raise ValueError(
                f"stream is full: max_len={self.max_len} tokens; start a new stream "
                "(or re-prime it with the most recent tokens)"
            )
        x = state.x
        np.add(self.token_rows[token], self.cond_in[genre, density], out=x)  # [B, D]
        cond = self.cond_layers[genre, density]  # [B, L, D]
        for i, weights in enumerate(self.blocks):
            x += cond[:, i]
            self._attend(i, weights, state)
            self._mlp(i, weights, state)
        state.position = pos + 1
        _normalize(x, state, self.final_eps)
        np.matmul(state.xn, self.head_w, out=state.logits)
        state.logits += self.head_b
        return state.logits

    def prefill(
        self, tokens: Array, genres: Array, densities: Array, state: NumpyTransformerState
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
        self, i: int, w: _BlockWeights, xn: Array, state: NumpyTransformerState
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
        future = np.arange(end)[None, :] > np.arange(start, end)[:, None]  # [T, end]
        scores[:, future] = -np.inf
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        att = scores @ state.v[i, 0, :, :end]  # [H, T, hd]
        out: Array = att.transpose(1, 0, 2).reshape(t, d) @ w.proj_w + w.proj_b  # -> [T, D]
        return out

    def _attend(self, i: int, w: _BlockWeights, s: NumpyTransformerState) -> None:
        b, d, h, hd, pos = s.x.shape[0], self.d_model, self.heads, self.head_dim, s.position
        n = pos + 1
        _normalize(s.x, s, self.eps[i])
        np.matmul(s.xn, w.qkv_w, out=s.qkv)
        s.qkv += w.qkv_b
        np.multiply(s.qkv[:, : 2 * d], self.cos[pos], out=s.rope)  # q, k rotated
        np.multiply(s.qkv[:, 3 * d :], self.sin[pos], out=s.rope_tmp)
        s.rope += s.rope_tmp
        q = s.rope[:, :d].reshape(b, h, 1, hd)  # [B, D] -> [B, H, 1, hd]
        s.kt[i, :, :, :, pos] = s.rope[:, d:].reshape(b, h, hd)
        s.v[i, :, :, pos] = s.qkv[:, 2 * d : 3 * d].reshape(b, h, hd)
        scores = s.scores[..., :n]  # [B, H, 1, n]
        np.matmul(q, s.kt[i, ..., :n], out=scores)
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        np.matmul(scores, s.v[i, :, :, :n], out=s.att)  # [B, H, 1, hd]
        s.att /= np.add.reduce(scores, axis=-1, keepdims=True)
        np.matmul(s.att.reshape(b, d), w.proj_w, out=s.d_tmp)  # [B, H, 1, hd] -> [B, D]
        s.x += s.d_tmp
        s.x += w.proj_b

    def _mlp(self, i: int, w: _BlockWeights, s: NumpyTransformerState) -> None:
        _normalize(s.x, s, self.eps[i])
        np.matmul(s.xn, w.fc_w, out=s.hid)
        s.hid += w.fc_b
        _gelu_half_(s.hid, s.erf, s.erf_t, s.ones, s.inv_sqrt2)
        np.matmul(s.hid, w.out_w, out=s.d_tmp)
        s.x += s.d_tmp
        s.x += w.out_b


def _normalize(x: Array, s: NumpyTransformerState, eps: float) -> None:
    """LayerNorm without its affine part (folded into the next weights): x [B, D] -> s.xn.

    Means as GEMMs with a [D, 1] column of 1/D into preallocated [B, 1] buffers: numpy's own
    reductions allocate and cost several times more at this size.
    """
    np.matmul(x, s.mean_col, out=s.stat)  # [B, 1]
    np.subtract(x, s.stat, out=s.xn)
    np.multiply(s.xn, s.xn, out=s.sq)
    np.matmul(s.sq, s.mean_col, out=s.stat)  # variance
    s.stat += eps
    np.sqrt(s.stat, out=s.stat)
    s.xn /= s.stat


def _normalized(x: Array, eps: float) -> Array:
    """LayerNorm without its affine part, for a block of rows [T, D] (allocates: prefill)."""
    centred = x - x.mean(axis=-1, keepdims=True)
    out: Array = centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)
    return out


def _gelu_half_(x: Array, u: Array, u_t: torch.Tensor, ones: Array, inv_sqrt2: Array) -> None:
    """x <- 2 GELU(x) = x (1 + erf(x / sqrt 2)) in place (the 1/2 is in the next weights).

    ``u`` is scratch shaped like x and ``u_t`` a torch view of it: numpy has no erf, and
    torch's vectorised erf on a shared buffer costs one dispatch, with no copy.
    """
    np.multiply(x, inv_sqrt2, out=u)
    u_t.erf_()
    u += ones
    x *= u


def _fold_norm(norm: nn.LayerNorm, weight: Tensor, bias: Tensor) -> tuple[Array, Array]:
    """linear(layernorm(x)) = normalise(x) @ W' + b': the norm's gain and bias folded in.

    weight [out, in] (nn.Linear layout) -> W' [in, out], b' [out].
    """
    gain, shift = to_numpy(norm.weight), to_numpy(norm.bias)
    w = to_numpy(weight).T  # [in, out]
    return np.ascontiguousarray(w * gain[:, None]), (shift @ w + to_numpy(bias)).astype(np.float32)
