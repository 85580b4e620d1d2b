"""Bar-by-bar generation keeps going past a bounded model context."""

from __future__ import annotations

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
