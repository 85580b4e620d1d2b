"""`musegen bench`: step latency and real-time factor of the shipped models, with baselines.

All timings run at batch 1 on one thread (`torch.set_num_threads(1)`, BLAS limited to one
thread), as on a Raspberry Pi core, and report medians and p99 over many steps after a
warm-up. Each model's step is timed on both paths, the runtime the engine uses (``step_ms_*``;
one numba-compiled call per step) and the torch reference
(``torch_step_ms_*``), in the same run. The LSTM section measures, for the shipped LSTM's
own shapes: our streaming step and the raw matrix-vector products of an LSTM step (the floor:
the faster of torch and numpy doing them; our step replaces layer 0's input product by a row
lookup, so it does 14% fewer multiply-adds than the floor at 2 x 256), taking turns so their
ratio is of one machine state, and a naive baseline that calls `torch.nn.LSTM` one token at
a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from musegen.checkpoint import LoadedModel, load_model, shipped_models
from musegen.generation.generator import BarGenerator, Controls
from musegen.generation.sampling import SamplingConfig
from musegen.models import LSTMConfig
from musegen.models.base import Generator
from musegen.runtime import CompiledStreamer, stepper_for

Stepper = Generator[Any] | CompiledStreamer[Any]

BAR_SECONDS_AT_120 = 2.0  # one 4/4 bar at 120 BPM
# Timed steps per model: a p99 of 500 is their fifth-slowest, which a few preemptions on a
# shared machine decide (drums-wavenet's read 0.29-0.32 ms in three runs and 0.54 in one);
# of 2000 it is the twentieth.
BENCH_STEPS = 2000


def timed(fn: Callable[[], object], steps: int, warmup: int = 20) -> dict[str, float]:
    """p50/p99 of one call in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = np.empty(steps)
    for i in range(steps):
        t0 = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - t0
    return {"p50": float(np.percentile(samples, 50) * 1e3),
            "p99": float(np.percentile(samples, 99) * 1e3)}


def timed_together(
    fns: list[Callable[[], object]], steps: int, block: int = 50
) -> list[dict[str, float]]:
    """p50/p99 of each call in milliseconds, the calls taking turns in blocks of `block`.

    For ratios: measured one after the other, two runs on this shared VM differed by 1.5x in
    the floor alone (0.086 against 0.130 ms); taking turns, both see the same machine. In
    blocks, not call by call: alternating single calls evicts each one's weights from the
    cache, which doubled both figures here. Each block starts with an untimed call.
    """
    samples: list[list[float]] = [[] for _ in fns]
    while len(samples[0]) < steps:
        for fn, times in zip(fns, samples, strict=True):
            fn()
            for _ in range(min(block, steps - len(times))):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
    return [{"p50": float(np.percentile(t, 50) * 1e3), "p99": float(np.percentile(t, 99) * 1e3)}
            for t in samples]


def _stepping(model: Stepper) -> Callable[[Any], object]:
    """state -> one step on token 3 (BAR), genre 0, density bin 0, called as the engine calls
    it: ``step_numpy`` with int arrays for our runtime, ``step`` with tensors for torch."""
    if isinstance(model, CompiledStreamer):
        ids = np.array([3]), np.array([0]), np.array([0])
        return lambda state: model.step_numpy(*ids, state)
    tensors = torch.tensor([3]), torch.tensor([0]), torch.tensor([0])
    return lambda state: model.step(*tensors, state)


def step_latency(loaded: LoadedModel, model: Stepper, steps: int) -> dict[str, float]:
    state = model.start_stream(1)
    step = _stepping(model)
    limit = getattr(loaded.model.config, "max_len", None)
    count = [0]

    def one() -> None:
        nonlocal state
        if limit is not None and count[0] >= limit:  # stay inside a bounded context
            state, count[0] = model.start_stream(1), 0
        step(state)
        count[0] += 1

    with torch.inference_mode():
        return timed(one, steps)


def step_latency_at_context(
    loaded: LoadedModel, model: Stepper, context: int, steps: int
) -> dict[str, float]:
    """A bounded-context model's step with `context` tokens already cached (its worst case)."""
    state = model.start_stream(1)
    step = _stepping(model)
    with torch.inference_mode():
        for _ in range(context):
            step(state)

        def one() -> None:
            state.position = context  # overwrite the same slot: the cache stays `context` deep
            step(state)

        return timed(one, steps)


def realtime_factor(loaded: LoadedModel, bars: int) -> float:
    """Seconds of music at 120 BPM generated per second of compute, at the busiest density."""
    meta = loaded.meta
    dense = meta.density_control.maximum
    gen = BarGenerator(loaded, SamplingConfig(temperature=1.0), seed=0)
    controls = Controls(meta.genres[0], dense)
    gen.next_bar(controls)  # warm-up
    t0 = time.perf_counter()
    for _ in range(bars):
        gen.next_bar(controls)
    return bars * BAR_SECONDS_AT_120 / (time.perf_counter() - t0)


def lstm_baseline(loaded: LoadedModel, steps: int) -> dict[str, Any]:
    """Our compiled step of `loaded` (an LSTM), the raw matvec floor of its shapes (torch and
    numpy) taking turns with it, and naive `nn.LSTM` stepping."""
    config = loaded.model.config
    assert isinstance(config, LSTMConfig)
    emb, hid, layers, vocab = config.d_embed, config.hidden, config.layers, config.vocab_size
    naive = nn.LSTM(emb, hid, layers).eval()
    head = nn.Linear(hid, vocab).eval()
    x = torch.randn(1, 1, emb)
    state = (torch.zeros(layers, 1, hid), torch.zeros(layers, 1, hid))

    def naive_step() -> None:
        nonlocal state
        out, state = naive(x, state)
        head(out[0])

    ours = stepper_for(loaded.model)
    ours_state, ours_step = ours.start_stream(1), _stepping(ours)
    with torch.inference_mode():
        step, floor_torch, floor_numpy = (t["p50"] for t in timed_together(
            [lambda: ours_step(ours_state), _torch_matvecs(emb, hid, layers, vocab),
             _numpy_matvecs(emb, hid, layers, vocab)], steps))
        floor = min(floor_torch, floor_numpy)
        naive_ms = timed(naive_step, steps)["p50"]
        return {
            "shape": {"layers": layers, "input": emb, "hidden": hid, "vocab": vocab},
            "model": loaded.meta.name, "ours_step_ms_p50": round(step, 6),
            "naive_step_ms_p50": naive_ms, "matmul_ms_p50": floor,
            "matmul_torch_ms_p50": floor_torch, "matmul_numpy_ms_p50": floor_numpy,
            "ratio_to_matmul": round(step / floor, 2),
            "speedup_vs_naive": round(naive_ms / step, 2),
        }


def _torch_matvecs(emb: int, hid: int, layers: int, vocab: int) -> Callable[[], None]:
    """An LSTM step's products, W_ih x and W_hh h per layer and the head, with torch.mv."""
    weights = [(torch.randn(4 * hid, emb if k == 0 else hid), torch.randn(4 * hid, hid))
               for k in range(layers)]
    w_head = torch.randn(vocab, hid)
    v_in, v_h = torch.randn(emb), torch.randn(hid)
    outs = [torch.empty(4 * hid) for _ in range(2 * layers)]
    out_head = torch.empty(vocab)

    def matvecs() -> None:
        for k, (w_ih, w_hh) in enumerate(weights):
            torch.mv(w_ih, v_in if k == 0 else v_h, out=outs[2 * k])
            torch.mv(w_hh, v_h, out=outs[2 * k + 1])
        torch.mv(w_head, v_h, out=out_head)

    return matvecs


def _numpy_matvecs(emb: int, hid: int, layers: int, vocab: int) -> Callable[[], None]:
    """The same products as numpy row-vector GEMMs: the floor numpy's BLAS sets (our step
    is one compiled call, musegen/runtime/kernels.py)."""
    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray[Any, Any]:
        return rng.standard_normal(shape, dtype=np.float32)

    weights = [(rand(emb if k == 0 else hid, 4 * hid), rand(hid, 4 * hid)) for k in range(layers)]
    w_head, v_in, v_h = rand(hid, vocab), rand(1, emb), rand(1, hid)
    out, out_head = rand(1, 4 * hid), rand(1, vocab)

    def matvecs() -> None:
        for k, (w_ih, w_hh) in enumerate(weights):
            np.matmul(v_in if k == 0 else v_h, w_ih, out=out)
            np.matmul(v_h, w_hh, out=out)
        np.matmul(v_h, w_head, out=out_head)

    return matvecs


def model_row(loaded: LoadedModel, steps: int, bars: int) -> dict[str, Any]:
    """One model's figures: the engine's compiled step, the torch step, the real-time
    factor."""
    fast, reference = stepper_for(loaded.model), loaded.model
    latency = step_latency(loaded, fast, steps)
    torch_latency = step_latency(loaded, reference, steps)
    row: dict[str, Any] = {
        "name": loaded.meta.name, "kind": "notes", "family": loaded.family,
        "part": loaded.meta.part,
        "params": loaded.model.num_parameters(), "runtime": fast.runtime,
        "step_ms_p50": round(latency["p50"], 4), "step_ms_p99": round(latency["p99"], 4),
        "torch_step_ms_p50": round(torch_latency["p50"], 4),
        "torch_step_ms_p99": round(torch_latency["p99"], 4),
        "realtime_factor": round(realtime_factor(loaded, bars), 1),
    }
    max_len = getattr(loaded.model.config, "max_len", None)
    if max_len is not None:
        context = min(1000, max_len - 1)
        for key, model in (("", fast), ("torch_", reference)):
            deep = step_latency_at_context(loaded, model, context, steps)
            row.update({f"{key}step_ms_p50_at_context": round(deep["p50"], 4),
                        f"{key}step_ms_p99_at_context": round(deep["p99"], 4)})
        row["context"] = context
    return row


def run_bench(
    names: list[str] | None = None, steps: int = BENCH_STEPS, bars: int = 8
) -> dict[str, Any]:
    torch.set_num_threads(1)
    names = names or [meta.name for meta, _ in shipped_models()]
    rows: list[dict[str, Any]] = []
    lstm: dict[str, Any] | None = None
    for name in names:
        loaded = load_model(name)
        row = model_row(loaded, steps, bars)
        rows.append(row)
        if lstm is None and isinstance(loaded.model.config, LSTMConfig):
            lstm = lstm_baseline(loaded, steps)
            lstm["ours_torch_step_ms_p50"] = row["torch_step_ms_p50"]
    return {"threads": 1, "steps": steps, "models": rows, "lstm_baseline": lstm}
