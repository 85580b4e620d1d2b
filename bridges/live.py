"""`musegen live`: one LiveSession with its front doors (MIDI ports, the web page) and the
session recording, until Ctrl-C, SIGTERM or `--seconds`.

What runs, in order: the clock (internal, or following 'musegen in'), the parts, the MIDI
ports (or one line saying why there are none), the audio output with `--audio` (or one line
saying why there is none), the web page, MIDI learn if asked, then the engine. Shutdown
reverses it; sounding notes end and the recording is written last.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from bridges.midi.timebase import Timebase, timebase_for
from musegen.clock import Clock, InternalClock, MidiClockFollower
from musegen.engine import (
    CCMap,
    EngineError,
    LiveSession,
    Output,
    Part,
    PartControls,
    SessionRecorder,
)
from musegen.engine.session import fitted_controls, load_live_model
from musegen.music.controls import ControlError

if TYPE_CHECKING:  # imported when asked for: the ports need python-rtmidi, audio PortAudio
    from bridges.audio import AudioOutput
    from bridges.midi_front import MidiFront

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("drums-lstm",)
DEFAULT_CONFIG = Path.home() / ".config" / "musegen" / "live.json"
LEARN_CONTROLS = ("density", "genre", "temperature", "swing")
LEARN_TIMEOUT_S = 30.0


class LiveError(Exception):
    """Cannot start as asked (bad model, port busy, MIDI clock without MIDI)."""


@dataclass
class LiveHooks:
    """What a caller other than the command line injects into `open_live` (the latency bench
    measuring what `musegen live` does); the defaults are the command's own."""

    # the session's time; None: `timebase_for(args.backend)`, closed with the rest (one
    # given here stays the caller's to close)
    timebase: Timebase | None = None
    parts: Sequence[Part] | None = None  # None: one per `args.model`
    # clock bytes fed to the follower in the input port's callback (else on the consumer)
    clock_in_callback: bool = True
    outputs: Sequence[Output] = ()  # more outputs, after the MIDI port's
    # the one-line reports of what opened (the command prints them; a bench logs them, so
    # that its own output stays one JSON document)
    say: Callable[[str], None] = print


@dataclass
class Running:
    """What `open_live` started, so it can be stopped in reverse order."""

    session: LiveSession
    timebase: Timebase
    closers: list[Callable[[], None]] = field(default_factory=list)
    midi: MidiFront | None = None  # the MIDI ports, when there are
    audio: AudioOutput | None = None  # the synth on the sound card, with --audio and a device
    say: Callable[[str], None] = print  # LiveHooks.say

    def start(self) -> None:
        """Start the engine; on an internal clock, play (a DAW's clock starts with the DAW)."""
        self.session.start()
        if self.session.clock.owns_transport:
            self.session.play()

    def close(self) -> None:
        self.session.close()
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # shutting down: report and go on with the rest
                logger.exception("error while shutting down")


def run_live(args: argparse.Namespace) -> int:
    running = open_live(args)
    try:
        running.start()
        print(f"musegen: playing {describe(running.session)}; Ctrl-C stops", flush=True)
        wait_for_end(args.seconds)
    finally:
        running.close()
    recorder = running.session.recorder
    if recorder is not None:
        print(f"musegen: session recorded in {recorder.path}")
    return 0


def open_live(args: argparse.Namespace, hooks: LiveHooks | None = None) -> Running:
    """`musegen live`'s front door, up to starting the engine: the clock, the session, the
    MIDI ports, the web page and MIDI learn as `args` ask (`hooks`: what a bench injects).
    Whatever opened is closed again if a later step fails."""
    hooks = hooks or LiveHooks()
    timebase = hooks.timebase or timebase_for(args.backend)
    owned = hooks.timebase is None
    try:
        clock = make_clock(args, timebase)
        session = build_session(args, clock, timebase, hooks.parts)
    except BaseException:
        if owned:
            timebase.close()
        raise
    # the timebase is closed last: the session runs on it
    running = Running(session, timebase, [timebase.close] if owned else [], say=hooks.say)
    try:
        start_midi(args, running, hooks.clock_in_callback)
        running.audio = start_audio(args, running)
        for output in hooks.outputs:
            session.add_output(output)
        dropped = start_osc(args, running)
        start_web(args, running, dropped)
        if args.learn:
            learn(session, Path(args.config or DEFAULT_CONFIG))
    except BaseException:
        running.close()
        raise
    return running


def make_clock(args: argparse.Namespace, timebase: Timebase) -> Clock:
    if args.clock_out and (args.clock == "midi" or args.backend == "none"):
        raise LiveError("--clock-out makes musegen the MIDI clock master: it needs MIDI and "
                        "the internal clock (not --clock midi, not --backend none)")
    if args.clock == "midi":
        if args.backend == "none":
            raise LiveError("--clock midi needs MIDI: choose a --backend other than none")
        try:
            return MidiClockFollower(args.bpm, on_loss=args.on_clock_loss)
        except ValueError as exc:
            raise LiveError(str(exc)) from None
    try:
        return InternalClock(args.bpm, now=timebase.now)
    except ValueError as exc:
        raise LiveError(str(exc)) from None


def build_session(args: argparse.Namespace, clock: Clock, timebase: Timebase,
                  parts: Sequence[Part] | None = None) -> LiveSession:
    if parts is None:
        parts = [make_part(model, i, args)
                 for i, model in enumerate(args.model or DEFAULT_MODELS)]
    names = Counter(p.name for p in parts)
    if max(names.values()) > 1:
        raise LiveError("one model per part: at most one drums and one melody model")
    recorder = None
    if not args.no_record:
        path = Path(args.record or time.strftime("out/sessions/session-%Y%m%d-%H%M%S.mid"))
        recorder = SessionRecorder(path, clock, now=timebase.now)
    cc_map = load_cc_map(args, parts[0].name)
    try:
        session = LiveSession(parts, clock, lookahead_bars=args.lookahead_bars,
                              latency_ms=args.latency_ms + timebase.send_latency_ms,
                              recorder=recorder, cc_map=cc_map,
                              sync=args.sync, now=timebase.now,
                              send_now=timebase.send_now,
                              spin_sleep_s=timebase.spin_sleep_s)
        if args.respond:
            session.enable_call_and_response(args.respond)
        if args.accompany:
            session.enable_accompaniment(args.accompany)
    except (EngineError, ControlError, ValueError) as exc:
        raise LiveError(str(exc)) from None
    return session


def make_part(model: str, seed: int, args: argparse.Namespace) -> Part:
    density = math.nan if args.density is None else args.density
    wanted = PartControls(args.genre or "", density, humanize=args.humanize, swing=args.swing)
    try:
        loaded = load_live_model(model)
        return Part(loaded.meta.part, loaded, fitted_controls(loaded.meta, wanted), seed=seed)
    except (EngineError, ControlError) as exc:
        raise LiveError(str(exc)) from None


def load_cc_map(args: argparse.Namespace, first_part: str) -> CCMap:
    try:
        cc_map = CCMap.load(args.config or DEFAULT_CONFIG)
    except ControlError as exc:
        raise LiveError(str(exc)) from None
    return cc_map if cc_map.bindings else CCMap.defaults(first_part)


def start_midi(args: argparse.Namespace, running: Running,
               clock_in_callback: bool = True) -> None:
    """Open the ports and wire input and output; without MIDI, say so in one line."""
    timebase = running.timebase
    rest = "internal clock only" if args.no_web else "internal clock and the web page"
    if args.backend == "none":
        running.say(f"musegen: no MIDI (--backend none): {rest}")
        return
    from bridges.midi_front import MidiUnavailable, open_midi_front

    try:
        front = open_midi_front(args, running.session, timebase,
                                clock_in_callback=clock_in_callback)
    except MidiUnavailable as exc:
        if args.clock == "midi" or args.backend != "auto":
            raise LiveError(f"MIDI unavailable: {exc}") from None
        running.say(f"musegen: no MIDI system here ({exc}): {rest}")
        return
    running.closers.append(front.close)
    running.midi = front
    running.say(f"musegen: MIDI {front.describe()}; timing on {timebase.name}")


def start_audio(args: argparse.Namespace, running: Running) -> AudioOutput | None:
    """With `--audio`, the synth on the sound card as one more output, its timbre on the
    session's morph (`--morph` sets it; knobs and the page move it); without a device here,
    one line saying so (a bad synth or morph is an error)."""
    if not args.audio:
        return None
    from bridges.audio import AudioUnavailable, open_audio
    from musegen.synth.checkpoint import SynthNotFound
    from musegen.synth.morph import Morph, MorphError

    session = running.session
    try:
        if args.morph:
            start = Morph.parse(args.morph)
            session.set_morph(start.x, start.y)
        output = open_audio(args.synth, args.audio_device, running.timebase.now, session.morph,
                            rt_priority=args.rt_priority)
    except (SynthNotFound, MorphError, ControlError) as exc:
        raise LiveError(str(exc)) from None
    except AudioUnavailable as exc:
        running.say(f"musegen: no audio output here ({exc}): playing MIDI/web only")
        return None
    session.add_output(output)
    session.add_morph_listener(output.set_morph)

    def close() -> None:
        session.remove_morph_listener(output.set_morph)
        session.remove_output(output)
        running.say(f"musegen: audio out closed: {output.close().describe()}")

    running.closers.append(close)
    running.say(f"musegen: audio out on {output.describe()}")
    return output


def start_osc(args: argparse.Namespace, running: Running) -> dict[str, Callable[[], int]]:
    """`--osc PORT`: OSC controls in; `--osc-out HOST:PORT`: notes and downbeats out.
    Returns the dropped-message counts for /api/health."""
    dropped: dict[str, Callable[[], int]] = {}
    if args.osc is not None:
        from bridges.osc import OscControls

        try:
            controls = OscControls(running.session, args.osc_host, args.osc)
        except (OSError, OverflowError) as exc:
            raise LiveError(f"OSC on {args.osc_host}:{args.osc}: {exc}") from None
        running.closers.append(controls.close)
        dropped["osc"] = lambda: controls.dropped_total
        running.say(f"musegen: OSC controls on {controls.describe()}")
    if args.osc_out:
        from bridges.osc import OscNotesOut, parse_target

        try:
            notes = OscNotesOut(running.session, *parse_target(args.osc_out))
        except (ValueError, OSError) as exc:
            raise LiveError(str(exc)) from None
        running.closers.append(notes.close)
        running.say(f"musegen: OSC notes out to {notes.describe()}")
    return dropped


def start_web(args: argparse.Namespace, running: Running,
              dropped_inputs: dict[str, Callable[[], int]] | None = None) -> None:
    if args.no_web:
        return
    from bridges.web.server import serve

    try:
        handle = serve(running.session, host=args.host, port=args.port, token=args.token,
                       dropped_inputs=dropped_inputs)
    except (OSError, ValueError) as exc:
        raise LiveError(f"web page: {exc}") from None
    running.closers.append(handle.stop)
    running.say(f"musegen: web page at {handle.url}")


def learn(session: LiveSession, config: Path) -> None:
    """Ask for one knob per control of each part; save the map to `config`."""
    for part in session.parts:
        for control in LEARN_CONTROLS:
            session.cc_map.arm(part, control)
            print(f"musegen learn: move the knob for {part} {control} "
                  f"(or wait {LEARN_TIMEOUT_S:g} s to skip)", flush=True)
            if session.cc_map.learned.wait(LEARN_TIMEOUT_S):
                b = session.cc_map.bindings[-1]
                print(f"musegen learn: CC {b.cc} -> {part} {control}")
    session.cc_map.save(config)
    print(f"musegen learn: saved to {config}")


def describe(session: LiveSession) -> str:
    state = session.state()
    parts = ", ".join(f"{p.name}={p.model} ({p.controls.genre}, density {p.controls.density:g})"
                      for p in state.parts)
    clock = (f"internal clock at {state.tempo_bpm:g} BPM" if state.clock == "internal"
             else "following the MIDI clock on 'musegen in'")
    return f"{parts}; {clock}"


SIGNAL_POLL_S = 0.1  # the main thread looks at the stop flag this often while it waits


@dataclass
class StopFlag:
    """Set by SIGINT/SIGTERM. A plain attribute, not an Event: a handler runs on the main
    thread between any two bytecodes, also inside Event.wait while it holds the event's
    lock, so a handler calling Event.set() there deadlocks (it did, on a SIGTERM sent the
    moment the pedal said it was playing)."""

    signalled: bool = False


def wait_for_end(seconds: float | None, done: threading.Event | None = None) -> None:
    """Block until SIGINT/SIGTERM, `seconds` pass, or `done` is set (by another thread)."""
    with stop_signals() as stop:
        wait_stopped(stop, done or threading.Event(), seconds)


@contextlib.contextmanager
def stop_signals() -> Iterator[StopFlag]:
    """SIGINT and SIGTERM set the flag while inside (main thread only); restored after."""
    flag = StopFlag()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        flag.signalled = True  # nothing that takes a lock: see StopFlag

    stops = (signal.SIGINT, signal.SIGTERM)
    previous: list[Any] = [signal.signal(s, on_signal) for s in stops]
    try:
        yield flag
    finally:
        for stop, handler in zip(stops, previous, strict=True):
            signal.signal(stop, handler)


def wait_stopped(stop: StopFlag, done: threading.Event, seconds: float | None) -> None:
    """Until `stop` is signalled, `done` is set, or `seconds` pass."""
    deadline = math.inf if seconds is None else time.monotonic() + seconds
    while not stop.signalled and not done.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        done.wait(min(SIGNAL_POLL_S, left))
