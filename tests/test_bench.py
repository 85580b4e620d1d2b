"""`musegen bench --json` measures every model it is given and the LSTM baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.steps import timed_together
from bridges.cli import main
from musegen.checkpoint import ModelMeta, save_model
from musegen.models import build_generator, preset
from musegen.music.controls import DensityControl, GenreControl
from musegen.music.tokenizer import DrumCodec


@pytest.fixture(scope="module")
def debug_models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    codec = DrumCodec()
    density, genres = DensityControl.for_part("drums"), GenreControl.for_part("drums")
    folders = []
    for family in ("lstm", "transformer", "wavenet"):
        config = preset(family, "debug", codec.vocab_size, len(genres.labels), density.num_bins)
        meta = ModelMeta(f"debug-{family}", "drums", genres.labels, density.edges,
                         (density.minimum, density.maximum))
        folder = tmp_path_factory.mktemp(family)
        save_model(folder, build_generator(config).eval(), codec, meta)
        folders.append(folder)
    return folders


def test_bench_json_reports_every_model_and_the_lstm_baselines(
    debug_models: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench", "--json", "--steps", "40", "--bars", "1"]
    for folder in debug_models:
        args += ["--model", str(folder)]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in report["models"]}
    assert set(rows) == {"debug-lstm", "debug-transformer", "debug-wavenet"}
    for row in rows.values():
        assert 0 < row["step_ms_p50"] <= row["step_ms_p99"]
        assert row["realtime_factor"] > 0
    base = report["lstm_baseline"]
    assert base["model"] == "debug-lstm"
    assert base["shape"] == {"layers": 2, "input": 16, "hidden": 24, "vocab": 124}
    for key in ("ours_step_ms_p50", "naive_step_ms_p50", "matmul_ms_p50"):
        assert base[key] > 0
    # ours and the floor are timed taking turns: the ratio is of the same run's figures
    assert base["ratio_to_matmul"] == pytest.approx(
        base["ours_step_ms_p50"] / base["matmul_ms_p50"], abs=0.02)
    # relative: the debug step is a few us (its p50 is reported to the ns, so the quotient of
    # the reported figures matches the reported speed-up, itself rounded to 0.01)
    assert base["speedup_vs_naive"] == pytest.approx(
        base["naive_step_ms_p50"] / base["ours_step_ms_p50"], rel=0.01)


def test_timed_together_takes_turns_in_blocks_and_times_each_call_apart() -> None:
    calls: list[str] = []
    a, b = timed_together([lambda: calls.append("a"), lambda: calls.append("b")], steps=7,
                          block=3)
    # blocks of 3 timed calls, each after one untimed call: a a a a, b b b b, ... to 7 each
    runs = [name for i, name in enumerate(calls) if i == 0 or calls[i - 1] != name]
    assert runs == ["a", "b", "a", "b", "a", "b"]
    assert calls.count("a") == calls.count("b") == 7 + 3
    assert 0 < a["p50"] <= a["p99"] and 0 < b["p50"] <= b["p99"]


def test_bench_of_an_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", "no-such-model"]) == 2
    assert "no model 'no-such-model'" in capsys.readouterr().err
