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
