"""Streaming steps compiled with numba, one call per token for each family (Transformer, LSTM,
WaveNet) over weights folded by runtime/transformer.py, lstm.py and wavenet.py, every buffer
preallocated in the stream state.

Why compiled: at batch 1 a numpy step is dozens of small calls per layer (about 40 for a
Transformer block, 14 for an LSTM layer, 8 for a WaveNet layer), and their dispatch (1-5 us
each) cost more than the arithmetic. One call into a loop nest leaves only the arithmetic:
the matrix-vector products (memory-bound; see `_accumulate`), attention over the cached
prefix, norms and activations.
The loops are plain float32 with ``fastmath`` so LLVM vectorises them, and exp and erf are
polynomials for the same reason. Sums are reordered: logits move by about 2e-6 of their
largest against torch's (the runtime tests allow 1e-5).

One file on purpose: numba's on-disk cache (``cache=True``, next to this file or in
``NUMBA_CACHE_DIR``; only the first process on a machine pays the few seconds of compiling)
is keyed on the file of the function compiled, so a helper edited in another file would leave
its callers' cached code stale.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

Array = np.ndarray[Any, Any]

_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))
_ONE = np.float32(1.0)
_LOG2E, _LN2 = np.float32(1.0 / math.log(2.0)), np.float32(math.log(2.0))
# erf(u) = 1 - t (a1 + t (a2 + ... a5 t)) exp(-u^2), t = 1 / (1 + p u), u >= 0
_P = np.float32(0.3275911)
_A1, _A2, _A3, _A4, _A5 = (np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741,
                                                    -1.453152027, 1.061405429))
_C1, _C2, _C3, _C4, _C5, _C6, _C7 = (np.float32(1.0 / math.factorial(k)) for k in range(1, 8))


@njit(cache=True, fastmath=True, nogil=True)
def _accumulate(
    x: Array, w: Array, n_in: int, n_out: int, out: Array
) -> None:
    """out[:n_out] += x[:n_in] @ w[:n_in, :n_out], w [>= n_in, >= n_out] C-contiguous.

    Four input rows per pass over ``out``: a quarter of the loads and stores of ``out`` that
    one row per pass costs (1.9x slower); 7.5 us for 128 x 640 against numpy's BLAS call 9 us.
    w is indexed whole, never sliced: a slice's layout is unknown to numba at compile time,
    so its loops run scalar (3x slower).
    """
    k = 0
    while k + 4 <= n_in:
        x0, x1, x2, x3 = x[k], x[k + 1], x[k + 2], x[k + 3]
        w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        for j in range(n_out):
            out[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
        k += 4
    while k < n_in:
        xk, wk = x[k], w[k]
        for j in range(n_out):
            out[j] += xk * wk[j]
        k += 1


@njit(cache=True, fastmath=True, nogil=True)
def _matvec(x: Array, w: Array, b: Array, out: Array) -> None:
    """out = x @ w + b."""
    for j in range(w.shape[1]):
        out[j] = b[j]
    _accumulate(x, w, w.shape[0], w.shape[1], out)


@njit(cache=True, fastmath=True, nogil=True)
def _normalize(x: Array, out: Array, eps: float) -> None:
    """LayerNorm without its affine part (folded into the next weights): x [D] -> out [D]."""
    n = x.shape[0]
    mean = np.float32(0.0)
    for i in range(n):
        mean += x[i]
    mean /= n
    var = np.float32(0.0)
    for i in range(n):
        c = x[i] - mean
        out[i] = c
        var += c * c
    inv = _ONE / np.float32(math.sqrt(var / n + eps))
    for i in range(n):
        out[i] *= inv


@njit(cache=True, fastmath=True, nogil=True)
def _exp_rows(
    x: Array, n: int, shift: float | np.floating[Any], bits: Array, bits_as_float: Array
) -> None:
    """x[:n] <- exp(x[:n] - shift), the exponent clamped to [-87, 88] (float32's range), in
    loops LLVM vectorises (libm's expf does not: it was half of attention's cost).

    exp(z) = 2^i 2^f with i = round(z log2 e), |f| <= 1/2: 2^f from its Taylor series to
    degree 7 (relative error about 1e-8), 2^i built as float bits in ``bits`` (int32 [T]),
    read back through ``bits_as_float``, a float32 view of the same memory.
    """
    for t in range(n):
        z = min(max(x[t] - shift, np.float32(-87.0)), np.float32(88.0)) * _LOG2E
        i = np.floor(z + np.float32(0.5))  # float32 (math.floor: int64, scalar)
        f = (z - i) * _LN2
        tail = _C4 + f * (_C5 + f * (_C6 + f * _C7))
        x[t] = _ONE + f * (_C1 + f * (_C2 + f * (_C3 + f * tail)))
        bits[t] = (np.int32(i) + np.int32(127)) << np.int32(23)
    for t in range(n):
        x[t] *= bits_as_float[t]


@njit(cache=True, fastmath=True, nogil=True)
def _attend(
    q: Array, kt: Array, v: Array, n: int, scores: Array, bits: Array, bits_as_float: Array,
    head_out: Array, out: Array,
) -> None:
    """Softmax attention of q [H * hd] over the first n cached keys kt [H, hd, T] (transposed)
    and values v [H, T, hd] -> out [H * hd]. q carries the 1/sqrt(hd); scores [T] and
    head_out [hd] are scratch, bits and bits_as_float `_exp_rows`' scratch."""
    heads, hd = kt.shape[0], kt.shape[1]
    for h in range(heads):
        base = h * hd
        for t in range(n):
            scores[t] = 0.0
        _accumulate(q[base : base + hd], kt[h], hd, n, scores)  # [hd] @ [hd, :n] -> [n]
        top = scores[0]
        for t in range(1, n):
            top = max(top, scores[t])
        _exp_rows(scores, n, top, bits, bits_as_float)
        total = np.float32(0.0)
        for t in range(n):
            total += scores[t]
        for e in range(hd):
            head_out[e] = 0.0
        _accumulate(scores, v[h], n, hd, head_out)  # [n] @ [:n, hd] -> [hd]
        inv = _ONE / total
        for e in range(hd):
            out[base + e] = head_out[e] * inv


@njit(cache=True, fastmath=True, nogil=True)
def _gelu_twice(x: Array, tmp: Array, bits: Array, bits_as_float: Array) -> None:
    """x <- 2 GELU(x) = x (1 + erf(x / sqrt 2)), erf as Abramowitz & Stegun 7.1.26 (absolute
    error below 1.5e-7) so the loop vectorises; libm's erff, one call per element, cost 5 us
    a layer. tmp is scratch of x's size; bits and bits_as_float `_exp_rows`' scratch."""
    n = x.shape[0]
    for i in range(n):
        u = x[i] * _INV_SQRT2
        tmp[i] = -(u * u)
    _exp_rows(tmp, n, np.float32(0.0), bits, bits_as_float)  # exp(-u^2)
    for i in range(n):
        u = abs(x[i]) * _INV_SQRT2
        t = _ONE / (_ONE + _P * u)
        poly = t * (_A1 + t * (_A2 + t * (_A3 + t * (_A4 + t * _A5))))
        erf_abs = _ONE - poly * tmp[i]
        x[i] += x[i] * (erf_abs if x[i] >= 0 else -erf_abs)


@njit(cache=True, fastmath=True, nogil=True)
def transformer_step(
    tokens: Array, genres: Array, densities: Array, pos: int,
    token_rows: Array, cond_in: Array, cond_layers: Array,
    qkv_w: Array, qkv_b: Array, proj_w: Array, proj_b: Array,
    fc_w: Array, fc_b: Array, out_w: Array, out_b: Array, eps: Array,
    cos: Array, sin: Array, head_w: Array, head_b: Array, final_eps: float,
    kt: Array, v: Array, x: Array, xn: Array, qkv: Array, rope: Array, att: Array,
    hid: Array, scores: Array, bits: Array, bits_as_float: Array, logits: Array,
) -> None:
    """One token per stream: ids [B] at position ``pos`` -> logits [B, V]; caches kt
    [L, B, H, hd, T] and v [L, B, H, T, hd] get this position's keys and values.

    Weights are stacked per layer: qkv_w [L, D, 5D] (q, k, v, swap(q), swap(k)), proj_w
    [L, D, D], fc_w [L, D, F], out_w [L, F, D] (GELU's 1/2 folded in); cos, sin [T, 2D].
    """
    layers, batch, heads, hd = kt.shape[0], kt.shape[1], kt.shape[2], kt.shape[3]
    d = heads * hd
    for b in range(batch):
        xb = x[b]
        row, c_in = token_rows[tokens[b]], cond_in[genres[b], densities[b]]
        for i in range(d):
            xb[i] = row[i] + c_in[i]
        for layer in range(layers):
            c_layer = cond_layers[genres[b], densities[b], layer]
            for i in range(d):
                xb[i] += c_layer[i]
            # attention: rotate q and k, cache k (transposed) and v, attend over 0..pos
            _normalize(xb, xn, eps[layer])
            _matvec(xn, qkv_w[layer], qkv_b[layer], qkv)
            for i in range(2 * d):
                rope[i] = qkv[i] * cos[pos, i] + qkv[3 * d + i] * sin[pos, i]
            for h in range(heads):
                for e in range(hd):
                    kt[layer, b, h, e, pos] = rope[d + h * hd + e]
                    v[layer, b, h, pos, e] = qkv[2 * d + h * hd + e]
            _attend(rope, kt[layer, b], v[layer, b], pos + 1, scores, bits, bits_as_float,
                    hid, att)  # hid: free until the MLP, scratch here
            _matvec(att, proj_w[layer], proj_b[layer], xn)
            for i in range(d):
                xb[i] += xn[i]
            # MLP: x += (fc(norm x) * (1 + erf(fc / sqrt 2))) @ out_w, the 1/2 in out_w
            _normalize(xb, xn, eps[layer])
            _matvec(xn, fc_w[layer], fc_b[layer], hid)
            _gelu_twice(hid, scores, bits, bits_as_float)
            _matvec(hid, out_w[layer], out_b[layer], xn)
            for i in range(d):
                xb[i] += xn[i]
        _normalize(xb, xn, final_eps)
        _matvec(xn, head_w, head_b, logits[b])


@njit(cache=True, fastmath=True, nogil=True)
def _tanh_rows(x: Array, n: int, tmp: Array, bits: Array, bits_as_float: Array) -> None:
    """x[:n] <- tanh(x[:n]) = 2 / (1 + exp(-2x)) - 1, vectorised through `_exp_rows`."""
    for j in range(n):
        tmp[j] = np.float32(-2.0) * x[j]
    _exp_rows(tmp, n, np.float32(0.0), bits, bits_as_float)
    for j in range(n):
        x[j] = np.float32(2.0) / (_ONE + tmp[j]) - _ONE


@njit(cache=True, fastmath=True, nogil=True)
def lstm_step(
    tokens: Array, genres: Array, densities: Array,
    token_rows: Array, cond: Array, w_hh0: Array, w_cat: Array, head_w: Array, head_b: Array,
    h2: Array, c: Array, gates: Array, tanh_c: Array, tmp: Array, bits: Array,
    bits_as_float: Array, logits: Array,
) -> None:
    """One token per stream: ids [B] -> logits [B, V]; h2 [B, L * H] and c [L, B, H] updated.

    Tables as runtime/lstm.py folds them: gate columns (i, f, o, g) with i, f, o pre-scaled by
    1/2, so ``2 sigmoid(a) = 1 + tanh(a / 2)`` and one tanh covers all four gates; token_rows
    [V, 4H] (layer 0's input product), cond [L, G + 1, D, 4H], w_hh0 [H, 4H], w_cat
    [L - 1, 2H, 4H] over ``[2 h_below ; 2 h_own]``, head_w [H, V]; the state keeps 2 h.
    Scratch: gates and tmp [4H], tanh_c [H], bits and bits_as_float (`_exp_rows`) [4H].
    """
    layers, hid = c.shape[0], c.shape[2]
    for b in range(tokens.shape[0]):
        hb, genre, density = h2[b], genres[b], densities[b]
        for k in range(layers):
            if k == 0:
                row = token_rows[tokens[b]]
                for j in range(4 * hid):
                    gates[j] = row[j]
                _accumulate(hb, w_hh0, hid, 4 * hid, gates)
            else:  # [2 h_{k-1} (this step) ; 2 h_k (last step)]: adjacent in h2
                for j in range(4 * hid):
                    gates[j] = 0.0
                _accumulate(hb[(k - 1) * hid :], w_cat[k - 1], 2 * hid, 4 * hid, gates)
            bias = cond[k, genre, density]
            for j in range(4 * hid):
                gates[j] += bias[j]
            _tanh_rows(gates, 4 * hid, tmp, bits, bits_as_float)
            ck = c[k, b]
            for j in range(hid):  # c = sigmoid(f) c + sigmoid(i) g
                ck[j] = np.float32(0.5) * ((_ONE + gates[hid + j]) * ck[j]
                                           + (_ONE + gates[j]) * gates[3 * hid + j])
                tanh_c[j] = ck[j]
            _tanh_rows(tanh_c, hid, tmp, bits, bits_as_float)
            for j in range(hid):  # 2 h = 2 sigmoid(o) tanh(c)
                hb[k * hid + j] = (_ONE + gates[2 * hid + j]) * tanh_c[j]
        for j in range(head_b.shape[0]):
            logits[b, j] = head_b[j]
        _accumulate(hb[(layers - 1) * hid :], head_w, hid, head_w.shape[1], logits[b])


@njit(cache=True, fastmath=True, nogil=True)
def wavenet_step(
    tokens: Array, genres: Array, densities: Array, pos: int,
    token_rows: Array, cond_in: Array, cond_layers: Array, conv_w: Array, res_w: Array,
    skip_w: Array, skip_b: Array, head_w1: Array, head_b1: Array, head_w2: Array,
    head_b2: Array, dilations: Array, queue_at: Array,
    queue: Array, x: Array, proj: Array, gate: Array, z_sum: Array, skips: Array,
    hidden: Array, tmp: Array, bits: Array, bits_as_float: Array, logits: Array,
) -> None:
    """One token per stream: ids [B] at position ``pos`` -> logits [B, V].

    Tables as runtime/wavenet.py folds them (projection on write, gate halves for one tanh,
    residual biases in the condition rows): conv_w [L, R, k 2C] (columns: current input, then
    each tap), cond_layers [G + 1, D, L, 2C], res_w [L, 2C, R] (stacked twice), skip_w
    [L C, S]. Every layer's queue of tap projections lies in ``queue`` [sum (k - 1) d_i, B,
    (k - 1) 2C], layer i's rows from ``queue_at[i]``, its length (k - 1) d_i. Scratch: x [R],
    proj [k 2C], gate and tmp [2C], z_sum [L C], skips and hidden [S], bits [2C].
    """
    layers, two_c = conv_w.shape[0], cond_layers.shape[3]
    ch, taps = two_c // 2, conv_w.shape[2] // two_c - 1
    for b in range(tokens.shape[0]):
        row, c_in = token_rows[tokens[b]], cond_in[genres[b], densities[b]]
        for j in range(x.shape[0]):
            x[j] = row[j] + c_in[j]
        for i in range(layers):
            for j in range(proj.shape[0]):
                proj[j] = 0.0
            _accumulate(x, conv_w[i], x.shape[0], proj.shape[0], proj)
            size = taps * dilations[i]
            cond = cond_layers[genres[b], densities[b], i]
            for j in range(two_c):
                gate[j] = proj[j] + cond[j]
            for m in range(taps):  # tap m was projected (taps - m) d steps ago
                queued = queue[queue_at[i] + (pos - (taps - m) * dilations[i]) % size, b]
                for j in range(two_c):
                    gate[j] += queued[m * two_c + j]
            slot = queue[queue_at[i] + pos % size, b]  # the oldest, read above: now refilled
            for j in range(taps * two_c):
                slot[j] = proj[two_c + j]
            _tanh_rows(gate, two_c, tmp, bits, bits_as_float)
            for j in range(ch):  # [tanh f, tanh f tanh(g / 2)]; their sum is 2 tanh f sigma g
                gate[ch + j] *= gate[j]
                z_sum[i * ch + j] = gate[j] + gate[ch + j]
            _accumulate(gate, res_w[i], two_c, x.shape[0], x)  # residual, biases folded
        _dense_relu(z_sum, skip_w, skip_b, skips)
        _dense_relu(skips, head_w1, head_b1, hidden)
        _matvec(hidden, head_w2, head_b2, logits[b])


@njit(cache=True, fastmath=True, nogil=True)
def _dense_relu(x: Array, w: Array, b: Array, out: Array) -> None:
    """out = max(x @ w + b, 0)."""
    _matvec(x, w, b, out)
    for j in range(out.shape[0]):
        out[j] = max(out[j], np.float32(0.0))
