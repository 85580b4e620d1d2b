"""Training the synth on rendered notes: multi-resolution STFT loss, whole notes, CPU-sized.

Batches draw an instrument group first (the kit counts as one group, so nine drum pieces do
not crowd out six instruments), then a training note of it. The held-out notes (every 5th
pitch, one velocity) are the validation set; they are never trained on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from musegen.synth import spec
from musegen.synth.dataset import NoteSet
from musegen.synth.dsp import noise_offset
from musegen.synth.losses import multi_resolution_stft
from musegen.synth.model import SynthConfig, SynthNet, note_features, pitch_hz
from musegen.synth.pitch import tuning_map

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    steps: int = 2000
    batch: int = 16
    lr: float = 2e-3
    seed: int = 0
    eval_every: int = 250
    eval_notes: int = 64


@dataclass
class Batch:
    features: torch.Tensor  # [B, T, NOTE_FEATURES]
    instrument: torch.Tensor  # [B]
    pitch: torch.Tensor  # [B]
    f0: torch.Tensor  # [B] Hz, as the instrument is tuned
    noise_start: torch.Tensor  # [B]
    audio: torch.Tensor  # [B, T * BLOCK]


_FEATURES: dict[tuple[int, int], np.ndarray] = {}


def make_batch(notes: NoteSet, index: np.ndarray, tuning: torch.Tensor) -> Batch:
    feats = []
    for i in index:
        key = (int(notes.pitch[i]), int(notes.velocity[i]))
        if key not in _FEATURES:
            _FEATURES[key] = note_features(key[0], key[1], spec.GATE_FRAMES, spec.NOTE_FRAMES)
        feats.append(_FEATURES[key])
    instrument = torch.from_numpy(notes.instrument[index].astype(np.int64))
    pitch = torch.from_numpy(notes.pitch[index].astype(np.int64))
    f0 = pitch_hz(pitch) * 2.0 ** (tuning[instrument, pitch].double() / 1200.0)
    return Batch(torch.from_numpy(np.stack(feats)), instrument, pitch, f0,
                 torch.tensor([noise_offset(int(p)) for p in notes.pitch[index]]),
                 torch.from_numpy(notes.audio[index]))


def group_sampler(notes: NoteSet, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Draw note indices: a group (one instrument, or the whole kit), then a note of it."""
    groups: dict[str, list[int]] = {}
    for i, inst in enumerate(notes.instrument):
        name = spec.INSTRUMENTS[int(inst)]
        groups.setdefault("kit" if name.drum else name.name, []).append(i)
    members = [np.array(v) for v in groups.values()]

    def draw(n: int) -> np.ndarray:
        picks = rng.integers(0, len(members), n)
        return np.array([rng.choice(members[g]) for g in picks])

    return draw


def loss_on(model: SynthNet, batch: Batch) -> torch.Tensor:
    audio = model.render(batch.features, model.embed(batch.instrument), batch.f0,
                         batch.noise_start)
    return multi_resolution_stft(audio, batch.audio).mean()


def evaluate(model: SynthNet, notes: NoteSet, count: int) -> float:
    idx = np.linspace(0, len(notes) - 1, min(count, len(notes))).astype(int)
    with torch.no_grad():
        return float(np.mean([loss_on(model, make_batch(notes, idx[i : i + 16],
                                                        model.tuning)).item()
                              for i in range(0, len(idx), 16)]))


def train(notes: NoteSet, config: SynthConfig, tc: TrainConfig,
          progress: bool = True) -> tuple[SynthNet, dict[str, float]]:
    torch.manual_seed(tc.seed)
    rng = np.random.default_rng(tc.seed)
    train_set, held = notes.subset(~notes.held_out), notes.subset(notes.held_out)
    model = SynthNet(config)
    model.tuning.copy_(torch.from_numpy(tuning_map(train_set)))
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, tc.lr, total_steps=tc.steps,
                                                pct_start=0.05)
    draw = group_sampler(train_set, rng)
    started = time.perf_counter()
    figures: dict[str, float] = {}
    bar = tqdm(range(tc.steps), desc="training synth", unit="step", disable=not progress)
    for step in bar:
        loss = loss_on(model, make_batch(train_set, draw(tc.batch), model.tuning))
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % tc.eval_every == 0 or step + 1 == tc.steps:
            model.eval()
            figures["held_out_mrstft"] = evaluate(model, held, tc.eval_notes)
            model.train()
            logger.info("step %d: train %.4f, held out %.4f", step + 1, loss.item(),
                        figures["held_out_mrstft"])
    figures["train_mrstft_last"] = float(loss.item())
    figures["train_seconds"] = time.perf_counter() - started
    model.eval()
    return model, figures
