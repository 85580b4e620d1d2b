"""The training loop: seeded, resumable, with validation, checkpoints and a progress bar.

One script serves one CPU, one GPU (with bf16 autocast) or many processes: launched by
`torchrun`, it joins PyTorch's own DistributedDataParallel group (gloo on CPU, NCCL on GPU);
every rank draws different batches from its own seeded generator and rank 0 alone validates,
logs and writes checkpoints.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from musegen.checkpoint import ModelMeta, save_model
from musegen.data.prepared import PreparedDataset, prepare
from musegen.models import Generator, GeneratorConfig, build_generator, preset
from musegen.music.controls import DensityControl, GenreControl
from musegen.music.special_tokens import PAD
from musegen.music.tokenizer import Codec, codec_for_part
from musegen.training.config import TrainConfig
from musegen.training.examples import ExampleSet, build_examples, collate

log = logging.getLogger(__name__)

STATE_FILE = "train_state.json"
OPTIM_FILE = "optimizer.safetensors"


class TrainingDataError(ValueError):
    """The training data cannot be used (missing, unreadable or empty); the message says why."""


@dataclass
class TrainResult:
    out: Path
    step: int
    train_loss: float
    val_nll_bits: float  # NaN where this process did not validate (DDP ranks > 0)
    params: int
    rank: int = 0


def _model_config(
    config: TrainConfig, vocab_size: int, num_genres: int, num_density_bins: int
) -> GeneratorConfig:
    """The preset with the config's overrides, refused if the windows cannot fit its context."""
    model_config = preset(config.family, config.preset, vocab_size, num_genres, num_density_bins)
    for key, value in config.model.items():
        setattr(model_config, key, tuple(value) if isinstance(value, list) else value)
    model_limit = getattr(model_config, "max_len", None)
    if model_limit is not None and model_limit < config.max_len:
        raise TrainingDataError(
            f"windows of up to {config.max_len} tokens do not fit the model's context of "
            f"{model_limit}: lower max_len or raise model.max_len"
        )
    return model_config


def load_training_data(
    config: TrainConfig, codec: Codec, data_dirs: list[str], cache_dir: str | None,
    progress: bool,
) -> list[PreparedDataset]:
    if not data_dirs:
        raise TrainingDataError("no training data: give --data DIR or `data` in the config")
    datasets = []
    for root in data_dirs:
        if not Path(root).is_dir():
            raise TrainingDataError(f"training data folder {root} does not exist")
        data = prepare(root, part=config.part, codec=codec, cache_dir=cache_dir, progress=progress)
        if not data.pieces:
            reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in data.skipped[:5])
            raise TrainingDataError(
                f"no usable {config.part} pieces in {root}" + (f" ({reasons})" if reasons else "")
            )
        datasets.append(data)
    return datasets


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    data_dirs: list[str] | None = None,
    resume: bool = False,
    cache_dir: str | None = None,
    progress: bool = True,
) -> TrainResult:
    rank, world = _init_distributed()
    out = Path(out)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() \
        else torch.device("cpu")
    density, genres = DensityControl.for_part(config.part), GenreControl.for_part(config.part)
    codec = codec_for_part(config.part)
    # The model config is checked before the (slow) data preparation, so a mistake in it
    # is reported at once.
    model_config = _model_config(config, codec.vocab_size, len(genres.labels), density.num_bins)
    datasets = load_training_data(
        config, codec, data_dirs or config.data, cache_dir, progress and rank == 0
    )
    train_set = build_examples(datasets, "train", config.window_bars, config.hop_bars, density,
                               genres, config.max_len, config.max_windows_per_genre, config.seed)
    val_set = build_examples(datasets, "validation", config.window_bars, config.hop_bars,
                             density, genres, config.max_len)
    if not len(train_set):
        raise TrainingDataError(f"no {config.window_bars}-bar training windows in {data_dirs}")
    model = build_generator(model_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    step = _restore(out, model, optimizer) if resume else 0
    wrapped: torch.nn.Module = model
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
    rng = np.random.default_rng(config.seed + 1000 * rank + step)
    meta = ModelMeta(config.name, config.part, genres.labels, density.edges,
                     (density.minimum, density.maximum),
                     training={**config.to_dict(), "params": model.num_parameters()})
    loss_value, val_bits = float("nan"), float("nan")
    bar = tqdm(total=config.steps, initial=step, disable=not progress or rank != 0,
               desc=f"train {config.name}", unit="step")
    while step < config.steps:
        t0 = time.perf_counter()
        idx = train_set.similar_lengths(rng, config.batch_size)
        inputs, targets, genre, dens = (t.to(device) for t in collate(train_set, idx))
        _set_lr(optimizer, config, step)
        with _autocast(device):
            logits = wrapped(inputs, genre, dens)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                                   ignore_index=PAD)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        loss_value = float(loss.detach())
        tokens = int((targets != PAD).sum()) * world
        bar.update(1)
        rate = tokens / (time.perf_counter() - t0)
        bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{rate:.0f}")
        if rank == 0 and (step % config.eval_every == 0 or step == config.steps) and len(val_set):
            val_bits = evaluate_nll_bits(model, val_set, config, device)
            bar.write(f"step {step}: train loss {loss_value:.3f}, val {val_bits:.3f} bits/token")
        if rank == 0 and (step % config.checkpoint_every == 0 or step == config.steps):
            if not math.isnan(val_bits):
                meta.metrics["nll_bits_per_token"] = round(val_bits, 4)
            _checkpoint(out, model, optimizer, codec, meta, step, loss_value)
    bar.close()
    if world > 1:
        dist.barrier()
    return TrainResult(out, step, loss_value, val_bits, model.num_parameters(), rank)


@torch.no_grad()
def evaluate_nll_bits(
    model: Generator[Any], examples: ExampleSet, config: TrainConfig, device: torch.device,
    batches: int | None = None,
) -> float:
    """Mean validation NLL in bits per token over a fixed, evenly spread subset of windows."""
    was_training = model.training
    model.eval()
    count = min(len(examples), (batches or config.eval_batches) * config.batch_size)
    order = np.linspace(0, len(examples) - 1, count).astype(np.int64)
    total, n = 0.0, 0
    for lo in range(0, count, config.batch_size):
        batch = collate(examples, order[lo : lo + config.batch_size])
        inputs, targets, genre, dens = (t.to(device) for t in batch)
        logits = model(inputs, genre, dens)
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                                       ignore_index=PAD, reduction="sum"))
        n += int((targets != PAD).sum())
    model.train(was_training)
    return total / max(n, 1) / math.log(2)


def _set_lr(optimizer: torch.optim.Optimizer, config: TrainConfig, step: int) -> None:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < config.warmup:
        scale = (step + 1) / config.warmup
    else:
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        scale = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    for group in optimizer.param_groups:
        group["lr"] = config.lr * scale


def _autocast(device: torch.device) -> Any:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _init_distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _checkpoint(
    out: Path, model: Generator[Any], optimizer: torch.optim.Optimizer, codec: Codec,
    meta: ModelMeta, step: int, loss: float,
) -> None:
    save_model(out, model, codec, meta)
    tensors, layout = _flatten_optimizer(optimizer)
    save_file(tensors, str(out / OPTIM_FILE))
    state = {"step": step, "train_loss": loss, "optimizer": layout}
    tmp = out / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, out / STATE_FILE)


def _restore(out: Path, model: Generator[Any], optimizer: torch.optim.Optimizer) -> int:
    state_path = out / STATE_FILE
    if not state_path.is_file():
        log.warning("nothing to resume in %s: starting from step 0", out)
        return 0
    state = json.loads(state_path.read_text())
    model.load_state_dict(load_file(str(out / "model.safetensors")))
    tensors = load_file(str(out / OPTIM_FILE))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    log.info("resumed %s at step %d", out, state["step"])
    return int(state["step"])


def _flatten_optimizer(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state as named tensors (safetensors) plus a JSON layout, so no pickle."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, slots in sd["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(
    tensors: dict[str, torch.Tensor], layout: dict[str, Any]
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, values in layout["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": layout["param_groups"]}
