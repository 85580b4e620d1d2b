"""`musegen bench`: the neural synth's speed, one thread, 8 voices sounding, 48 kHz.

Per synth: block latency (p50/p99 of `PolySynth.render_block`, 256 samples = 5.33 ms of
sound) and the real-time factor (seconds of sound per second of compute); the baseline, in
the same run, is the same network without streaming state: each block recomputes its
receptive field through the offline (torch) path, as a synth without conv queues must.

Raspberry Pi 4 estimate: the same run times numpy's LINPACK solve (2000 x 2000, float64,
one BLAS thread) here; the Pi 4 figure for that benchmark is 812 MFLOPS (sci-pi.org.uk's
linpack.py on a standard Pi 4). The estimate scales our real-time factor by the ratio. It is
a rough guide: the synth's block is as much Python and numpy dispatch as arithmetic, and the
Pi's BLAS may differ from the wheel's OpenBLAS.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bench.steps import timed
from musegen.synth import spec
from musegen.synth.checkpoint import load_synth, shipped_synths
from musegen.synth.model import SynthNet, note_features
from musegen.synth.voices import PolySynth

VOICES = 8
PI4_LINPACK_MFLOPS = 812.0
LINPACK_N = 2000
BLOCK_MS = 1e3 * spec.BLOCK / spec.SAMPLE_RATE


def sounding_synth(net: SynthNet) -> PolySynth:
    """8 held notes of the default morph, already sounding."""
    synth = PolySynth(net)
    for i in range(VOICES):
        synth.note_on(0, 0, 48 + 3 * i, 100)
    for _ in range(20):
        synth.render_block()
    return synth


def no_streaming_block(net: SynthNet) -> None:
    """One block the way a synth without conv queues makes it: the whole receptive field."""
    frames = net.config.receptive_field
    feats = torch.from_numpy(note_features(60, 100, 10_000, frames))[None].repeat(VOICES, 1, 1)
    timbre = net.embed(torch.zeros(VOICES, dtype=torch.long))
    f0 = torch.full((VOICES,), 261.6, dtype=torch.float64)
    with torch.no_grad():
        net.render(feats, timbre, f0, torch.zeros(VOICES, dtype=torch.long))


def linpack_mflops() -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((LINPACK_N, LINPACK_N))
    b = a @ np.ones(LINPACK_N)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        np.linalg.solve(a, b)
        best = min(best, time.perf_counter() - t0)
    flops = 2.0 / 3.0 * LINPACK_N**3 + 2.0 * LINPACK_N**2
    return flops / best / 1e6


def synth_row(name: str, blocks: int, mflops: float) -> dict[str, Any]:
    net, meta = load_synth(name)
    synth = sounding_synth(net)
    ours = timed(synth.render_block, blocks)
    t0 = time.perf_counter()
    for _ in range(blocks):
        synth.render_block()
    mean_ms = (time.perf_counter() - t0) * 1e3 / blocks
    baseline = timed(lambda: no_streaming_block(net), max(20, blocks // 50), warmup=3)
    rtf = BLOCK_MS / mean_ms
    pi_ratio = PI4_LINPACK_MFLOPS / mflops
    return {
        "name": meta.name, "kind": "audio", "family": "synth-wavenet",
        "params": sum(p.numel() for p in net.parameters()), "voices": VOICES,
        "block": spec.BLOCK, "sample_rate": spec.SAMPLE_RATE, "block_ms": round(BLOCK_MS, 3),
        "block_ms_p50": round(ours["p50"], 4), "block_ms_p99": round(ours["p99"], 4),
        "realtime_factor": round(rtf, 1),
        "no_streaming_block_ms_p50": round(baseline["p50"], 3),
        "speedup_vs_no_streaming": round(baseline["p50"] / ours["p50"], 1),
        "pi4_estimate": {"linpack_mflops_here": round(mflops, 1),
                         "linpack_mflops_pi4": PI4_LINPACK_MFLOPS,
                         "ratio": round(pi_ratio, 3),
                         "realtime_factor": round(rtf * pi_ratio, 1),
                         "block_ms_p99": round(ours["p99"] / pi_ratio, 3)},
    }


def synth_rows(names: list[str] | None, blocks: int) -> list[dict[str, Any]]:
    names = names if names is not None else [m.name for m in shipped_synths()]
    if not names:
        return []
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        mflops = linpack_mflops()
        return [synth_row(name, blocks, mflops) for name in names]
