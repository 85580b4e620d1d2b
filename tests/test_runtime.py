"""The compiled runtime (musegen/runtime) against the torch models it is compiled from."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from musegen.checkpoint import load_model
from musegen.models import Generator, build_generator, preset
from musegen.runtime import CompiledStreamer, StreamingState, compile_streamer, stepper_for
from tests.test_models import BINS, FAMILIES, GENRES, VOCAB, B, T
from tests.test_models import _one_thread as _one_thread  # autouse: one torch thread here too

Array = np.ndarray[Any, Any]


def make(family: str, seed: int = 0, **changes: Any) -> Generator[Any]:
    """A debug model with every parameter redrawn at a spread that makes the logits large and
    LayerNorm gains and biases far from 1 and 0, so no fold can hide behind an identity."""
    torch.manual_seed(seed)
    config = dataclasses.replace(preset(family, "debug", VOCAB, GENRES, BINS), **changes)
    model = build_generator(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.4)
    return model


def sequences(seed: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """tokens, genres and density bins [B, T], genre and density changing mid-stream."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (B, T), generator=gen)
    genres = torch.randint(0, GENRES, (B, T), generator=gen)
    density = torch.randint(0, BINS, (B, T), generator=gen)
    return tokens, genres, density


def run(stepper: CompiledStreamer[Any], tokens: Tensor, genres: Tensor, density: Tensor) -> Tensor:
    state = stepper.start_stream(tokens.shape[0])
    out = [stepper.step(tokens[:, t], genres[:, t], density[:, t], state)[0]
           for t in range(tokens.shape[1])]
    return torch.stack(out, dim=1)  # [B, T, V]


def reference(model: Generator[Any], tokens: Tensor, genres: Tensor, density: Tensor) -> Tensor:
    """Torch's own streaming (itself tested equal to ``forward`` within 1e-5)."""
    state = model.start_stream(tokens.shape[0])
    with torch.inference_mode():
        out = [model.step(tokens[:, t], genres[:, t], density[:, t], state)[0].clone()
               for t in range(tokens.shape[1])]
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_compiled_steps_equal_the_torch_model_under_changing_controls(family: str) -> None:
    model = make(family)
    tokens, genres, density = sequences()
    expected = reference(model, tokens, genres, density)
    assert expected.abs().amax() > 1.0  # logits large enough that a wrong fold shows
    got = run(compile_streamer(model), tokens, genres, density)
    torch.testing.assert_close(got, expected, atol=1e-5 * float(expected.abs().amax()), rtol=0)


def test_a_wider_wavenet_kernel_reads_every_tap() -> None:
    model = make("wavenet", kernel_size=3)
    tokens, genres, density = sequences(2)
    expected = reference(model, tokens, genres, density)
    got = run(compile_streamer(model), tokens, genres, density)
    torch.testing.assert_close(got, expected, atol=1e-5 * float(expected.abs().amax()), rtol=0)


@pytest.mark.parametrize("name", ["drums-lstm", "drums-transformer", "drums-wavenet",
                                  "melody-lstm", "melody-transformer"])
def test_shipped_models_run_the_same_compiled(name: str) -> None:
    model = load_model(name).model.eval()
    c = model.config
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, c.vocab_size, (1, 200), generator=gen)
    genres = torch.randint(0, c.num_genres, (1, 200), generator=gen)
    density = torch.randint(0, c.num_density_bins, (1, 200), generator=gen)
    with torch.no_grad():
        full = model(tokens, genres[:, 0], density)[:, :100]  # one genre: forward takes [B]
    got = run(stepper_for(model), tokens, genres, density)
    first = run(stepper_for(model), tokens[:, :100], genres[:, :1].expand(1, 100), density[:, :100])
    torch.testing.assert_close(first, full, atol=1e-5 * float(full.abs().amax()), rtol=0)
    torch.testing.assert_close(got, reference(model, tokens, genres, density),
                               atol=1e-5 * float(full.abs().amax()), rtol=0)


def test_a_fresh_stream_forgets_the_last_one() -> None:
    stepper = compile_streamer(make("transformer"))
    tokens, genres, density = sequences(3)
    first = run(stepper, tokens, genres, density)
    run(stepper, tokens.flip(1), genres, density)
    torch.testing.assert_close(run(stepper, tokens, genres, density), first, atol=0, rtol=0)


def test_the_compiled_runtime_follows_new_weights() -> None:
    model = make("lstm")
    tokens, genres, density = sequences(4)
    before = run(stepper_for(model), tokens, genres, density)
    assert stepper_for(model) is stepper_for(model)  # cached while the weights stand still
    with torch.no_grad():
        head = model.head
        assert isinstance(head, torch.nn.Linear)
        head.bias += 1.0
    after = run(stepper_for(model), tokens, genres, density)
    torch.testing.assert_close(after, before + 1.0, atol=1e-5, rtol=0)


def test_a_full_transformer_stream_says_so() -> None:
    stepper = compile_streamer(make("transformer", max_len=4))
    state = stepper.start_stream(1)
    one = np.zeros(1, dtype=np.int64)
    for _ in range(4):
        stepper.step_numpy(one, one, one, state)
    with pytest.raises(ValueError, match="max_len=4"):
        stepper.step_numpy(one, one, one, state)


def test_a_family_without_a_runtime_is_refused() -> None:
    with pytest.raises(TypeError, match="no runtime for Linear"):
        compile_streamer(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


@pytest.mark.parametrize("family", FAMILIES)
def test_prefill_leaves_the_stream_where_steps_would(family: str) -> None:
    stepper = compile_streamer(make(family))
    tokens, genres, density = (a[0].numpy() for a in sequences(5))
    stepped = stepper.start_stream(1)
    for t in range(30):
        at_30 = stepper.step_numpy(tokens[t : t + 1], genres[t : t + 1], density[t : t + 1],
                                   stepped).copy()
    expected = [stepper.step_numpy(tokens[t : t + 1], genres[t : t + 1], density[t : t + 1],
                                   stepped).copy() for t in range(30, T)]
    filled = stepper.start_stream(1)
    stepper.prefill(tokens[:10], genres[:10], density[:10], filled)  # two runs: one after a
    last = stepper.prefill(tokens[10:30], genres[10:30], density[10:30], filled)  # prefix
    scale = float(np.abs(at_30).max())
    np.testing.assert_allclose(last, at_30, atol=1e-5 * scale, rtol=0)
    got = [stepper.step_numpy(tokens[t : t + 1], genres[t : t + 1], density[t : t + 1],
                              filled).copy() for t in range(30, T)]
    np.testing.assert_allclose(np.stack(got), np.stack(expected), atol=1e-5 * scale, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_extra_genre_id_is_the_mean_genre(family: str) -> None:
    model = make(family)
    averaged = make(family)  # same seed: same weights, then every genre row set to the mean
    with torch.no_grad():
        for emb in (averaged.cond_in.genre, averaged.cond_layers.genre):
            emb.weight[:] = emb.weight.mean(dim=0, keepdim=True)
    tokens, _, density = sequences(6)
    mean_id = torch.full((B, T), GENRES)
    expected = reference(averaged, tokens, torch.zeros(B, T, dtype=torch.long), density)
    got = run(compile_streamer(model), tokens, mean_id, density)
    torch.testing.assert_close(got, expected, atol=1e-5 * float(expected.abs().amax()), rtol=0)



def steps(stepper: CompiledStreamer[Any], state: Any, inputs: tuple[Tensor, Tensor, Tensor],
          start: int, stop: int) -> Array:
    """Logits [stop - start, B, V] of steps ``start..stop`` of ``inputs`` [B, T] on ``state``."""
    return np.stack([stepper.step_numpy(*(a[:, t].numpy() for a in inputs), state).copy()
                     for t in range(start, stop)])


def fields_of(state: Any) -> dict[str, Any]:
    """A snapshot of a state's fields (arrays copied)."""
    return {f.name: (v.copy() if isinstance(v := getattr(state, f.name), np.ndarray) else v)
            for f in dataclasses.fields(state)}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_cloned_stream_steps_as_the_original_and_apart_from_it(family: str) -> None:
    stepper = compile_streamer(make(family))
    inputs, other = sequences(7), sequences(8)
    state = stepper.start_stream(B)
    steps(stepper, state, inputs, 0, 15)
    branch = state.clone()
    assert isinstance(branch, StreamingState) and type(branch) is type(state)
    before = fields_of(state)
    on_branch = steps(stepper, branch, inputs, 15, T)
    for name, value in fields_of(state).items():  # stepping the clone left the original alone
        np.testing.assert_array_equal(getattr(state, name), value, err_msg=name)
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    branch_after = fields_of(branch)
    on_original = steps(stepper, state, inputs, 15, T)
    np.testing.assert_array_equal(on_branch, on_original)  # same point, same steps: same logits
    for name, value in branch_after.items():  # and stepping the original left the clone alone
        np.testing.assert_array_equal(getattr(branch, name), value, err_msg=name)
    # a clone of a clone diverges on other inputs without touching either
    twig = branch.clone()
    steps(stepper, twig, other, 0, 5)
    np.testing.assert_array_equal(steps(stepper, branch, other, 0, 5),
                                  steps(stepper, state, other, 0, 5))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_reset_stream_steps_as_a_fresh_one(family: str) -> None:
    stepper = compile_streamer(make(family))
    inputs, other = sequences(9), sequences(10)
    fresh = stepper.start_stream(B)
    initial = fields_of(fresh)
    expected = steps(stepper, fresh, inputs, 0, T)
    used = stepper.start_stream(B)
    steps(stepper, used, other, 0, T)
    buffers = {f.name: getattr(used, f.name) for f in dataclasses.fields(used)}
    used.reset()
    for name, value in fields_of(used).items():
        np.testing.assert_array_equal(value, initial[name], err_msg=name)
        if isinstance(value, np.ndarray):  # in place: the same buffers
            assert getattr(used, name) is buffers[name], name
    np.testing.assert_array_equal(steps(stepper, used, inputs, 0, T), expected)
    tokens, genres, density = (a[0].numpy() for a in other)
    one = stepper.start_stream(1)
    stepper.prefill(tokens, genres, density, one)
    one.reset()  # a stream filled by prefill resets too
    np.testing.assert_array_equal(steps(stepper, one, tuple(a[:1] for a in inputs), 0, T),
                                  expected[:, :1])
