"""Multi-resolution STFT distance (RAVE's and DDSP's training loss, and our quality figure).

Per FFT size: L1 between magnitudes plus L1 between log magnitudes, averaged over sizes.
Short windows judge attacks, long ones judge pitch and partials.
"""

from __future__ import annotations

import torch
from torch import Tensor

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
LOG_FLOOR = 1e-5


def _magnitude(x: Tensor, n_fft: int) -> Tensor:
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
    return spec.abs()  # [B, n_fft // 2 + 1, frames]


def multi_resolution_stft(predicted: Tensor, target: Tensor,
                          sizes: tuple[int, ...] = FFT_SIZES) -> Tensor:
    """predicted, target [B, S] -> per-example distance [B]."""
    total = torch.zeros(predicted.shape[0])
    for n in sizes:
        p, t = _magnitude(predicted, n), _magnitude(target, n)
        lin = (p - t).abs().mean(dim=(1, 2))
        log = (torch.log(p + LOG_FLOOR) - torch.log(t + LOG_FLOOR)).abs().mean(dim=(1, 2))
        total = total + lin + log
    return total / len(sizes)
