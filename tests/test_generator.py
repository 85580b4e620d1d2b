"""Bar-by-bar generation keeps going past a bounded model context."""

from __future__ import annotations

import torch

from musegen.checkpoint import LoadedModel, ModelMeta
from musegen.controls import DensityControl, GenreControl
from musegen.generation.generator import BarGenerator, Controls
from musegen.models import build_generator, preset
from musegen.tokenizer import DrumCodec


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
