"""What the audio tests share: the synth they play, an onset detector, the fit. (WAV files
are read by musegen.synth.dataset.read_wav.)

`synth` (a session fixture) is the shipped "synth-wavenet".

The onset detector is energy-based and meant for a sparse drum pattern: the synth's voices
end in exact silence (a voice fades out and its slot goes quiet), so a note heard after a
quiet stretch starts where the short-time energy first rises over a floor far below the
loudest frame. The floor is -90 dB: a voice fades in over its first block, and its first
samples lie 60 to 85 dB under the peak, so at -50 dB the onset came 15 samples late on quiet
notes. Notes that start while another still sounds are not looked for: the untrained
synth's drums are steady pulse trains with no attack to find inside a sounding note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

SHIPPED_SYNTH = "synth-wavenet"


@pytest.fixture(scope="session")
def synth() -> str:
    """`--synth` for the tests: the shipped synth (a missing one fails here, by name)."""
    from musegen.synth.checkpoint import resolve_synth

    resolve_synth(SHIPPED_SYNTH)
    return SHIPPED_SYNTH


def onsets(x: np.ndarray, rate: int, *, hop: int = 16, floor_db: float = -90.0,
           quiet_s: float = 0.05) -> list[int]:
    """Samples where sound starts after at least `quiet_s` below the floor (`floor_db` under
    the loudest `hop`-sample frame): the first sample over the floor in the first frame
    over it. The recording's start counts as sound, so a note already sounding is no onset."""
    frames = len(x) // hop
    if frames == 0:
        return []
    power = x[: frames * hop].reshape(frames, hop) ** 2
    energy = power.mean(axis=1)
    floor = float(energy.max()) * 10.0 ** (floor_db / 10.0)
    need = math.ceil(quiet_s * rate / hop)
    found, quiet = [], 0
    for k in range(frames):
        if energy[k] <= floor:
            quiet += 1
            continue
        if quiet >= need:
            within = int(np.argmax(power[k] > floor))  # first sample over, if one is
            found.append(k * hop + (within if power[k, within] > floor else 0))
        quiet = 0
    return found


@dataclass(frozen=True)
class Alignment:
    offset: float  # recording sample minus scheduled sample
    residuals: list[float]  # per detected onset, against its nearest scheduled note

    def within(self, bound: float) -> list[float]:
        return [r for r in self.residuals if abs(r) <= bound]

    def summary(self, bound: float) -> str:
        kept = np.abs(self.within(bound))
        if not len(kept):
            return f"no onset within {bound:g} samples"
        return (f"median {np.median(kept):.0f}, max {kept.max():.0f} samples; "
                f"{len(self.residuals) - len(kept)} beyond {bound:g}")


def align(detected: Sequence[int], scheduled: Sequence[float], tolerance: float,
          search: float = 3000.0) -> Alignment:
    """One constant offset between onsets found in a recording that began before the first
    note and the scheduled note times, both in samples. The first onset against the first
    note is the guess; the offset within `search` of it (less than half a 16th at 120 BPM,
    so never a step of the grid) that puts the most onsets within `tolerance` of a note
    wins, refined to their median. Residuals: each onset against its nearest note."""
    if not detected or not scheduled:
        return Alignment(math.nan, [])
    times = np.sort(np.asarray(scheduled, dtype=np.float64))

    def residual(d: int, offset: float) -> float:
        return float(d - offset - times[np.argmin(np.abs(times + offset - d))])

    def matches(offset: float) -> int:
        return sum(abs(residual(d, offset)) <= tolerance for d in detected)

    guess = float(detected[0] - times[0])
    candidates = [float(d - t) for d in detected for t in times if abs(d - t - guess) <= search]
    best = max(candidates, key=lambda c: (matches(c), -abs(c - guess)))
    close = [best + r for d in detected if abs(r := residual(d, best)) <= tolerance]
    offset = float(np.median(close))
    return Alignment(offset, [residual(d, offset) for d in detected])
