from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from musegen.models import (
    Generator,
    TransformerConfig,
    build_generator,
    config_from_dict,
    config_to_dict,
    preset,
)

FAMILIES = ["lstm", "transformer", "wavenet"]
VOCAB, GENRES, BINS = 30, 4, 6
B, T = 2, 40


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def make(family: str, seed: int = 0) -> Generator[Any]:
    torch.manual_seed(seed)
    return build_generator(preset(family, "debug", VOCAB, GENRES, BINS)).eval()


def inputs(seed: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """Random tokens, two genres, and a density bin that changes at bars of varying length."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (B, T), generator=gen)
    genre = torch.tensor([0, GENRES - 1])
    bar_bins = torch.randint(0, BINS, (B, 5), generator=gen)
    bar_of = torch.tensor([0] * 7 + [1] * 11 + [2] * 5 + [3] * 9 + [4] * 8)  # [T]
    density = bar_bins[:, bar_of]  # [B, T]
    assert (density[:, 1:] != density[:, :-1]).any()
    return tokens, genre, density


def stream(model: Generator[Any], tokens: Tensor, genres: Tensor, density: Tensor) -> Tensor:
    """Step through a sequence; genres may be [B] (fixed) or [B, T] (changing) -> [B, T, V]."""
    state = model.start_stream(tokens.shape[0])
    out = []
    for t in range(tokens.shape[1]):
        g = genres if genres.dim() == 1 else genres[:, t]
        logits, state = model.step(tokens[:, t], g, density[:, t], state)
        out.append(logits)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_step_equals_forward_at_every_position(family: str) -> None:
    model = make(family)
    tokens, genre, density = inputs()
    with torch.no_grad():
        full = model(tokens, genre, density)
    assert full.shape == (B, T, VOCAB)
    torch.testing.assert_close(stream(model, tokens, genre, density), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_condition_change_mid_stream_acts_after_not_before(family: str) -> None:
    model = make(family)
    tokens, genre, density = inputs()
    t0 = 20
    base = stream(model, tokens, genre, density)
    dens2 = density.clone()
    dens2[:, t0:] = (dens2[:, t0:] + 1) % BINS
    genres2 = genre[:, None].repeat(1, T)  # [B, T]
    genres2[:, t0:] = (genres2[:, t0:] + 1) % GENRES
    for changed in (stream(model, tokens, genre, dens2), stream(model, tokens, genres2, density)):
        torch.testing.assert_close(changed[:, :t0], base[:, :t0], atol=0, rtol=0)
        assert ((changed[:, t0:] - base[:, t0:]).abs().amax(-1) > 1e-4).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_is_causal(family: str) -> None:
    model = make(family)
    tokens, genre, density = inputs()
    t0 = 17
    edited = tokens.clone()
    edited[:, t0] = (edited[:, t0] + 1) % VOCAB
    with torch.no_grad():
        a, b = model(tokens, genre, density), model(edited, genre, density)
    torch.testing.assert_close(a[:, :t0], b[:, :t0], atol=0, rtol=0)
    assert ((a[:, t0] - b[:, t0]).abs().amax(-1) > 1e-4).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_safetensors_and_json_config_round_trip(family: str, tmp_path: Path) -> None:
    model = make(family)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(config_to_dict(model.config)))
    config = config_from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert config == model.config
    torch.manual_seed(123)  # a different init, so the weights must really come from the file
    loaded = build_generator(config).eval()
    loaded.load_state_dict(load_file(tmp_path / "model.safetensors"))
    tokens, genre, density = inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens, genre, density), model(tokens, genre, density),
                                   atol=0, rtol=0)


def test_config_from_dict_rejects_unknown_family_and_keys() -> None:
    with pytest.raises(ValueError, match="family"):
        config_from_dict({"family": "gru", "vocab_size": 3})
    bad = config_to_dict(preset("lstm", "debug", VOCAB, GENRES, BINS)) | {"heads": 2}
    with pytest.raises(ValueError, match="heads"):
        config_from_dict(bad)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_few_adam_steps_lower_the_loss(family: str) -> None:
    model = make(family).train()
    tokens, genre, density = inputs()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss() -> Tensor:
        logits = model(tokens[:, :-1], genre, density[:, :-1])  # [B, T-1, V]
        return F.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))

    first = loss().item()
    for _ in range(30):
        opt.zero_grad()
        loss().backward()  # type: ignore[no-untyped-call]
        opt.step()
    assert loss().item() < 0.8 * first


def test_transformer_refuses_to_step_past_max_len() -> None:
    debug = preset("transformer", "debug", VOCAB, GENRES, BINS)
    assert isinstance(debug, TransformerConfig)
    config = dataclasses.replace(debug, max_len=4)
    model = build_generator(config).eval()
    state = model.start_stream(1)
    one = torch.zeros(1, dtype=torch.long)
    for _ in range(4):
        _, state = model.step(one, one, one, state)
    with pytest.raises(ValueError, match="max_len=4"):
        model.step(one, one, one, state)
    with pytest.raises(ValueError, match="max_len=4"):
        model(torch.zeros(1, 5, dtype=torch.long), one, torch.zeros(1, 5, dtype=torch.long))


def test_small_presets_fit_a_pi() -> None:
    for family in FAMILIES:
        n = build_generator(preset(family, "small", 150, 10, 11)).num_parameters()
        assert 200_000 <= n <= 2_000_000, (family, n)


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_states_clone_apart_and_reset_to_fresh(family: str) -> None:
    model = make(family)
    tokens, genre, density = inputs()
    expected = stream(model, tokens, genre, density)
    state = model.start_stream(B)
    for t in range(T // 2):
        model.step(tokens[:, t], genre, density[:, t], state)
    branch = state.clone()
    on_branch = [model.step(tokens[:, t], genre, density[:, t], branch)[0]
                 for t in range(T // 2, T)]
    on_state = [model.step(tokens[:, t], genre, density[:, t], state)[0]
                for t in range(T // 2, T)]
    torch.testing.assert_close(torch.stack(on_branch, 1), torch.stack(on_state, 1),
                               atol=0, rtol=0)
    torch.testing.assert_close(torch.stack(on_state, 1), expected[:, T // 2 :],
                               atol=1e-5, rtol=0)  # the branch left the original on course
    state.reset()
    torch.testing.assert_close(
        torch.stack([model.step(tokens[:, t], genre, density[:, t], state)[0]
                     for t in range(T)], 1), expected, atol=0, rtol=0)
