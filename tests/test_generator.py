"""Bar-by-bar generation keeps going past a bounded model context."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from musegen.checkpoint import LoadedModel, ModelMeta, load_model
from musegen.generation.generator import BarGenerator, Controls
from musegen.generation.sampling import SamplingConfig
from musegen.models import build_generator, preset
from musegen.music.controls import DensityControl, GenreControl
from musegen.music.tokenizer import DrumCodec


def test_generation_runs_past_the_transformer_context_without_breaking_the_layout() -> None:
    codec = DrumCodec()
    density, genres = DensityControl.for_part("drums"), GenreControl.for_part("drums")
    config = preset("transformer", "debug", codec.vocab_size, len(genres.labels),
                    density.num_bins)
    meta = ModelMeta("t", "drums", genres.labels, density.edges,
                     (density.minimum, density.maximum))
    gen = BarGenerator(LoadedModel(build_generator(config).eval(), codec, meta, None), seed=1)
    tokens = gen.generate(12, Controls("rock", 16))
    assert len(tokens) > 2 * config.max_len  # the stream was restarted more than once
    assert len(gen.history) <= config.max_len
    pattern = codec.tokenizer.decode(tokens)
    assert pattern.dropped_tokens == 0 and len(pattern.bar_starts) == 12
    # what the generator samples from now is the torch model's prediction after its history
    # (the re-primed context went in as one prefill, then steps)
    ids = torch.tensor(gen.history).T  # [T, 3] -> [3, T]
    with torch.no_grad():
        expected = gen.model(ids[None, 0], ids[None, 1, 0], ids[None, 2])[0, -1]
    assert gen._logits is not None
    torch.testing.assert_close(torch.from_numpy(gen._logits), expected, atol=1e-4, rtol=0)


def test_a_transformer_generates_within_its_training_windows_length() -> None:
    loaded = load_model("drums-transformer")
    trained = loaded.meta.training["max_len"]
    assert trained < loaded.model.config.max_len  # the case that matters: a shorter bound
    gen = BarGenerator(loaded, seed=3)
    lengths = []
    for _ in range(16):
        gen.next_bar(Controls("funk", 30))
        lengths.append(len(gen.history))
    assert max(lengths) <= trained
    drops = [b for a, b in itertools.pairwise(lengths) if b < a]
    assert drops  # 16 busy bars outrun 384 tokens: the stream restarted...
    assert min(drops) > trained // 2  # ...on its recent half (plus BOS), not from nothing


def test_genre_guidance_samples_from_the_genre_pushed_away_from_the_mean_genre() -> None:
    loaded = load_model("drums-lstm")
    weight = 1.5
    gen = BarGenerator(loaded, SamplingConfig(genre_guidance=weight), seed=2)
    bars = gen.generate(2, Controls("funk", 20))
    stepper, funk = gen.stepper, loaded.meta.genre_control.index("funk")
    rows = []
    for genre in (funk, loaded.model.config.num_genres):  # one unguided stream per condition
        state = stepper.start_stream(1)
        for token, _, density in gen.history:
            logits = stepper.step_numpy(np.array([token]), np.array([genre]),
                                        np.array([density]), state).copy()
        rows.append(logits[0])
    assert gen._logits is not None and bars
    np.testing.assert_allclose(gen._logits, rows[0] + weight * (rows[0] - rows[1]), atol=1e-4)
