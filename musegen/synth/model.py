"""The synth network: gated dilated causal convolutions at the frame rate -> synth controls.

One frame per 256-sample block. Per frame it sees the note (pitch, velocity, the gate, how
long ago the key went down and up) and a timbre embedding; every layer adds its own
projection of that conditioning to its gate (WaveNet's local conditioning). Out come the
harmonic amplitudes and noise band gains that musegen.synth.dsp turns into samples. The
timbre is a vector, not an id: a blend of embeddings is a timbre between instruments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musegen.synth import dsp
from musegen.synth.spec import INSTRUMENTS

NOTE_FEATURES = 5  # pitch, velocity, gate, onset age, release age
AGE_SCALE = math.log1p(256.0)


@dataclass
class SynthConfig:
    instruments: int = len(INSTRUMENTS)
    embedding: int = 16
    channels: int = 64
    skip_channels: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    harmonics: int = 60
    noise_bands: int = 24

    @property
    def receptive_field(self) -> int:
        return sum(self.dilations) + 1

    @property
    def outputs(self) -> int:
        return 1 + self.harmonics + self.noise_bands

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        d = dict(d)
        d["dilations"] = tuple(d["dilations"])
        return cls(**d)


PRESETS = {
    "debug": SynthConfig(embedding=4, channels=8, skip_channels=8, dilations=(1, 2, 4),
                         harmonics=8, noise_bands=4),
    "small": SynthConfig(),
}


def note_features(pitch: float, velocity: float, gate_frames: int, frames: int,
                  start: int = 0) -> np.ndarray:
    """[frames, NOTE_FEATURES] the conditioning of frames start..start+frames-1 of a note
    held for gate_frames (frame 0: the block the key went down in)."""
    t = np.arange(start, start + frames, dtype=np.float32)
    out = np.empty((frames, NOTE_FEATURES), dtype=np.float32)
    out[:, 0] = (pitch - 60.0) / 24.0
    out[:, 1] = velocity / 127.0
    out[:, 2] = t < gate_frames
    out[:, 3] = np.log1p(np.minimum(t, 256.0)) / AGE_SCALE
    out[:, 4] = np.where(t < gate_frames, 0.0,
                         np.log1p(np.clip(t - gate_frames + 1, 0.0, 256.0)) / AGE_SCALE)
    return out


def exp_sigmoid(x: Tensor) -> Tensor:
    """DDSP's positive output: a sigmoid scaled to (0, 2], steep in dB."""
    return 2.0 * torch.sigmoid(x) ** math.log(10.0) + 1e-7


class SynthNet(nn.Module):
    tuning: Tensor  # [instruments, 128] cents, a buffer: saved with the weights

    def __init__(self, config: SynthConfig) -> None:
        super().__init__()
        self.config = config
        c, s = config.channels, config.skip_channels
        cond = config.embedding + NOTE_FEATURES
        self.timbre = nn.Embedding(config.instruments, config.embedding)
        self.inp = nn.Linear(cond, c)
        self.dilated = nn.ModuleList(nn.Conv1d(c, 2 * c, 2, dilation=d) for d in config.dilations)
        self.cond = nn.ModuleList(nn.Linear(cond, 2 * c, bias=False) for _ in config.dilations)
        self.residual = nn.ModuleList(nn.Linear(c, c) for _ in config.dilations)
        self.skip = nn.ModuleList(nn.Linear(c, s) for _ in config.dilations)
        self.head1 = nn.Linear(s, s)
        self.head2 = nn.Linear(s, config.outputs)
        # cents off equal temperament per instrument and MIDI note (musegen.synth.pitch)
        self.register_buffer("tuning", torch.zeros(config.instruments, 128))

    def f0(self, instrument: Tensor, pitch: Tensor) -> Tensor:
        """[B] Hz (float64) of each note as its instrument is tuned."""
        cents = self.tuning[instrument, pitch].double()
        return pitch_hz(pitch) * 2.0 ** (cents / 1200.0)

    def embed(self, instrument: Tensor) -> Tensor:
        return cast(Tensor, self.timbre(instrument))

    def controls(self, features: Tensor, timbre: Tensor) -> Tensor:
        """features [B, T, NOTE_FEATURES], timbre [B, E] -> raw outputs [B, T, outputs]."""
        cond = torch.cat([features, timbre[:, None].expand(-1, features.shape[1], -1)], -1)
        h = self.inp(cond)  # [B, T, C]
        skip = torch.zeros(*h.shape[:2], self.config.skip_channels)
        for d, conv, lc, res, sk in zip(self.config.dilations, self.dilated, self.cond,
                                        self.residual, self.skip, strict=True):
            x = F.pad(h.transpose(1, 2), (d, 0))  # [B, C, d + T]: zeros before the note
            z = conv(x).transpose(1, 2) + lc(cond)  # [B, T, 2C]
            a, b = z.chunk(2, dim=-1)
            g = torch.tanh(a) * torch.sigmoid(b)  # [B, T, C]
            skip = skip + sk(g)
            h = h + res(g)
        return cast(Tensor, self.head2(F.relu(self.head1(F.relu(skip)))))

    def forward(self, features: Tensor, timbre: Tensor, f0: Tensor) -> tuple[Tensor, Tensor]:
        """-> harmonic amplitudes [B, T, H] and noise gains [B, T, K] (see split_outputs)."""
        return split_outputs(self.controls(features, timbre), f0, self.config.harmonics)

    def render(self, features: Tensor, timbre: Tensor, f0: Tensor,
               noise_start: Tensor) -> Tensor:
        """Whole notes (f0 [B] Hz) -> audio [B, T * BLOCK] (the offline path training uses)."""
        amps, noise = self(features, timbre, f0)
        return dsp.synthesize(amps, noise, f0, noise_start)


def pitch_hz(pitch: Tensor) -> Tensor:
    """Hz in float64: a phase over a long note must not drift with float32 rounding."""
    return 440.0 * 2.0 ** ((pitch.double() - 69.0) / 12.0)


def split_outputs(raw: Tensor, f0: Tensor, harmonics: int) -> tuple[Tensor, Tensor]:
    """Raw [B, T, 1 + H + K] -> amplitudes [B, T, H] (loudness x a distribution over the
    harmonics below Nyquist) and noise gains [B, T, K]."""
    loud = exp_sigmoid(raw[..., :1])  # [B, T, 1]
    mask = dsp.harmonic_mask(f0, harmonics)[:, None, :]  # [B, 1, H]
    logits = raw[..., 1 : 1 + harmonics].masked_fill(mask == 0, -1e9)
    amps = loud * torch.softmax(logits, dim=-1) * mask
    noise = exp_sigmoid(raw[..., 1 + harmonics :] - 5.0) * 0.05  # starts quiet
    return amps, noise
