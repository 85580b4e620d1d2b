"""The synth's quality on held-out notes, against two baselines measured in the same run.

- multi-resolution STFT distance (the training loss's formula);
- loudness L1 in dB: A-weighted power per 2048-sample frame (DDSP's loudness feature), over
  the frames where the reference is within 60 dB of its loudest;
- pitch error in cents (melodic instruments): the f0 of the held part of the note
  (musegen.synth.pitch.f0_estimate), model against reference.

Baselines: a sine at the note's pitch carrying the reference's own RMS envelope (an oracle
envelope, so it is a generous baseline), and the nearest training note of the same
instrument (nearest pitch, then velocity) resampled to the pitch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from musegen.synth import spec
from musegen.synth.dataset import NoteSet
from musegen.synth.losses import multi_resolution_stft
from musegen.synth.model import SynthNet
from musegen.synth.pitch import f0_estimate
from musegen.synth.train import make_batch

LOUD_FRAME = 2048
LOUD_HOP = 512
LOUD_RANGE_DB = 60.0


def a_weighting_db(freqs: np.ndarray) -> np.ndarray:
    f2 = np.maximum(freqs, 1e-3) ** 2
    ra = (12194.0**2 * f2**2) / ((f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2))
                                 * (f2 + 12194.0**2))
    return np.asarray(20 * np.log10(ra) + 2.0)


_WEIGHT = 10 ** (a_weighting_db(np.fft.rfftfreq(LOUD_FRAME, 1 / spec.SAMPLE_RATE)) / 10)


def loudness_db(x: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, LOUD_FRAME)[::LOUD_HOP]
    power = np.abs(np.fft.rfft(frames * np.hanning(LOUD_FRAME), axis=1)) ** 2
    return np.asarray(10 * np.log10((power * _WEIGHT).mean(axis=1) + 1e-12), dtype=np.float64)


def loudness_l1(predicted: np.ndarray, reference: np.ndarray) -> float:
    lp, lr = loudness_db(predicted), loudness_db(reference)
    keep = lr > lr.max() - LOUD_RANGE_DB
    return float(np.abs(lp[keep] - lr[keep]).mean())


def cents(f: float, ref: float) -> float:
    return float(abs(1200 * np.log2(f / ref))) if f > 0 and ref > 0 else float("nan")


def sine_baseline(reference: np.ndarray, pitch: int) -> np.ndarray:
    env = np.sqrt(np.mean(reference.reshape(-1, spec.BLOCK) ** 2, axis=1))  # [frames]
    env = np.repeat(env, spec.BLOCK)
    t = np.arange(len(reference)) / spec.SAMPLE_RATE
    return np.asarray(np.sqrt(2) * env * np.sin(2 * np.pi * spec.midi_to_hz(pitch) * t),
                      dtype=np.float32)


def resampled_baseline(train: NoteSet, instrument: int, pitch: int, velocity: int
                       ) -> np.ndarray:
    same = np.flatnonzero(train.instrument == instrument)
    order = np.lexsort((np.abs(train.velocity[same] - velocity),
                        np.abs(train.pitch[same] - pitch)))
    source = same[order[0]]
    ratio = 2.0 ** ((pitch - int(train.pitch[source])) / 12.0)
    x = train.audio[source]
    pos = np.arange(len(x)) * ratio
    return np.asarray(np.interp(pos, np.arange(len(x)), x, right=0.0), dtype=np.float32)


def evaluate(net: SynthNet, notes: NoteSet) -> dict[str, Any]:
    """Per-note figures on the held-out notes, summarised per system and instrument kind."""
    train, held = notes.subset(~notes.held_out), notes.subset(notes.held_out)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(held), 16):
        idx = np.arange(start, min(start + 16, len(held)))
        batch = make_batch(held, idx, net.tuning)
        with torch.no_grad():
            model_audio = net.render(batch.features, net.embed(batch.instrument), batch.f0,
                                     batch.noise_start).numpy()
        for j, i in enumerate(idx):
            rows.extend(_note_rows(train, held, int(i), model_audio[j]))
    return summarise(rows)


def _note_rows(train: NoteSet, held: NoteSet, i: int, model_audio: np.ndarray
               ) -> list[dict[str, Any]]:
    ref = held.audio[i]
    inst, pitch, vel = int(held.instrument[i]), int(held.pitch[i]), int(held.velocity[i])
    drum = spec.INSTRUMENTS[inst].drum
    systems = {"model": model_audio, "sine": sine_baseline(ref, pitch),
               "nearest_resampled": resampled_baseline(train, inst, pitch, vel)}
    ref_t = torch.from_numpy(ref)[None]
    f_ref = np.nan if drum else f0_estimate(ref, spec.midi_to_hz(pitch))
    out = []
    for name, audio in systems.items():
        row = {"system": name, "drum": drum,
               "mrstft": float(multi_resolution_stft(torch.from_numpy(audio)[None], ref_t)[0]),
               "loudness_l1_db": loudness_l1(audio, ref)}
        if not drum:
            row["pitch_cents"] = cents(f0_estimate(audio, spec.midi_to_hz(pitch)), f_ref)
        out.append(row)
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for system in ("model", "sine", "nearest_resampled"):
        mine = [r for r in rows if r["system"] == system]
        entry: dict[str, Any] = {}
        for kind, subset in (("melodic", [r for r in mine if not r["drum"]]),
                             ("drums", [r for r in mine if r["drum"]])):
            fig = {"notes": len(subset),
                   "mrstft": float(np.mean([r["mrstft"] for r in subset])),
                   "loudness_l1_db": float(np.mean([r["loudness_l1_db"] for r in subset]))}
            if kind == "melodic":
                c = np.array([r["pitch_cents"] for r in subset])
                fig["pitch_cents_median"] = float(np.nanmedian(c))
                fig["pitch_cents_p90"] = float(np.nanpercentile(c, 90))
            entry[kind] = fig
        table[system] = entry
    return table
