"""Bar-by-bar generation with live controls, on top of a model's streaming `step`.

The generator keeps the model's stream state between bars. A bar ends when the model samples
the next BAR token; that token is held back and fed at the start of the following bar with
that bar's controls, so a genre or density change takes effect exactly from the next bar.
EOS is masked out: a co-player never decides to stop by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from musegen.checkpoint import LoadedModel
from musegen.generation.grammar import DrumGrammar, Grammar, PerformanceGrammar
from musegen.generation.sampling import SamplingConfig, TokenSampler, steering_strength
from musegen.generation.steering import DensitySteering
from musegen.music.special_tokens import BAR, BOS, EOS
from musegen.music.tokenizer import DrumCodec, PerformanceCodec
from musegen.runtime import stepper_for

MAX_TOKENS_PER_BAR = 256  # a runaway bar is closed here rather than stall the player


@dataclass
class Controls:
    genre: str
    density: float


class BarGenerator:
    def __init__(
        self, loaded: LoadedModel, sampling: SamplingConfig | None = None, seed: int = 0
    ) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.sampling = sampling or SamplingConfig()
        self.rng = np.random.default_rng(seed)
        self.grammar = _grammar_for(loaded)
        self.steering = DensitySteering(self.grammar,
                                        steering_strength(self.sampling, loaded.meta.sampling))
        # The compiled runtime of the model: same stream contract, a fraction of the step cost.
        self.stepper = stepper_for(self.model)
        self.sampler = TokenSampler(self.stepper.vocab_size, self.sampling)
        # Genre guidance runs a second batch row conditioned on the mean genre (it costs about
        # 2.4x a token on the shipped drums LSTM, which is why it is off by default).
        self.guidance = self.sampling.genre_guidance
        self.rows = 2 if self.guidance > 0 else 1
        self.state = self.stepper.start_stream(self.rows)
        self.max_len = generation_context(loaded)
        self.history: list[tuple[int, int, int]] = []  # (token, genre id, density bin) fed
        self._logits: np.ndarray[Any, Any] | None = None  # the runtime's buffer: read, not kept
        self._started = False
        # Inputs of one step, refilled in place: no array is allocated per token.
        self._token, self._genre, self._density = (np.zeros(self.rows, dtype=np.int64)
                                                   for _ in range(3))
        self._genre[1:] = self.model.config.num_genres  # the runtime's mean genre
        self._guided = np.zeros(self.stepper.vocab_size, dtype=np.float32)

    def _ids(self, controls: Controls) -> tuple[int, int]:
        meta = self.loaded.meta
        genre = meta.genre_control.index(controls.genre)
        density = meta.density_control.to_bin(meta.density_control.validate(controls.density))
        return genre, density

    def _feed(self, token: int, genre: int, density: int) -> None:
        if self.max_len is not None and len(self.history) >= self.max_len:
            self._restart_with_recent_context()
        self._step_model(token, genre, density)
        if token != BOS:
            self.grammar.advance(token)

    def _step_model(self, token: int, genre: int, density: int) -> None:
        self.history.append((token, genre, density))
        self._run_step(token, genre, density)

    def _run_step(self, token: int, genre: int, density: int) -> None:
        self._token[:], self._genre[0], self._density[:] = token, genre, density
        logits = self.stepper.step_numpy(self._token, self._genre, self._density, self.state)
        self._logits = self._combine(logits)

    def _combine(self, logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """[rows, V] -> [V]: with guidance, l(genre) + w (l(genre) - l(mean genre))."""
        if self.rows == 1:
            row: np.ndarray[Any, Any] = logits[0]
            return row
        np.subtract(logits[0], logits[1], out=self._guided)
        self._guided *= self.guidance
        self._guided += logits[0]
        return self._guided

    def _restart_with_recent_context(self) -> None:
        """A model with a bounded context keeps its most recent half after a fresh start."""
        keep = self.history[-(self.max_len or 2) // 2 :]
        self.state = self.stepper.start_stream(self.rows)
        self.history = [(BOS, keep[0][1], keep[0][2]), *keep]
        if self.rows > 1:  # prefill fills one row: step both (the grammar already holds them)
            for token, genre, density in self.history:
                self._run_step(token, genre, density)
            return
        # [T, 3] -> three [T] id arrays; one pass, not T steps (the grammar already holds them)
        tokens, genres, densities = np.array(self.history, dtype=np.int64).T.copy()
        self._logits = self.stepper.prefill(tokens, genres, densities, self.state)[0]

    def prime(self, bars: Sequence[Sequence[int]], densities: Sequence[float], genre: str) -> None:
        """Feed existing bars (e.g. what the player just played) before generating."""
        for bar, density in zip(bars, densities, strict=True):
            genre_id, bin_ = self._ids(Controls(genre, min(density,
                                                            self.loaded.meta.density_range[1])))
            self._start(genre_id, bin_)
            for token in bar[1:] if bar and bar[0] == BAR else bar:
                self._feed(int(token), genre_id, bin_)

    def _start(self, genre: int, density: int) -> None:
        if not self._started:
            self._feed(BOS, genre, density)
            self._started = True
        self._feed(BAR, genre, density)

    def next_bar(self, controls: Controls) -> list[int]:
        """Tokens of one new bar (starting with BAR) under the given controls."""
        genre, density = self._ids(controls)
        self._start(genre, density)
        self.steering.start_bar(controls.density)
        tokens = [BAR]
        while len(tokens) < MAX_TOKENS_PER_BAR:
            allowed = self.grammar.allowed()  # the grammar's own buffer
            allowed[EOS] = False
            assert self._logits is not None
            logits = self.steering.steer(self._logits)
            token = self.sampler.sample(logits, allowed, self.rng)
            if token == BAR:
                break
            self.steering.advance(token)
            self._feed(token, genre, density)
            tokens.append(token)
        return tokens

    def generate(self, bars: int, controls: Controls) -> list[int]:
        out: list[int] = []
        for _ in range(bars):
            out.extend(self.next_bar(controls))
        return out


def generation_context(loaded: LoadedModel) -> int | None:
    """How many tokens a bounded-context model keeps before it restarts on its recent half.

    A Transformer's positions are only as good as its training windows: past them (a live
    session runs for hundreds of bars) its relative positions are ones it never saw. So the
    context is the model's own bound or its training windows' length, whichever is shorter;
    a shorter context also makes each step's attention cheaper. None: unbounded (LSTM,
    WaveNet, whose state or receptive field does not grow with the stream).
    """
    model_bound: int | None = getattr(loaded.model.config, "max_len", None)
    if model_bound is None:
        return None
    trained = int(loaded.meta.training.get("max_len", model_bound))
    return min(model_bound, trained)


def _grammar_for(loaded: LoadedModel) -> Grammar:
    codec: Any = loaded.codec
    if isinstance(codec, DrumCodec):
        return DrumGrammar(codec.tokenizer)
    if isinstance(codec, PerformanceCodec):
        return PerformanceGrammar(codec.tokenizer)
    raise TypeError(f"no grammar for {type(codec).__name__}")
