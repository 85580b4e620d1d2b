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
def synth_block(table: Array, prev_table: Array, slots: Array, noise: Array,
                prev_noise: Array, bands: Array, f0: Array, sample: Array, noise_start: Array,
                alpha: Array, sample_rate: float, out: Array) -> None:
    """out [k, BLOCK] = crossfaded wavetable reads + crossfaded band noise, per voice.

    table [k, TABLE] is this frame's period of each voice; prev_table [slots, TABLE + 1]
    and prev_noise [slots, K] the last frame's of every slot (the guard sample repeats
    sample 0), which this frame's then replace.

    bands [K, LOOP + BLOCK] repeats each loop's first BLOCK samples at its end, so a block's
    noise is one contiguous run per band and that loop vectorises over the samples."""
    voices, block = out.shape
    size = table.shape[1]
    loop = bands.shape[1] - block
    for r in range(voices):
        now_table, was_table, o = table[r], prev_table[slots[r]], out[r]
        for n in range(block):
            cycles = f0[r] * (sample[r] + n) / sample_rate
            pos = np.float32(cycles - np.floor(cycles)) * np.float32(size)
            i0 = min(max(int(np.floor(pos)), 0), size - 1)
            i1 = i0 + 1 if i0 + 1 < size else 0
            w = pos - np.float32(i0)
            now = now_table[i0] + (now_table[i1] - now_table[i0]) * w
            was = was_table[i0] + (was_table[i0 + 1] - was_table[i0]) * w
            o[n] = was + (now - was) * alpha[n]
        was_table[:size] = now_table
        was_table[size] = now_table[0]
        start = (noise_start[r] + sample[r]) % loop
        for k in range(bands.shape[0]):
            gain, step = prev_noise[r, k], noise[r, k] - prev_noise[r, k]
            run = bands[k, start : start + block]
            for n in range(block):
                o[n] += (gain + step * alpha[n]) * run[n]
            prev_noise[slots[r], k] = noise[r, k]


@njit(cache=True, fastmath=True, nogil=True)
def _dot(w: Array, x: Array) -> np.float32:
    acc = np.float32(0.0)
    for i in range(x.shape[0]):
        acc += w[i] * x[i]
    return acc


@njit(cache=True, fastmath=True, nogil=True)
def _gated(a: float, b: float) -> np.float32:
    """tanh(a) * sigmoid(b) from two exps (libm's tanh costs as much as the gate's matrix):
    tanh(a) = (1 - e^-2a) / (1 + e^-2a). Clamped where both have long reached +-1 and 0, so
    no exp overflows (fastmath assumes no infinities)."""
    e2a = np.exp(np.float32(-2.0 * min(max(a, -15.0), 15.0)))
    eb = np.exp(np.float32(-min(max(b, -30.0), 30.0)))
    one = np.float32(1.0)
    return np.float32((one - e2a) / ((one + e2a) * (one + eb)))


@njit(cache=True, fastmath=True, nogil=True)
def conv_stack(cond: Array, slots: Array, frame: int, queue: Array, offsets: Array,
               dilations: Array, w_in: Array, b_in: Array, w_gate: Array, b_gate: Array,
               w_out: Array, b_out: Array, w_h1: Array, b_h1: Array, w_h2: Array,
               b_h2: Array, out: Array) -> None:
    """One frame of the gated dilated conv stack for every voice: cond [k, F] -> out [k, O].
    w_in and the gate's conditioning columns are zero-padded to P >= F inputs (a multiple of
    32: the dot products vectorise without a remainder loop).

    Weights are [out, in] so every dot product runs over contiguous memory, and each weight
    row is used for all voices before the next is read (a row stays in L1 for the k dot
    products). The queue of layer l is rows offsets[l] .. offsets[l] + dilations[l] of a
    voice's slot; row `frame % dilation` holds the layer's input from `dilation` frames ago,
    and takes this frame's input for the frame that many steps on. A gate row's weights are
    [past tap, now tap, conditioning], so one dot product makes the gate's pre-activation."""
    k, c, s, p = cond.shape[0], w_in.shape[0], w_h1.shape[0], w_in.shape[1]
    h = np.empty((k, c), np.float32)
    taps = np.zeros((k, 2 * c + p), np.float32)  # [past, now, cond padded to P]
    for r in range(k):
        taps[r, 2 * c : 2 * c + cond.shape[1]] = cond[r]
    z = np.empty((k, 2 * c), np.float32)
    g = np.empty((k, c), np.float32)
    skip = np.zeros((k, s), np.float32)
    hidden = np.empty((k, s), np.float32)
    for o in range(c):
        for r in range(k):
            h[r, o] = b_in[o] + _dot(w_in[o], taps[r, 2 * c :])
    for layer in range(dilations.shape[0]):
        row = offsets[layer] + frame % dilations[layer]
        for r in range(k):
            taps[r, :c] = queue[slots[r], row]
            taps[r, c : 2 * c] = h[r]
            queue[slots[r], row] = h[r]
        for o in range(2 * c):
            wg, b = w_gate[layer, o], b_gate[layer, o]
            for r in range(k):
                z[r, o] = b + _dot(wg, taps[r])
        for r in range(k):
            for o in range(c):
                g[r, o] = _gated(z[r, o], z[r, c + o])
        # the last layer's residual feeds nothing: only its skip rows are computed
        for o in range(s if layer == dilations.shape[0] - 1 else s + c):
            wo, b = w_out[layer, o], b_out[layer, o]
            for r in range(k):
                v = b + _dot(wo, g[r])
                if o < s:
                    skip[r, o] += v
                else:
                    h[r, o - s] += v
    for r in range(k):
        for o in range(s):
            skip[r, o] = max(skip[r, o], np.float32(0.0))
    for o in range(s):
        for r in range(k):
            hidden[r, o] = max(b_h1[o] + _dot(w_h1[o], skip[r]), np.float32(0.0))
    for o in range(w_h2.shape[0]):
        for r in range(k):
            out[r, o] = b_h2[o] + _dot(w_h2[o], hidden[r])


@njit(cache=True, fastmath=True, nogil=True)
def _exp_sigmoid(x: float) -> float:
    """model.exp_sigmoid: 2 sigmoid(x)^ln(10) + 1e-7."""
    return float(2.0 * (1.0 / (1.0 + np.exp(-x))) ** np.log(10.0) + 1e-7)


@njit(cache=True, fastmath=True, nogil=True)
def split_controls(raw: Array, f0: Array, fade: Array, harmonics: int, nyquist: float,
                   amps: Array, noise: Array) -> None:
    """model.split_outputs for one frame of k voices, each scaled by its fade: amps [k, H]
    (loudness x softmax over the harmonics below Nyquist), noise [k, K] band gains."""
    for r in range(raw.shape[0]):
        loud = _exp_sigmoid(raw[r, 0]) * fade[r]
        top = -1e30
        for j in range(harmonics):
            if f0[r] * (j + 1) < nyquist and raw[r, 1 + j] > top:
                top = raw[r, 1 + j]
        total = 0.0
        for j in range(harmonics):
            e = np.exp(raw[r, 1 + j] - top) if f0[r] * (j + 1) < nyquist else 0.0
            amps[r, j] = e
            total += e
        for j in range(harmonics):
            amps[r, j] = amps[r, j] * loud / total if total > 0 else 0.0
        for j in range(noise.shape[1]):
            noise[r, j] = _exp_sigmoid(raw[r, 1 + harmonics + j] - 5.0) * 0.05 * fade[r]


@njit(cache=True, fastmath=True, nogil=True)
def voice_inputs(slots: Array, frame: Array, gate: Array, pitch: Array, velocity: Array,
                 kill: Array, drum: Array, instrument: Array, embeddings: Array,
                 morph: Array, release_frames: int, fade_frames: int, held: int,
                 age_scale: float, cond: Array, fade: Array) -> None:
    """The conv stack's input for one frame of each active slot, and each voice's fade.

    cond [k, NOTE_FEATURES + E]: model.note_features of the voice's frame, then its timbre
    (a drum's kit piece, else the morph's blend). fade [k]: 1 while it plays; down to 0 over
    its last fade_frames (after the release it was trained on, or at once when stolen)."""
    for r in range(slots.shape[0]):
        i = slots[r]
        t, held_for = frame[i], gate[i]
        released = t >= held_for
        cond[r, 0] = (pitch[i] - 60.0) / 24.0
        cond[r, 1] = velocity[i] / 127.0
        cond[r, 2] = 0.0 if released else 1.0
        cond[r, 3] = np.log1p(min(t, 256.0)) / age_scale
        since = min(max(t - held_for + 1, 0.0), 256.0)
        cond[r, 4] = np.log1p(since) / age_scale if released else 0.0
        cond[r, cond.shape[1] - morph.shape[0] :] = embeddings[instrument[i]] if drum[i] else morph
        left = min(max(held_for + release_frames - t, 0), fade_frames) / fade_frames
        fade[r] = 0.0 if kill[i] else (1.0 if held_for >= held else left)


@njit(cache=True, fastmath=True, nogil=True)
def mix_voices(audio: Array, slots: Array, fade: Array, delay: Array, carry: Array,
               frame: Array, key: Array, kill: Array, out: Array) -> None:
    """Sum each voice's block [k, BLOCK] into out, `delay` samples late (the rest carried to
    the next block); step its frame; free the slots whose fade reached silence (the samples
    a freed voice would carry are the quietest of its fade, and are dropped)."""
    block = out.shape[0]
    for r in range(slots.shape[0]):
        i = slots[r]
        d = delay[i]
        for n in range(d):
            out[n] += carry[i, n]
            carry[i, n] = audio[r, block - d + n]
        for n in range(block - d):
            out[d + n] += audio[r, n]
        frame[i] += 1
        if fade[r] == 0.0:
            key[i] = -1
            kill[i] = False
