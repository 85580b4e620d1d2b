"""The f0 of a held note, and the instruments' tuning map measured from the training notes.

A sound font's samples are not tuned to equal temperament (FluidR3's piano is stretched by
up to +20 cents, its sample zones jump by 10 cents); a synth that played the nominal pitch
would be off by that. So the synth carries a tuning map: cents per instrument and MIDI note,
measured on the training notes (median over velocities), filled between and beyond them
from the nearest measured notes. Held-out notes are never measured.
"""

from __future__ import annotations

import numpy as np

from musegen.synth import spec
from musegen.synth.dataset import NoteSet

TUNING_SEARCH_CENTS = 60.0  # a sample is never tuned further off than this
FFT = 1 << 18  # zero-padded: 0.18 Hz bins before the peak interpolation


def f0_estimate(x: np.ndarray, nominal: float, search_cents: float = 100.0) -> float:
    """f0 of the held part (0.1 to 0.5 s): the spectral peaks near the first two harmonics
    of the nominal pitch (within `search_cents`), their cents averaged by magnitude. Peaks,
    not autocorrelation: the autocorrelation of a decaying note leans to short lags (sharp)."""
    seg = x[int(0.1 * spec.SAMPLE_RATE) : int(0.5 * spec.SAMPLE_RATE)].astype(np.float64)
    mag = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), FFT))
    freqs = np.fft.rfftfreq(FFT, 1.0 / spec.SAMPLE_RATE)
    span = 2.0 ** (search_cents / 1200.0)
    offsets, weights = [], []
    for k in (1, 2):
        window = (freqs > k * nominal / span) & (freqs < k * nominal * span)
        if k * nominal * span >= spec.SAMPLE_RATE / 2 or not window.any():
            continue
        i = int(np.flatnonzero(window)[np.argmax(mag[window])])
        if i in (0, len(mag) - 1):
            continue
        a, b, c = np.log(mag[i - 1 : i + 2] + 1e-12)
        curve = a - 2 * b + c
        peak = freqs[i] + (0.5 * (a - c) / curve if curve != 0 else 0.0) * freqs[1]
        offsets.append(1200 * np.log2(peak / (k * nominal)))
        weights.append(mag[i])
    if not weights or max(weights) < 1e-6 * (mag.max() + 1e-12) or max(weights) == 0:
        return float("nan")
    return float(nominal * 2.0 ** (np.average(offsets, weights=weights) / 1200.0))


def tuning_map(train: NoteSet) -> np.ndarray:
    """[instruments, 128] cents off equal temperament, from training notes only."""
    table = np.zeros((len(spec.INSTRUMENTS), 128), np.float32)
    for index, inst in enumerate(spec.INSTRUMENTS):
        if inst.drum:
            continue  # a drum's "pitch" only names the piece
        measured: dict[int, list[float]] = {}
        for i in np.flatnonzero(train.instrument == index):
            nominal = spec.midi_to_hz(int(train.pitch[i]))
            f0 = f0_estimate(train.audio[i], nominal, TUNING_SEARCH_CENTS)
            if np.isfinite(f0):
                measured.setdefault(int(train.pitch[i]), []).append(1200 * np.log2(f0 / nominal))
        if not measured:
            continue
        keys = np.array(sorted(measured))
        values = np.array([np.median(measured[k]) for k in keys])
        # nearest measured note, not a line between: sample zones step, they do not slope
        nearest = np.abs(np.arange(128)[:, None] - keys[None]).argmin(axis=1)
        table[index] = values[nearest]
    return table
