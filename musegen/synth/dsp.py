"""Harmonic-plus-noise synthesis of one block from frame-rate controls (DDSP's split).

Harmonics: each frame's amplitudes become one period of a waveform (a wavetable, by an
inverse FFT); the block reads the previous and the current frame's tables at the voice's
phase and crossfades them. That is exactly additive synthesis with amplitudes interpolated
linearly over the block (the sum is linear), at two table reads per sample instead of one
sine per harmonic. Noise: fixed looped noise in bands, each band scaled by its control and
crossfaded the same way. Both the training path (torch, whole notes) and the stream (numpy,
one block) use these formulas; their tests hold them to 1e-4 of each other.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np
import torch
from torch import Tensor

from musegen.synth.spec import BLOCK, SAMPLE_RATE

TABLE: Final = 2048  # samples per wavetable period (+1 guard sample for the interpolation)
NOISE_LOOP: Final = 1 << 15  # looped noise, 0.68 s: long enough not to be heard as a loop
NOISE_SEED: Final = 20261203


def fade_in() -> np.ndarray:
    """[BLOCK] the share of the current frame at each sample: reaches 1 at the block's end."""
    return (np.arange(1, BLOCK + 1, dtype=np.float32) / BLOCK).astype(np.float32)


@lru_cache(maxsize=4)
def noise_bands(bands: int) -> np.ndarray:
    """[bands, NOISE_LOOP] unit-RMS white noise split into log-spaced bands (40 Hz to
    Nyquist) in the frequency domain, so each band loops without a seam."""
    rng = np.random.default_rng(NOISE_SEED)
    spectrum = np.fft.rfft(rng.standard_normal(NOISE_LOOP))
    freqs = np.fft.rfftfreq(NOISE_LOOP, 1.0 / SAMPLE_RATE)
    edges = np.geomspace(40.0, SAMPLE_RATE / 2 + 1, bands + 1)
    edges[0] = 0.0
    out = np.zeros((bands, NOISE_LOOP), dtype=np.float32)
    for k in range(bands):
        mask = (freqs >= edges[k]) & (freqs < edges[k + 1])
        band = np.fft.irfft(spectrum * mask, n=NOISE_LOOP)
        out[k] = band / max(float(np.sqrt(np.mean(band**2))), 1e-9)
    return out


def noise_offset(pitch: int) -> int:
    """Where a voice starts reading the noise loop: voices of different notes decorrelate."""
    return (pitch * 7919) % NOISE_LOOP


def harmonic_mask(f0: np.ndarray | Tensor, harmonics: int) -> Tensor:
    """[..., harmonics] 1 where the harmonic is below Nyquist (no aliasing), else 0."""
    f0 = torch.as_tensor(f0, dtype=torch.float64)
    k = torch.arange(1, harmonics + 1, dtype=torch.float64)
    return (f0[..., None] * k < SAMPLE_RATE / 2).float()


def wavetables(amplitudes: Tensor) -> Tensor:
    """[..., H] harmonic amplitudes -> [..., TABLE + 1] one period of sum_k A_k sin(k x)."""
    spectrum = torch.zeros(*amplitudes.shape[:-1], TABLE // 2 + 1, dtype=torch.complex64)
    spectrum[..., 1 : amplitudes.shape[-1] + 1] = -0.5j * TABLE * amplitudes.to(torch.complex64)
    table = torch.fft.irfft(spectrum, n=TABLE)
    return torch.cat([table, table[..., :1]], dim=-1)  # guard: index TABLE reads sample 0


def read_tables(tables: Tensor, phase: Tensor) -> Tensor:
    """Linear-interpolated reads: tables [..., TABLE + 1], phase [..., S] in cycles [0, 1)."""
    pos = phase * TABLE
    i0 = pos.floor().long().clamp(0, TABLE - 1)
    w = pos - i0
    a = torch.gather(tables, -1, i0)
    b = torch.gather(tables, -1, i0 + 1)
    return a + (b - a) * w


def phases(f0: Tensor, start: Tensor, samples: int) -> Tensor:
    """[..., samples] the phase in cycles of sample start + n, from the sample count (float64,
    never accumulated, so a block's phase equals the whole note's at that sample)."""
    n = start.to(torch.float64)[..., None] + torch.arange(samples, dtype=torch.float64)
    cycles = f0.to(torch.float64)[..., None] * n / SAMPLE_RATE
    return (cycles - cycles.floor()).float()


def synthesize(amplitudes: Tensor, noise: Tensor, f0: Tensor, noise_start: Tensor) -> Tensor:
    """Whole notes: amplitudes [B, T, H], noise [B, T, K] (frame controls, frame t reached at
    the end of block t, silence before frame 0), f0 [B] Hz, noise_start [B] loop offsets
    -> audio [B, T * BLOCK]."""
    b, t, _ = amplitudes.shape
    alpha = torch.from_numpy(fade_in())  # [BLOCK]
    tables = wavetables(amplitudes)  # [B, T, TABLE + 1]
    ph = phases(f0, torch.zeros(b), t * BLOCK).reshape(b, t, BLOCK)
    current = read_tables(tables, ph)  # [B, T, BLOCK]
    previous = read_tables(torch.cat([torch.zeros_like(tables[:, :1]), tables[:, :-1]], 1), ph)
    harmonic = previous + (current - previous) * alpha
    bands = torch.from_numpy(noise_bands(noise.shape[-1]))  # [K, LOOP]
    idx = (noise_start[:, None] + torch.arange(t * BLOCK)) % NOISE_LOOP  # [B, S]
    band_audio = bands[:, idx].permute(1, 0, 2).reshape(b, -1, t, BLOCK)  # [B, K, T, BLOCK]
    prev_noise = torch.cat([torch.zeros_like(noise[:, :1]), noise[:, :-1]], 1)  # [B, T, K]
    gain = (prev_noise.transpose(1, 2)[..., None] * (1 - alpha)
            + noise.transpose(1, 2)[..., None] * alpha)  # [B, K, T, BLOCK]
    return (harmonic + (gain * band_audio).sum(1)).reshape(b, t * BLOCK)
