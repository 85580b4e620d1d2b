"""The synth network as a block-by-block step for many voices at once (numpy, no autograd).

The streaming state is explicit, as for the note models: per layer a ring of the last
`dilation` layer inputs of every voice slot (WaveNet's conv queues), the previous frame's
wavetable and noise gains (what the next block crossfades from), and each voice's sample
count (its phase). A step computes one frame of every active voice (one compiled call over
the voices, musegen.synth.kernels), then one block of samples each.
"""

from __future__ import annotations

import numpy as np

from musegen.synth import dsp
from musegen.synth.kernels import conv_stack, split_controls, synth_block
from musegen.synth.model import SynthNet
from musegen.synth.spec import BLOCK, SAMPLE_RATE


def _np(t: object) -> np.ndarray:
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)  # type: ignore[attr-defined]


def _pad_inputs(w: np.ndarray, multiple: int = 32) -> np.ndarray:
    """[out, F] -> [out, P]: zero columns up to P, the next multiple of `multiple`."""
    extra = -w.shape[1] % multiple
    return np.ascontiguousarray(np.pad(w, ((0, 0), (0, extra))), dtype=np.float32)


class CompiledSynth:
    """The weights of a SynthNet laid out for `kernels.conv_stack`: [out, in] matrices
    stacked per layer; the dilated conv's two taps and the conditioning side by side
    (past, now, cond); the conditioning inputs are zero-padded to a multiple of 32."""

    def __init__(self, net: SynthNet) -> None:
        cfg = net.config
        self.config = cfg
        self.embeddings = _np(net.timbre.weight)  # [I, E]
        self.tuning = _np(net.tuning)  # [I, 128] cents
        self.w_in, self.b_in = _pad_inputs(_np(net.inp.weight)), _np(net.inp.bias)  # [C, P]
        convs = [_np(conv.weight) for conv in net.dilated]  # [2C, C, 2]: tap 0 is the past
        conds = [_pad_inputs(_np(lc.weight)) for lc in net.cond]  # [2C, P]
        self.w_gate = np.stack([np.concatenate([w[:, :, 0], w[:, :, 1], wc], axis=1)
                                for w, wc in zip(convs, conds, strict=True)])  # [L, 2C, 2C + P]
        self.b_gate = np.stack([_np(conv.bias) for conv in net.dilated])  # [L, 2C]
        self.w_out = np.stack([np.concatenate([_np(sk.weight), _np(res.weight)])
                               for sk, res in zip(net.skip, net.residual, strict=True)])
        self.b_out = np.stack([np.concatenate([_np(sk.bias), _np(res.bias)])
                               for sk, res in zip(net.skip, net.residual, strict=True)])
        self.w_h1, self.b_h1 = _np(net.head1.weight), _np(net.head1.bias)
        self.w_h2, self.b_h2 = _np(net.head2.weight), _np(net.head2.bias)
        self.dilations = np.array(cfg.dilations, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.dilations)[:-1]]).astype(np.int64)
        bands = dsp.noise_bands(cfg.noise_bands)  # [K, LOOP]; + the loop's start, see synth_block
        self.bands = np.ascontiguousarray(np.concatenate([bands, bands[:, :BLOCK]], axis=1))


class SynthStream:
    """Streaming state for `slots` voices: the conv queues of every slot, the previous
    frame's wavetable and noise gains; `controls` + `synthesize` make one block."""

    def __init__(self, synth: CompiledSynth, slots: int) -> None:
        cfg = synth.config
        self.synth = synth
        self.slots = slots
        # every layer's ring of past inputs, per slot: [slots, sum(dilations), C]
        self.queue = np.zeros((slots, int(synth.dilations.sum()), cfg.channels), np.float32)
        self.prev_table = np.zeros((slots, dsp.TABLE + 1), np.float32)
        self.prev_noise = np.zeros((slots, cfg.noise_bands), np.float32)
        self.frame = 0  # blocks stepped: the queues' ring position
        self.alpha = dsp.fade_in()
        # per-block scratch, reused: bins above the harmonics stay zero for good
        self._spectrum = np.zeros((slots, dsp.TABLE // 2 + 1), np.complex64)
        self._raw = np.empty((slots, cfg.outputs), np.float32)
        self._amps = np.empty((slots, cfg.harmonics), np.float32)
        self._noise = np.empty((slots, cfg.noise_bands), np.float32)
        self._audio = np.empty((slots, BLOCK), np.float32)

    def reset(self, slot: int) -> None:
        """Silence before a new note's first frame, as the offline path's zero padding."""
        self.queue[slot] = 0.0
        self.prev_table[slot] = 0.0
        self.prev_noise[slot] = 0.0

    def controls(self, active: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """One frame of the conv stack: cond [k, NOTE_FEATURES + E] -> raw outputs [k, O]
        (a scratch view, valid until the next call)."""
        s = self.synth
        out = self._raw[: len(active)]
        conv_stack(np.ascontiguousarray(cond, np.float32), np.asarray(active, np.int64),
                   self.frame, self.queue, s.offsets, s.dilations, s.w_in, s.b_in, s.w_gate,
                   s.b_gate, s.w_out, s.b_out, s.w_h1, s.b_h1, s.w_h2, s.b_h2, out)
        return out

    def split(self, raw: np.ndarray, f0: np.ndarray, fade: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """As model.split_outputs; `fade` [k] scales a voice's target to silence (scratch
        views, valid until the next call)."""
        cfg = self.synth.config
        amps, noise = self._amps[: len(raw)], self._noise[: len(raw)]
        split_controls(raw, np.asarray(f0, np.float64), np.asarray(fade, np.float32),
                       cfg.harmonics, SAMPLE_RATE / 2, amps, noise)
        return amps, noise

    def synthesize(self, active: np.ndarray, amps: np.ndarray, noise: np.ndarray,
                   f0: np.ndarray, sample: np.ndarray, noise_start: np.ndarray) -> np.ndarray:
        """One block of each active voice [k, BLOCK] (a scratch view, valid until the next
        call); sample [k] is each voice's sample count. The new tables and gains become the
        slots' previous ones."""
        k = len(active)
        spectrum = self._spectrum[:k]
        np.multiply(amps, np.complex64(-0.5j * dsp.TABLE), out=spectrum[:, 1 : amps.shape[1] + 1])
        tables = np.fft.irfft(spectrum, n=dsp.TABLE, axis=1)  # [k, TABLE]
        out = self._audio[:k]
        synth_block(tables, self.prev_table, np.asarray(active, np.int64), noise,
                    self.prev_noise, self.synth.bands, np.asarray(f0, np.float64),
                    np.asarray(sample, np.int64), np.asarray(noise_start, np.int64), self.alpha,
                    float(SAMPLE_RATE), out)
        return out
