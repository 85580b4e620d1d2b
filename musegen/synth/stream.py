"""The synth network as a block-by-block step for many voices at once (numpy, no autograd).

The streaming state is explicit, as for the note models: per layer a ring of the last
`dilation` layer inputs of every voice slot (WaveNet's conv queues), the previous frame's
wavetable and noise gains (what the next block crossfades from), and each voice's sample
count (its phase). A step computes one frame of every active voice: one matrix product per
layer over the voices, then one block of samples each.
"""

from __future__ import annotations

import numpy as np

from musegen.synth import dsp
from musegen.synth.kernels import synth_block
from musegen.synth.model import SynthNet
from musegen.synth.spec import BLOCK, SAMPLE_RATE


def _np(t: object) -> np.ndarray:
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)  # type: ignore[attr-defined]


class CompiledSynth:
    """The weights of a SynthNet as numpy matrices laid out for a step."""

    def __init__(self, net: SynthNet) -> None:
        cfg = net.config
        self.config = cfg
        self.embeddings = _np(net.timbre.weight)  # [I, E]
        self.tuning = _np(net.tuning)  # [I, 128] cents
        self.w_in, self.b_in = _np(net.inp.weight).T.copy(), _np(net.inp.bias)
        # folded for few calls per layer: [past, now] @ w_gate (the two taps of the dilated
        # conv), g @ [skip | residual], and every layer's conditioning in one product
        self.layers = []
        for conv, res, sk in zip(net.dilated, net.residual, net.skip, strict=True):
            w = _np(conv.weight)  # [2C, C, 2]: tap 0 reads `dilation` frames back
            w_gate = np.concatenate([w[:, :, 0].T, w[:, :, 1].T], axis=0)  # [2C_in, 2C]
            w_out = np.concatenate([_np(sk.weight).T, _np(res.weight).T], axis=1)  # [C, S + C]
            b_out = np.concatenate([_np(sk.bias), _np(res.bias)])
            self.layers.append((w_gate, _np(conv.bias), w_out, b_out))
        self.w_cond = np.concatenate([_np(lc.weight).T for lc in net.cond], axis=1)  # [cond, L*2C]
        self.w_h1, self.b_h1 = _np(net.head1.weight).T.copy(), _np(net.head1.bias)
        self.w_h2, self.b_h2 = _np(net.head2.weight).T.copy(), _np(net.head2.bias)
        self.bands = dsp.noise_bands(cfg.noise_bands)
        self.k = np.arange(1, cfg.harmonics + 1, dtype=np.float64)


class SynthStream:
    """Streaming state for `slots` voices; `step` renders one block of the active ones."""

    def __init__(self, synth: CompiledSynth, slots: int) -> None:
        cfg = synth.config
        self.synth = synth
        self.slots = slots
        self.queues = [np.zeros((slots, d, cfg.channels), np.float32) for d in cfg.dilations]
        self.prev_table = np.zeros((slots, dsp.TABLE + 1), np.float32)
        self.prev_noise = np.zeros((slots, cfg.noise_bands), np.float32)
        self.frame = 0  # blocks stepped: the queues' ring position
        self.alpha = dsp.fade_in()
        self._n = np.arange(BLOCK, dtype=np.float64)

    def reset(self, slot: int) -> None:
        """Silence before a new note's first frame, as the offline path's zero padding."""
        for q in self.queues:
            q[slot] = 0.0
        self.prev_table[slot] = 0.0
        self.prev_noise[slot] = 0.0

    def controls(self, active: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """One frame of the conv stack: cond [k, E + NOTE_FEATURES] -> raw outputs [k, O]."""
        s = self.synth
        c, sc = s.config.channels, s.config.skip_channels
        h = cond @ s.w_in + s.b_in  # [k, C]
        conds = cond @ s.w_cond  # [k, L * 2C]: each layer's own conditioning
        skip = np.zeros((len(active), sc), np.float32)
        for i, ((w_gate, b, w_out, b_out), q, d) in enumerate(zip(
                s.layers, self.queues, s.config.dilations, strict=True)):
            ring = self.frame % d
            taps = np.concatenate([q[active, ring], h], axis=1)  # [k, 2C]: d frames ago, now
            q[active, ring] = h
            z = taps @ w_gate + b + conds[:, 2 * c * i : 2 * c * (i + 1)]  # [k, 2C]
            g = np.tanh(z[:, :c]) * (1.0 / (1.0 + np.exp(-z[:, c:])))
            out = g @ w_out + b_out  # [k, S + C]
            skip += out[:, :sc]
            h = h + out[:, sc:]
        hidden = np.maximum(np.maximum(skip, 0.0) @ s.w_h1 + s.b_h1, 0.0)
        return np.asarray(hidden @ s.w_h2 + s.b_h2, dtype=np.float32)

    def split(self, raw: np.ndarray, f0: np.ndarray, fade: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """As model.split_outputs, in numpy; `fade` [k] scales a voice's target to silence."""
        h = self.synth.config.harmonics
        loud = 2.0 * (1.0 / (1.0 + np.exp(-raw[:, :1]))) ** np.log(10.0) + 1e-7
        mask = (f0[:, None] * self.synth.k < SAMPLE_RATE / 2)
        logits = np.where(mask, raw[:, 1 : 1 + h], -1e9)
        e = np.exp(logits - logits.max(axis=1, keepdims=True)) * mask
        amps = loud * e / e.sum(axis=1, keepdims=True) * fade[:, None]
        noise = (2.0 * (1.0 / (1.0 + np.exp(-(raw[:, 1 + h :] - 5.0)))) ** np.log(10.0)
                 + 1e-7) * 0.05 * fade[:, None]
        return amps.astype(np.float32), noise.astype(np.float32)

    def synthesize(self, active: np.ndarray, amps: np.ndarray, noise: np.ndarray,
                   f0: np.ndarray, sample: np.ndarray, noise_start: np.ndarray) -> np.ndarray:
        """One block of each active voice [k, BLOCK]; sample [k] is each voice's sample count."""
        spectrum = np.zeros((len(active), dsp.TABLE // 2 + 1), np.complex64)
        spectrum[:, 1 : amps.shape[1] + 1] = -0.5j * dsp.TABLE * amps
        table = np.empty((len(active), dsp.TABLE + 1), np.float32)
        table[:, : dsp.TABLE] = np.fft.irfft(spectrum, n=dsp.TABLE, axis=1)
        table[:, dsp.TABLE] = table[:, 0]
        out = np.empty((len(active), BLOCK), np.float32)
        synth_block(table, self.prev_table[active], noise, self.prev_noise[active],
                    self.synth.bands, f0.astype(np.float64), sample.astype(np.int64),
                    noise_start.astype(np.int64), self.alpha, float(SAMPLE_RATE), out)
        self.prev_table[active] = table
        self.prev_noise[active] = noise
        return out
