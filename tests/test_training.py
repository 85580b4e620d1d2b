"""Training, checkpoints, resume, DDP, the train/generate CLI and live control, end to end.

Everything runs on a dozen real Groove MIDI files (both official splits, several genres) copied
into a temporary folder with a filtered info.csv, with debug-sized models and a few dozen
steps, so the whole file stays within about a minute of CPU.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pretty_midi
import pytest
import torch
from safetensors.torch import load_file

from musegen.checkpoint import LoadedModel, load_model
from musegen.cli import main
from musegen.data.prepared import prepare
from musegen.generation.generator import BarGenerator, Controls
from musegen.models import Generator, build_generator, preset
from musegen.music.controls import DensityControl, GenreControl
from musegen.music.midi_io import load_score
from musegen.music.special_tokens import BAR
from musegen.music.tokenizer import codec_for_part
from musegen.training.config import TrainConfig
from musegen.training.examples import ExampleSet, build_examples, collate
from musegen.training.trainer import evaluate_nll_bits, train
from tests.conftest import GROOVE, REPO

# 8 train + 4 validation files, 23 to 40 s each: rock, funk, soul, jazz, hiphop, latin, pop.
TINY_FILES = (
    "drummer3/session1/12_rock_120_beat_4-4.mid",
    "drummer7/session2/79_funk_100_beat_4-4.mid",
    "drummer7/session3/49_funk_112_beat_4-4.mid",
    "drummer7/session3/130_soul_105_beat_4-4.mid",
    "drummer10/session1/6_jazz-swing_215_beat_4-4.mid",
    "drummer7/session1/18_hiphop_100_beat_4-4.mid",
    "drummer4/session1/4_latin-brazilian_92_beat_4-4.mid",
    "drummer7/session2/105_pop_132_beat_4-4.mid",
    "drummer1/session1/145_latin-brazilian-baiao_95_beat_4-4.mid",  # validation
    "drummer3/session1/15_jazz_120_beat_4-4.mid",  # validation
    "drummer3/session2/25_hiphop_92_beat_4-4.mid",  # validation
    "drummer7/session2/100_pop_142_beat_4-4.mid",  # validation
)
PRIME = "drummer7/session2/79_funk_100_beat_4-4.mid"
FAMILIES = ("lstm", "transformer", "wavenet")
STEPS = 40
MODEL_FILES = {"config.json", "tokenizer.json", "model.safetensors"}
CHECKPOINT_FILES = MODEL_FILES | {"optimizer.safetensors", "train_state.json"}


@dataclass
class Trained:
    config: TrainConfig
    out: Path
    nll_bits: float  # what train() reported at its last step
    nll_bits_at_step0: float  # the same validation windows under the untrained model


def tiny_config(family: str, **changes: object) -> TrainConfig:
    config = TrainConfig(
        name=f"tiny-{family}", part="drums", family=family, preset="debug",
        model={"max_len": 256} if family == "transformer" else {},
        window_bars=2, hop_bars=1, max_len=128, batch_size=8, steps=STEPS, lr=1e-2,
        warmup=5, eval_every=STEPS, eval_batches=4, checkpoint_every=STEPS, seed=7, threads=1,
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def write_toml(path: Path, config: TrainConfig) -> Path:
    """The config as a TOML file for the CLI (flat keys plus the model table)."""
    lines = []
    for key, value in config.to_dict().items():
        if key in ("model", "data"):
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    if config.model:
        lines.append("[model]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in config.model.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def validation_examples(root: Path, cache: Path, config: TrainConfig) -> ExampleSet:
    data = prepare(root, part="drums", cache_dir=cache, progress=False)
    return build_examples(
        [data], "validation", config.window_bars, config.hop_bars,
        DensityControl.for_part("drums"), GenreControl.for_part("drums"), config.max_len,
    )


def untrained_model(config: TrainConfig) -> Generator[Any]:
    """The model train() starts from: the same seed, preset and overrides."""
    torch.manual_seed(config.seed)
    model_config = preset(config.family, config.preset, codec_for_part("drums").vocab_size,
                          len(GenreControl.for_part("drums").labels),
                          DensityControl.for_part("drums").num_bins)
    for key, value in config.model.items():
        setattr(model_config, key, value)
    return build_generator(model_config)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`musegen ARGS` in this process (a subprocess would pay ~3 s of CPU to import torch)."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("musegen: error:")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], errors[0]


def no_pickle_anywhere(folder: Path) -> None:
    for path in folder.rglob("*"):
        assert path.suffix not in {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}, path
        if path.is_file():
            head = path.read_bytes()[:2]
            # pickle protocol >= 2 starts with 0x80; torch.save writes a zip ("PK")
            assert head[:1] != b"\x80" and head != b"PK", path


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these models are tiny and the CPU is shared (train() sets it too)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_groove(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Groove MIDI subset: the files at their relative paths plus their info.csv rows."""
    root = tmp_path_factory.mktemp("groove-tiny")
    with (GROOVE / "info.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        rows = [r for r in reader if r["midi_filename"] in TINY_FILES]
    assert fields is not None and len(rows) == len(TINY_FILES)
    assert {r["split"] for r in rows} == {"train", "validation"}
    with (root / "info.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    for rel in TINY_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GROOVE / rel, root / rel)
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def trained(
    tiny_groove: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Trained]:
    """Train each family once per module (on first use) and share the result."""
    done: dict[str, Trained] = {}

    def get(family: str) -> Trained:
        if family not in done:
            config = tiny_config(family)
            before = evaluate_nll_bits(
                untrained_model(config), validation_examples(tiny_groove, cache, config),
                config, torch.device("cpu"),
            )
            out = tmp_path_factory.mktemp(f"run-{family}")
            result = train(config, out, [str(tiny_groove)], cache_dir=str(cache), progress=False)
            assert result.step == STEPS
            done[family] = Trained(config, out, result.val_nll_bits, before)
        return done[family]

    return get


# --- 1. the tiny dataset is what the real reader sees --------------------------------------


def test_tiny_groove_copy_reads_as_groove_with_both_splits(tiny_groove: Path, cache: Path) -> None:
    data = prepare(tiny_groove, part="drums", cache_dir=cache, progress=False)
    assert len(data.pieces) == len(TINY_FILES) and not data.skipped
    assert all(p.id.startswith("groove-midi:") for p in data.pieces)  # the groove reader
    assert len(data.split("train")) == 8 and len(data.split("validation")) == 4
    assert {p.genre for p in data.pieces} >= {"rock", "funk", "jazz", "hiphop", "latin", "pop"}
    assert next(iter(cache.glob("*.npz")))  # cached under tmp, not ~/.cache
    again = prepare(tiny_groove, part="drums", cache_dir=cache, progress=False)
    assert again.from_cache and np.array_equal(again.tokens, data.tokens)


# --- 2. training lowers validation NLL and writes a loadable model -------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_training_lowers_validation_nll_and_saves_a_loadable_model(
    family: str, trained: Callable[[str], Trained], tiny_groove: Path, cache: Path
) -> None:
    run = trained(family)
    assert run.nll_bits_at_step0 > 5.0  # about log2(vocab) untrained
    # 40 steps of a ~10k-parameter model learn at least the drums' common moves
    assert run.nll_bits < run.nll_bits_at_step0 - 0.5, (run.nll_bits_at_step0, run.nll_bits)
    assert {p.name for p in run.out.iterdir()} >= MODEL_FILES
    meta = json.loads((run.out / "config.json").read_text())
    assert meta["model"]["family"] == family and meta["part"] == "drums"
    assert meta["metrics"]["nll_bits_per_token"] == round(run.nll_bits, 4)
    assert json.loads((run.out / "train_state.json").read_text())["step"] == STEPS

    loaded = load_model(run.out)
    assert loaded.family == family and not loaded.model.training
    assert loaded.codec.vocab_size == codec_for_part("drums").vocab_size
    # the saved weights are the trained ones: the reported NLL comes back exactly
    val = validation_examples(tiny_groove, cache, run.config)
    again = evaluate_nll_bits(loaded.model, val, run.config, torch.device("cpu"))
    assert again == pytest.approx(run.nll_bits, abs=1e-5)
    # and a second load gives identical logits on a real batch
    inputs, _, genre, dens = collate(val, np.arange(min(4, len(val))))
    with torch.no_grad():
        first = loaded.model(inputs, genre, dens)
        second = load_model(run.out).model(inputs, genre, dens)
    assert torch.equal(first, second)


# --- 3. resume -----------------------------------------------------------------------------


def test_resume_continues_from_the_saved_step_weights_and_optimizer(
    tiny_groove: Path, cache: Path, tmp_path: Path
) -> None:
    data = [str(tiny_groove)]
    # warm-up longer than the run: the LR at a step does not depend on the total steps
    first = tiny_config("lstm", steps=10, warmup=100, eval_every=10, checkpoint_every=10)
    out = tmp_path / "run"
    assert train(first, out, data, cache_dir=str(cache), progress=False).step == 10
    saved = load_file(str(out / "model.safetensors"))
    optim = load_file(str(out / "optimizer.safetensors"))
    steps = {k: v for k, v in optim.items() if k.endswith(".step")}
    assert steps and all(float(v) == 10 for v in steps.values())
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)

    # With lr = 0 the resumed steps cannot move the weights: what it ends with is exactly
    # what it restored, the step-10 weights (a fresh start would have the seed's init).
    frozen = tiny_config("lstm", steps=20, warmup=100, lr=0.0)
    result = train(frozen, out, data, resume=True, cache_dir=str(cache), progress=False)
    assert result.step == 20
    assert json.loads((out / "train_state.json").read_text())["step"] == 20
    after = load_file(str(out / "model.safetensors"))
    assert after.keys() == saved.keys()
    assert all(torch.equal(after[k], saved[k]) for k in saved)
    # the optimizer state was restored: Adam's per-parameter step counts go on from 10
    optim_after = load_file(str(out / "optimizer.safetensors"))
    assert all(float(optim_after[k]) == 20 for k in steps)
    assert not all(torch.equal(optim_after[k], optim[k]) for k in optim if "exp_avg" in k)

    # A real resume trains on from the step-10 weights.
    resumed = tiny_config("lstm", steps=20, warmup=100)
    assert train(resumed, copy, data, resume=True, cache_dir=str(cache), progress=False).step == 20
    moved = load_file(str(copy / "model.safetensors"))
    assert any(not torch.equal(moved[k], saved[k]) for k in saved)
    assert json.loads((copy / "train_state.json").read_text())["step"] == 20
    for folder in (out, copy):
        assert {p.name for p in folder.iterdir()} == CHECKPOINT_FILES
        no_pickle_anywhere(folder)


# --- 4. DDP --------------------------------------------------------------------------------


def test_ddp_two_cpu_ranks_with_gloo_train_and_checkpoint(
    tiny_groove: Path, cache: Path, tmp_path: Path
) -> None:
    config = tiny_config("lstm", steps=1, eval_batches=1)
    cfg = write_toml(tmp_path / "tiny.toml", config)
    # Parse once here: both ranks then load the cache instead of parsing at the same time.
    prepare(tiny_groove, part="drums", cache_dir=cache, progress=False)
    entries = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "musegen", "train", "--config", str(cfg), "--data", str(tiny_groove),
         "--steps", "1", "--out", str(out), "--cache-dir", str(cache), "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert reports and all(r["step"] == 1 for r in reports)
    # rank 0 alone validates (other ranks, as of now, also print a report with NaN)
    validated = [r["nll_bits_per_token"] for r in reports
                 if not math.isnan(r["nll_bits_per_token"])]
    assert len(validated) == 1 and 0 < validated[0] < 10
    assert {p.name for p in out.iterdir()} == CHECKPOINT_FILES
    assert json.loads((out / "train_state.json").read_text())["step"] == 1
    meta = json.loads((out / "config.json").read_text())
    assert meta["metrics"]["nll_bits_per_token"] == validated[0]
    assert load_model(out).family == "lstm"
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == entries  # nothing re-parsed


# --- 5. train CLI errors -------------------------------------------------------------------


def test_train_cli_on_empty_or_garbage_data_is_one_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = write_toml(tmp_path / "tiny.toml", tiny_config("lstm", steps=1))
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "noise.mid").write_bytes(os.urandom(512))
    (garbage / "text.mid").write_text("this is not a MIDI file\n")
    (garbage / "empty.mid").write_bytes(b"")
    for folder in (empty, garbage):
        code, out, err = run_cli(capsys, "train", "--config", str(cfg), "--data", str(folder),
                                 "--out", str(tmp_path / "out"), "--cache-dir",
                                 str(tmp_path / "cache"), "--no-progress")
        assert_one_error_line(code, err, "no usable drums pieces", str(folder))
        assert out == ""
    # the garbage files are named with why they were refused
    assert "empty.mid: empty file (0 bytes)" in err
    assert not (tmp_path / "out").exists()


# --- 6. generate CLI -----------------------------------------------------------------------


def test_generate_cli_writes_seeded_drum_midi_at_the_tempo(
    capsys: pytest.CaptureFixture[str], trained: Callable[[str], Trained], tiny_groove: Path,
    tmp_path: Path,
) -> None:
    model = str(trained("lstm").out)
    common = ("generate", "--model", model, "--genre", "funk", "--density", "20", "--bars", "4",
              "--tempo", "100", "--seed", "1")
    paths = [tmp_path / "a.mid", tmp_path / "b.mid"]
    for path in paths:
        code, out, err = run_cli(capsys, *common, "--out", str(path))
        assert code == 0, err
        report = json.loads(out)
        assert report["bars"] == 4 and report["genre"] == "funk" and report["notes"] > 0
    assert paths[0].read_bytes() == paths[1].read_bytes()

    midi = mido.MidiFile(paths[0])
    tempos = [m.tempo for t in midi.tracks for m in t if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(100)]
    notes = [m for t in midi.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert len(notes) == report["notes"] and {m.channel for m in notes} == {9}
    pm = pretty_midi.PrettyMIDI(str(paths[0]))
    _, bpm = pm.get_tempo_changes()
    assert list(bpm) == pytest.approx([100.0])
    assert pm.instruments and all(i.is_drum for i in pm.instruments)
    starts = [n.start for i in pm.instruments for n in i.notes]
    assert len(starts) == report["notes"]
    assert max(starts) < 4 * 4 * 60 / 100  # four 4/4 bars at 100 BPM

    code, out, _ = run_cli(capsys, *common[:-2], "--seed", "2", "--out", str(tmp_path / "c.mid"))
    assert code == 0 and (tmp_path / "c.mid").read_bytes() != paths[0].read_bytes()

    # priming from a real GMD file changes what follows and still writes 4 bars
    code, out, err = run_cli(capsys, *common, "--prime", str(tiny_groove / PRIME),
                             "--out", str(tmp_path / "primed.mid"))
    assert code == 0, err
    primed = load_score(tmp_path / "primed.mid")
    assert primed.notes and all(n.is_drum for n in primed.notes)
    assert (tmp_path / "primed.mid").read_bytes() != paths[0].read_bytes()
    assert max(n.start for n in pretty_midi.PrettyMIDI(str(tmp_path / "primed.mid"))
               .instruments[0].notes) < 4 * 4 * 60 / 100


def test_generate_cli_refuses_unknown_genre_and_density_out_of_range(
    capsys: pytest.CaptureFixture[str], trained: Callable[[str], Trained], tmp_path: Path
) -> None:
    model = str(trained("lstm").out)
    base = ("generate", "--model", model, "--bars", "1", "--out", str(tmp_path / "x.mid"))
    code, _, err = run_cli(capsys, *base, "--genre", "polka")
    assert_one_error_line(code, err, "polka", *GenreControl.for_part("drums").labels)
    code, _, err = run_cli(capsys, *base, "--genre", "funk", "--density", "99")
    assert_one_error_line(code, err, "99", "0 to 64")
    code, _, err = run_cli(capsys, *base, "--prime", str(tmp_path / "missing.mid"))
    assert_one_error_line(code, err, "missing.mid")
    assert not (tmp_path / "x.mid").exists()


# --- 7. live control -----------------------------------------------------------------------


def _history_logits(loaded: LoadedModel, gen: BarGenerator) -> torch.Tensor:
    """Next-token logits after every token the generator fed, from one forward pass."""
    tokens, genres, bins = zip(*gen.history, strict=True)
    with torch.no_grad():
        logits: torch.Tensor = loaded.model(torch.tensor([tokens]), torch.tensor([genres[0]]),
                                            torch.tensor([bins]))
    return logits[0]


def test_density_change_acts_from_the_next_bar_line(
    trained: Callable[[str], Trained], tiny_groove: Path
) -> None:
    loaded = load_model(trained("lstm").out)
    score = load_score(tiny_groove / PRIME).drums()
    bars = loaded.codec.encode_bars(score)[:2]
    densities = loaded.meta.density_control.extract(score)[:2]
    low, high = Controls("funk", 2.0), Controls("funk", 40.0)
    control = loaded.meta.density_control
    assert control.to_bin(low.density) != control.to_bin(high.density)

    gens = [BarGenerator(loaded, seed=3), BarGenerator(loaded, seed=3)]
    for gen in gens:
        gen.prime(bars, densities, "funk")
    before = [gen.next_bar(Controls("funk", 20.0)) for gen in gens]
    assert before[0] == before[1] and before[0][0] == BAR  # same seed, same controls, same bar
    cut = len(gens[0].history)  # everything fed before the change
    for gen, controls in zip(gens, (low, high), strict=True):
        gen.next_bar(controls)
    a, b = (gen.history for gen in gens)
    assert a[:cut] == b[:cut]
    # the held-back BAR is fed first, under the new density: the change starts at the bar line
    assert a[cut] == (BAR, 1, control.to_bin(low.density))
    assert b[cut] == (BAR, 1, control.to_bin(high.density))

    la, lb = _history_logits(loaded, gens[0]), _history_logits(loaded, gens[1])
    assert torch.equal(la[:cut], lb[:cut])  # the bar before the change is unaffected
    pa, pb = torch.softmax(la[cut], -1), torch.softmax(lb[cut], -1)
    assert (pa - pb).abs().sum() > 1e-3  # the next bar is drawn from a different distribution
