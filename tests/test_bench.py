"""`musegen bench --json` measures every model it is given and the LSTM baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musegen.checkpoint import ModelMeta, save_model
from musegen.cli import main
from musegen.controls import DensityControl, GenreControl
from musegen.models import build_generator, preset
from musegen.tokenizer import DrumCodec


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
    assert base["ours_step_ms_p50"] == rows["debug-lstm"]["step_ms_p50"]


def test_bench_of_an_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", "no-such-model"]) == 2
    assert "no model 'no-such-model'" in capsys.readouterr().err
