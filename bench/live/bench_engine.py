"""A live session opened through `musegen live`'s own front door, for the latency bench to
drive on JACK.

`BenchEngine.build` makes the arguments `musegen live --backend jack --clock midi` would
parse to and opens them with `bridges.live.open_live`: the same follower, session, MIDI
front and ports a user gets. What the bench needs on top comes in as `LiveHooks`: its own
timebase (JACK's frames or the system clock), where the clock bytes are fed, and a
`NoteLog` output that keeps each note_on's beat, channel and pitch as it goes out, for the
analysis to match against what the dump received (bench/live/bench_analysis.py).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.live.bench_analysis import Note
from bridges.cli import add_live
from bridges.live import LiveHooks, Running, open_live
from bridges.midi import timebase as session_time
from bridges.midi.input import MidiInput
from bridges.midi.jack_time import JackFrameClock
from bridges.midi.ports import PortSet
from bridges.midi.pump import RT_PRIORITY
from musegen.checkpoint import load_model
from musegen.clock import ClockLost, MidiClockFollower, TransportEvent
from musegen.engine import (
    NOTE_ON,
    Dispatcher,
    GenerationWorker,
    Part,
    PartControls,
    ScheduledEvent,
    Sync,
)

_log = logging.getLogger(__name__)


class NoteLog:
    """An Output beside the MIDI port's: each note_on's beat, channel and pitch as sent."""

    def __init__(self) -> None:
        self.ons: list[Note] = []

    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        self.ons.extend(Note(e.beat, e.channel, e.pitch) for e in events if e.kind == NOTE_ON)


# the bench plays with no knob mapping, whatever the user's own live config holds
NO_CC_MAP = "/nonexistent/musegen-bench/live.json"


def live_args(argv: Sequence[str]) -> argparse.Namespace:
    """`musegen live ARGV` as the command line parses it (its defaults included)."""
    parser = argparse.ArgumentParser(prog="musegen")
    add_live(parser.add_subparsers())
    return parser.parse_args(["live", *argv])


@dataclass
class BenchEngine:
    """A live session following the MIDI clock on JACK, opened as `musegen live` opens it."""

    running: Running
    output: NoteLog
    losses: list[ClockLost] = field(default_factory=list)

    @classmethod
    def build(cls, bpm: float, parts: Sequence[tuple[str, str, PartControls]],
              clock_in_callback: bool = True, latency_ms: float = 0.0,
              frames: JackFrameClock | None = None, *,
              sync: Sync = "line", rt_priority: int = RT_PRIORITY) -> BenchEngine:
        """On `frames` (JACK time) when given, else on CLOCK_MONOTONIC; the input pump
        under SCHED_FIFO at `rt_priority` when > 0 and allowed."""
        made = [Part(name, load_model(model), controls, seed=i)
                for i, (name, model, controls) in enumerate(parts)]
        # "hold": a stall of the shared machine longer than the loss timeout (4 ticks) must
        # not stop the engine for the rest of the run; losses are counted in the report
        timebase = (session_time.Timebase(backend="jack") if frames is None
                    else session_time.Timebase.on_frames(frames))
        # `latency_ms` is all the bench sends early; the session adds the output path's own
        # delay (one period on JACK's frames) to what `--latency-ms` asks for
        extra_ms = latency_ms - timebase.send_latency_ms
        args = live_args(["--backend", "jack", "--clock", "midi", "--on-clock-loss", "hold",
                          f"--bpm={float(bpm)!r}", f"--latency-ms={extra_ms!r}",
                          "--sync", sync, f"--rt-priority={rt_priority}",
                          "--no-web", "--no-record", f"--config={NO_CC_MAP}"])
        log = NoteLog()
        running = open_live(args, LiveHooks(timebase=timebase, parts=made,
                                            clock_in_callback=clock_in_callback,
                                            outputs=[log], say=_log.info))
        if running.midi is None or running.midi.ports.input is None:
            running.close()
            raise RuntimeError("the live session opened no MIDI input on JACK")
        engine = cls(running, log)
        running.session.add_transport_listener(engine._on_transport)
        return engine

    # -- what the bench reads ------------------------------------------------------------------

    @property
    def follower(self) -> MidiClockFollower:
        follower = self.running.session.clock.tick_follower
        assert follower is not None  # --clock midi
        return follower

    @property
    def ports(self) -> PortSet:
        assert self.running.midi is not None  # checked in build
        return self.running.midi.ports

    @property
    def midi_in(self) -> MidiInput:
        assert self.running.midi is not None and self.running.midi.input is not None
        return self.running.midi.input

    @property
    def worker(self) -> GenerationWorker:
        return self.running.session.worker

    @property
    def dispatcher(self) -> Dispatcher:
        return self.running.session.dispatcher

    def _on_transport(self, event: TransportEvent) -> None:
        if isinstance(event, ClockLost):
            self.losses.append(event)

    def start(self) -> None:
        self.running.start()

    def stop(self) -> None:
        self.running.close()
