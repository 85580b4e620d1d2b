"""The models in models/ are real: they list, load, generate and carry honest cards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mido
import pytest

from musegen.cards import ship
from musegen.checkpoint import load_model, shipped_models
from musegen.cli import main
from musegen.paths import models_dir

SHIPPED = [meta.name for meta, _ in shipped_models()]


def test_at_least_the_default_drum_model_ships() -> None:
    assert "drums-lstm" in SHIPPED


def test_models_json_lists_what_other_tools_rely_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["part"] != "audio"]
    assert {r["name"] for r in rows} == set(SHIPPED)
    for r in rows:
        assert r["family"] in {"lstm", "transformer", "wavenet"}
        assert r["part"] in {"drums", "melody"}
        assert r["genres"] and len(r["density_range"]) == 2
        assert 10_000 < r["params"] < 5_000_000  # sized for a Raspberry Pi
        for key in ("nll_bits_per_token", "density_spearman", "density_median_rel_error",
                    "genre_accuracy_real", "genre_adherence"):
            assert key in r["metrics"], (r["name"], key)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_model_generates_valid_midi(name: str, tmp_path: Path) -> None:
    loaded = load_model(name)
    out = tmp_path / f"{name}.mid"
    genre = loaded.meta.genres[0]
    assert main(["generate", "--model", name, "--genre", genre, "--bars", "2",
                 "--seed", "1", "--out", str(out)]) == 0
    notes = [m for m in mido.MidiFile(out).play() if m.type == "note_on" and m.velocity]
    assert notes
    if loaded.meta.part == "drums":
        assert all(m.channel == 9 for m in notes)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_card_credits_its_data_and_licence(name: str) -> None:
    card = (models_dir() / name / "card.md").read_text()
    assert "Licence:" in card and "musegen train --config" in card
    assert "nll_bits_per_token" in card
    assert not list((models_dir() / name).glob("*.pt")) and not list(
        (models_dir() / name).glob("*.pkl")
    )


def test_ship_refreshes_a_model_in_place_with_both_metric_tables(tmp_path: Path) -> None:
    folder = tmp_path / "drums-lstm"
    shutil.copytree(models_dir() / "drums-lstm", folder)
    weights = (folder / "model.safetensors").read_bytes()
    steered = {"model": "drums-lstm", "density_steering": 1.0, "density_spearman": 0.99,
               "genre_adherence": 0.4, "nll_bits_per_token": 2.5}
    alone = {"density_steering": 0.0, "density_spearman": 0.9, "genre_adherence": 0.5,
             "nll_bits_per_token": 2.5}
    bench = {"name": "drums-lstm", "step_ms_p50": 0.12}
    assert ship(folder, tmp_path, steered, bench, alone) == folder
    config = json.loads((folder / "config.json").read_text())
    assert config["metrics"]["density_spearman"] == 0.99 and "model" not in config["metrics"]
    assert config["metrics_model_alone"] == {"density_steering": 0.0, "density_spearman": 0.9,
                                             "genre_adherence": 0.5}
    card = (folder / "card.md").read_text()
    assert "The model alone" in card and "| density_spearman | 0.9 |" in card
    assert "Genre control is judged over rock, funk, jazz, latin, hiphop." in card
    assert "also takes pop, country, reggae, blues, which were not judged" in card
    assert "| step_ms_p50 | 0.12 |" in card
    assert (folder / "model.safetensors").read_bytes() == weights


def test_ship_records_a_default_steering_that_loading_and_the_card_carry(tmp_path: Path) -> None:
    folder = tmp_path / "drums-lstm"
    shutil.copytree(models_dir() / "drums-lstm", folder)
    ship(folder, tmp_path, density_steering=2.5)
    assert load_model(folder).meta.sampling == {"density_steering": 2.5}
    assert "strength 2.5, this model's default" in (folder / "card.md").read_text()
