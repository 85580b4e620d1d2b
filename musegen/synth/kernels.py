"""The synth's per-sample loop compiled with numba: wavetable reads and band noise.

Per sample and voice it is two interpolated table reads and one gain per noise band; as
numpy that was a dozen gathers and temporaries per block, most of a block's cost. The
formulas are musegen.synth.dsp's (the training path), so the two agree to float rounding.
One file, as musegen/runtime/kernels.py, because numba's cache is keyed on the file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

Array = np.ndarray[Any, Any]


@njit(cache=True, fastmath=True, nogil=True)
def synth_block(table: Array, prev_table: Array, noise: Array, prev_noise: Array,
                bands: Array, f0: Array, sample: Array, noise_start: Array, alpha: Array,
                sample_rate: float, out: Array) -> None:
    """out [k, BLOCK] = crossfaded wavetable reads + crossfaded band noise, per voice."""
    voices, block = out.shape
    size = table.shape[1] - 1
    n_bands, loop = bands.shape
    gains = np.empty(n_bands, np.float32)
    steps = np.empty(n_bands, np.float32)
    for r in range(voices):
        for k in range(n_bands):
            gains[k] = prev_noise[r, k]
            steps[k] = noise[r, k] - prev_noise[r, k]
        for n in range(block):
            cycles = f0[r] * (sample[r] + n) / sample_rate
            pos = np.float32(cycles - np.floor(cycles)) * np.float32(size)
            i0 = min(max(int(np.floor(pos)), 0), size - 1)
            w = pos - np.float32(i0)
            now = table[r, i0] + (table[r, i0 + 1] - table[r, i0]) * w
            was = prev_table[r, i0] + (prev_table[r, i0 + 1] - prev_table[r, i0]) * w
            a = alpha[n]
            acc = was + (now - was) * a
            idx = (noise_start[r] + sample[r] + n) % loop
            for k in range(n_bands):
                acc += (gains[k] + steps[k] * a) * bands[k, idx]
            out[r, n] = acc


@njit(cache=True, fastmath=True, nogil=True)
def _dot(w: Array, x: Array) -> np.float32:
    acc = np.float32(0.0)
    for i in range(x.shape[0]):
        acc += w[i] * x[i]
    return acc


@njit(cache=True, fastmath=True, nogil=True)
def conv_stack(cond: Array, slots: Array, frame: int, queue: Array, offsets: Array,
               dilations: Array, w_in: Array, b_in: Array, w_gate: Array, b_gate: Array,
               w_cond: Array, w_out: Array, b_out: Array, w_h1: Array, b_h1: Array,
               w_h2: Array, b_h2: Array, out: Array) -> None:
    """One frame of the gated dilated conv stack for each voice: cond [k, F] -> out [k, O].

    Weights are [out, in] so every dot product runs over contiguous memory. The queue of
    layer l is rows offsets[l] .. offsets[l] + dilations[l] of a voice's slot; row
    `frame % dilation` holds the layer's input from `dilation` frames ago, and takes this
    frame's input for the frame that many steps on."""
    c = w_in.shape[0]
    s = w_h1.shape[0]
    h = np.empty(c, np.float32)
    past = np.empty(c, np.float32)
    z = np.empty(2 * c, np.float32)
    g = np.empty(c, np.float32)
    skip = np.empty(s, np.float32)
    hidden = np.empty(s, np.float32)
    for r in range(cond.shape[0]):
        x = cond[r]
        slot = slots[r]
        for o in range(c):
            h[o] = b_in[o] + _dot(w_in[o], x)
        skip[:] = 0.0
        for layer in range(dilations.shape[0]):
            row = offsets[layer] + frame % dilations[layer]
            past[:] = queue[slot, row]
            queue[slot, row] = h
            for o in range(2 * c):
                wg = w_gate[layer, o]
                z[o] = (b_gate[layer, o] + _dot(wg[:c], past) + _dot(wg[c:], h)
                        + _dot(w_cond[layer, o], x))
            for o in range(c):
                g[o] = np.float32(np.tanh(z[o])) / (np.float32(1.0) + np.exp(-z[c + o]))
            for o in range(s + c):
                v = b_out[layer, o] + _dot(w_out[layer, o], g)
                if o < s:
                    skip[o] += v
                else:
                    h[o - s] += v
        for o in range(s):
            skip[o] = max(skip[o], np.float32(0.0))
        for o in range(s):
            hidden[o] = max(b_h1[o] + _dot(w_h1[o], skip), np.float32(0.0))
        for o in range(w_h2.shape[0]):
            out[r, o] = b_h2[o] + _dot(w_h2[o], hidden)
