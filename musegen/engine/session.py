"""A live session: the clock, the parts, the generation worker, one dispatcher and its outputs,
plus the controls every front door (MIDI CC, the browser, the pedal, the CLI) steers.

    session = LiveSession.from_models({"drums": "drums-lstm"}, InternalClock(120.0))
    session.add_output(midi_out)                 # anything with send(events, at)
    session.add_bar_listener(show_bar)           # called on the generation thread
    session.start(); session.play()
    session.set_controls("drums", density=24.0)  # from the next bar
    session.set_morph(0.3, 0.7)                  # the synth's timbre, now
    session.close()

The session owns no I/O: bridges feed it timestamped input (`note_in`, `cc_in`) and give it
outputs. All its methods are safe to call from any thread; only the dispatcher thread sends.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from musegen.checkpoint import LoadedModel, ModelMeta, load_model
from musegen.clock import Clock, InternalClock, Listener
from musegen.engine.cc_map import MORPH_CONTROLS, SYNTH, CCMap
from musegen.engine.dispatch import Dispatcher, Sync, Waiter
from musegen.engine.events import Output, ScheduledEvent
from musegen.engine.part import Part, PartControls, RenderedBar
from musegen.engine.player import Accompaniment, CallAndResponse, PlayerTracker
from musegen.engine.queue import EventQueue
from musegen.engine.recorder import SessionRecorder
from musegen.engine.timbre import MorphListener, MorphPosition
from musegen.engine.worker import GenerationWorker
from musegen.music.controls import ControlError

BarListener = Callable[[Part, RenderedBar], None]
# A generation thread busy in Python would otherwise hold the GIL for up to 5 ms.
SWITCH_INTERVAL_S = 0.0005


class EngineError(ValueError):
    """A request the engine cannot honour (unknown part, transport owned by a DAW, ...)."""


@dataclass(frozen=True, slots=True)
class PartState:
    name: str
    model: str
    part: str  # drums | melody
    channel: int
    controls: PartControls
    genres: tuple[str, ...]
    density_range: tuple[float, float]


@dataclass(frozen=True, slots=True)
class SessionState:
    time: float  # the session's now() when this was taken
    playing: bool
    tempo_bpm: float
    beat: float  # position at `time` (quarter notes from the song start)
    beats_per_bar: float
    clock: str  # internal | midi
    parts: tuple[PartState, ...]
    # time.monotonic() at `time`: the web page syncs to that clock, and a session may run on
    # another (JACK's frame counter on a JACK backend)
    wall_time: float
    morph: tuple[float, float] = (0.0, 0.0)  # the synth's timbre position (x, y) in 0..1


class FanOut:
    """One Output that sends each moment to several; a failing output is counted, not fatal."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.errors = 0

    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        for output in self.outputs:
            try:
                output.send(events, at)
            except Exception:  # one broken port must not silence the others
                self.errors += 1


class LiveSession:
    def __init__(
        self,
        parts: Sequence[Part],
        clock: Clock,
        *,
        lookahead_bars: int = 1,
        latency_ms: float = 0.0,
        recorder: SessionRecorder | None = None,
        cc_map: CCMap | None = None,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        waiter: Waiter | None = None,
        send_now: Callable[[], float] | None = None,
        sync: Sync = "line",
        spin_sleep_s: float = 0.0,
    ) -> None:
        self.clock = clock
        self.queue = EventQueue()
        self.worker = GenerationWorker(parts, clock, self.queue, lookahead_bars=lookahead_bars,
                                       now=now)
        # `send_now`: the dispatcher's own reading of `now`, if the output needs one
        self.dispatcher = Dispatcher(clock, self.queue, latency_ms=latency_ms,
                                     now=send_now or now,
                                     sleep=sleep, waiter=waiter, sync=sync,
                                     spin_sleep_s=spin_sleep_s)
        self.parts: dict[str, Part] = {p.name: p for p in parts}
        self.recorder = recorder
        self.cc_map = cc_map or CCMap()
        self.player = PlayerTracker(self.worker.beats_per_bar)
        self.call_response: CallAndResponse | None = None
        self.accompaniment: Accompaniment | None = None
        self._fanout = FanOut()
        self._morph = MorphPosition()
        self._now = now
        self._stop = threading.Event()
        self._dispatch_thread: threading.Thread | None = None
        if recorder is not None:
            self._fanout.outputs.append(recorder)
        if clock.may_go_silent:  # notice a DAW clock that went silent
            self.worker.poll_hooks.append(self._check_clock)
            self.worker.deadline_hooks.append(clock.overdue_at)

    @classmethod
    def from_models(
        cls, models: Mapping[str, str], clock: Clock, *, genre: str | None = None,
        density: float | None = None, **kwargs: Any
    ) -> LiveSession:
        """Parts named by `models` (part name -> model name or folder), default controls: the
        model's first genre and the middle of its density range unless given."""
        parts = []
        for seed, (name, model) in enumerate(models.items()):
            loaded = load_live_model(model)
            wanted = PartControls(genre or "", math.nan if density is None else density)
            controls = fitted_controls(loaded.meta, wanted)
            parts.append(Part(name, loaded, controls, seed=seed))
        return cls(parts, clock, **kwargs)

    # -- wiring -------------------------------------------------------------------------------

    def add_output(self, output: Output) -> None:
        self._fanout.outputs.append(output)

    def remove_output(self, output: Output) -> None:
        if output in self._fanout.outputs:
            self._fanout.outputs.remove(output)

    def now(self) -> float:
        """The session's time (seconds on its clock's timebase), for outputs that stamp."""
        return self._now()

    def add_bar_listener(self, listener: BarListener) -> None:
        self.worker.bar_listeners.append(listener)

    def add_transport_listener(self, listener: Listener) -> None:
        self.clock.add_listener(listener)

    @property
    def output_errors(self) -> int:
        return self._fanout.errors

    def enable_call_and_response(self, part: str, *, quiet_beats: float = 1.0) -> None:
        """`part` stays silent and answers each phrase the player plays."""
        target = self.part(part)
        target.set(respond=True)
        self.call_response = CallAndResponse(self.player, target, quiet_beats=quiet_beats)
        self.worker.poll_hooks.append(self.call_response.poll)

    def enable_accompaniment(self, part: str, *, busiest_player_onsets: float = 16.0) -> None:
        """`part`'s density follows how busily the player plays, bar by bar."""
        self.accompaniment = Accompaniment(self.player, self.part(part),
                                           busiest_player_onsets=busiest_player_onsets)
        self.worker.poll_hooks.append(self.accompaniment.poll)

    def _check_clock(self, beat: float) -> None:
        self.clock.check(self._now())

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Generate the first bars, then start the worker, the dispatcher and the recorder."""
        beat = self.clock.beat_at(self._now())
        self.worker.fill_until(beat if math.isfinite(beat) else 0.0)
        # One intra-op thread: a step is many tiny ops, where more threads only spin and take
        # the CPU from the dispatcher and the MIDI system (the step benchmarks use one too).
        torch.set_num_threads(1)
        ready_for_real_time()
        self.worker.start()
        self._stop.clear()
        self._dispatch_thread = threading.Thread(
            target=self.dispatcher.run_forever, args=(self._fanout, self._stop),
            name="musegen-dispatch", daemon=True)
        self._dispatch_thread.start()
        if self.recorder is not None:
            self.recorder.start()

    def close(self) -> None:
        """Stop dispatching (sounding notes end on the way out), generating and recording."""
        self._stop.set()
        if self._dispatch_thread is not None:
            self._dispatch_thread.join(2.0)
            self._dispatch_thread = None
        self.worker.stop()
        self.dispatcher.close()
        if self.recorder is not None:
            self.recorder.close()
        gc.unfreeze()

    @property
    def running(self) -> bool:
        return self._dispatch_thread is not None and self._dispatch_thread.is_alive()

    # -- controls -----------------------------------------------------------------------------

    def part(self, name: str) -> Part:
        try:
            return self.parts[name]
        except KeyError:
            raise EngineError(f"no part {name!r}; parts: {', '.join(self.parts)}") from None

    def set_controls(self, part: str, **changes: Any) -> PartControls:
        """Change controls of `part` from the next bar (ControlError on a bad value)."""
        controls = self.part(part).set(**changes)
        self.worker.wake()
        return controls

    @property
    def morph(self) -> tuple[float, float]:  # the synth's timbre position, each in 0..1
        return self._morph.xy

    def set_morph(self, x: float, y: float) -> tuple[float, float]:
        """Move the timbre morph now (ControlError unless both are finite and in 0..1) and
        tell the morph listeners; returns the new position."""
        return self._morph.set(x, y)

    def add_morph_listener(self, listener: MorphListener) -> None:
        """`listener(x, y)` on every move, on the mover's thread; it must be quick. One that
        raises is logged once and counted (`morph_errors`), never raised to the mover."""
        self._morph.add_listener(listener)

    def remove_morph_listener(self, listener: MorphListener) -> None:
        self._morph.remove_listener(listener)

    @property
    def morph_errors(self) -> int:  # morph listener calls that raised
        return self._morph.errors

    def swap_model(self, part: str, model: str) -> None:
        """Load `model` here (not on the generation thread) and play it from the next bar."""
        target = self.part(part)
        loaded = load_live_model(model)
        if loaded.meta.part != target.meta.part:
            raise EngineError(f"{model} is a {loaded.meta.part} model; part {part!r} plays "
                              f"{target.meta.part}")
        target.swap_model(loaded, fitted_controls(loaded.meta, target.controls))
        self.worker.wake()

    def vary(self, part: str) -> None:
        self.part(part).vary()
        self.worker.wake()

    def edit_step(self, part: str, bar: int, step: int, pitch: int,
                  velocity: int) -> RenderedBar | None:
        """Set or clear one 16th step in a queued bar; returns the edited bar, or None when
        that bar is already sounding or gone (the edit then applies to nothing). On a held
        part the edit also goes into the repeats of it already queued."""
        target = self.part(part)
        target.check_step(step, pitch, velocity)
        edited = self._edit_queued(target, bar, step, pitch, velocity)
        if edited is not None and edited.controls.hold:
            later = sorted({r.bar for r in target.rendered if r.bar > bar})
            for next_bar in later:
                self._edit_queued(target, next_bar, step, pitch, velocity)
        self.worker.wake()
        return edited

    def defer_step(self, part: str, bar: int, step: int, pitch: int, velocity: int) -> bool:
        """Keep a step edit for a bar the worker has not made yet; it is in that bar when the
        bar is made. For the gap after a bar line, before the bar after next is queued: an
        edit aimed there would otherwise find nothing. False when the bar is made already
        (use `edit_step`), or is not among the next `lookahead_bars + 1` after the playing
        one (an edit is kept only for a bar about to be made)."""
        target = self.part(part)
        target.check_step(step, pitch, velocity)
        playing = self.worker.bar_at(self.clock.beat_at(self._now()))
        if not playing < bar <= playing + self.worker.lookahead_bars + 1:
            return False
        return target.defer_step(bar, step, pitch, velocity)

    def _edit_queued(self, target: Part, bar: int, step: int, pitch: int,
                     velocity: int) -> RenderedBar | None:
        start = bar * target.beats_per_bar
        if self.clock.beat_at(self._now()) >= start:
            return None  # sounding or past: an edit now would cut notes in flight
        edited = target.edit_step(bar, step, pitch, velocity)
        if edited is None or not self.queue.replace_bar(target.name, bar, edited.events, start):
            return None
        for listener in self.worker.bar_listeners:
            listener(target, edited)
        return edited

    # -- transport (internal clock only: a DAW owns its own) ----------------------------------

    def _internal(self) -> InternalClock:
        if not self.clock.owns_transport or not isinstance(self.clock, InternalClock):
            raise EngineError("the transport follows the DAW's MIDI clock: start, stop and "
                              "tempo come from there")
        return self.clock

    def play(self) -> None:
        clock = self._internal()
        if not clock.playing:
            clock.continue_() if clock.beat_at(self._now()) > 0 else clock.start()
            self.worker.wake()

    def stop(self) -> None:
        clock = self._internal()
        if clock.playing:
            clock.stop()

    def rewind(self) -> None:
        """Back to the top (keeps playing if playing)."""
        self._internal().locate(0.0)
        self.worker.wake()

    def set_tempo(self, bpm: float) -> None:
        clock = self._internal()
        try:
            clock.set_tempo(bpm)
        except ValueError as exc:
            raise ControlError(str(exc)) from None

    # -- player input (from a bridge's input thread, timestamps on the session's now) ----------

    def note_in(self, t: float, channel: int, pitch: int, velocity: int) -> None:
        """A note from the player (velocity 0: note off)."""
        if self.recorder is not None:
            self.recorder.note_in(t, channel, pitch, velocity)
        beat = self.clock.beat_at(t)
        if math.isfinite(beat):
            self.player.note(beat, channel, pitch, velocity)

    def cc_in(self, t: float, channel: int, control: int, value: int) -> tuple[str, str] | None:
        """A control change: learned or mapped ones steer a part or the morph (part
        "synth"); returns (part, control) when it did. Bad values are ignored (a knob cannot
        be wrong, only unmapped)."""
        binding = self.cc_map.handle(channel, control)
        if binding is not None and binding.control in MORPH_CONTROLS:
            knob = min(max(value, 0), 127) / 127.0
            self._morph.set_axis(MORPH_CONTROLS[binding.control], knob)
            return SYNTH, binding.control
        if binding is None or binding.part not in self.parts:
            return None
        part = self.parts[binding.part]
        meta = part.meta
        try:
            self.set_controls(binding.part, **{binding.control: binding.value(value, meta)})
        except ControlError:
            return None
        return binding.part, binding.control

    # -- state --------------------------------------------------------------------------------

    def state(self) -> SessionState:
        t = self._now()
        wall = t if self._now is time.monotonic else time.monotonic()
        beat = self.clock.beat_at(t)
        parts = tuple(
            PartState(p.name, p.model_name, p.meta.part, p.channel, p.controls,
                      p.meta.genres, p.meta.density_range)
            for p in self.parts.values())
        return SessionState(t, self.clock.playing, self.clock.tempo_bpm,
                            beat if math.isfinite(beat) else 0.0, self.worker.beats_per_bar,
                            self.clock.kind,
                            parts, wall, self._morph.xy)


def ready_for_real_time() -> None:
    """Before playback: collect once and freeze what is there (the collector never walks
    the models and tensors while playing), and shorten the GIL's switch interval so a
    thread with a deadline waits at most that long. Idempotent; an audio output calls it
    before its stream starts, the session again when it starts."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))


def load_live_model(model: str) -> LoadedModel:
    """A shipped model's name or a model folder, loaded; EngineError saying why not."""
    try:
        return load_model(model)
    except (OSError, ValueError, KeyError) as exc:  # missing, unreadable or not a model
        raise EngineError(str(exc)) from None


def fitted_controls(meta: ModelMeta, wanted: PartControls) -> PartControls:
    """`wanted` made valid for `meta`: an unknown genre becomes the model's first, the
    density is clamped to its range (NaN: the genre's median in the training data); the rest
    is kept."""
    genre = wanted.genre if wanted.genre in meta.genres else meta.genres[0]
    lo, hi = meta.density_range
    density = (meta.default_density(genre) if math.isnan(wanted.density)
               else min(max(wanted.density, lo), hi))
    return replace(wanted, genre=genre, density=density)
