"""The engine core wired as a live session wires it, for the latency bench to drive on JACK.

One process holds the follower, the MIDI input, the generation worker and the dispatcher;
`Recorder` keeps each note_on's beat, channel and pitch as it goes out, for the analysis to
match against what the dump received (bridges/midi/bench_analysis.py).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.live.bench_analysis import Note
from bridges.midi import timebase as session_time
from bridges.midi.input import MidiInput
from bridges.midi.jack_time import JackFrameClock
from bridges.midi.output import MidiPortOutput
from bridges.midi.ports import PortSet, open_ports
from bridges.midi.pump import RT_PRIORITY
from musegen.checkpoint import load_model
from musegen.clock import ClockLost, MidiClockFollower, TransportEvent
from musegen.engine import (
    NOTE_ON,
    Dispatcher,
    EventQueue,
    GenerationWorker,
    Part,
    PartControls,
    ScheduledEvent,
    Sync,
)


class Recorder:
    """The engine's Output: MIDI out, remembering each note_on's beat, channel and pitch."""

    def __init__(self, inner: MidiPortOutput) -> None:
        self.inner = inner
        self.ons: list[Note] = []

    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        self.inner.send(events, at)
        self.ons.extend(Note(e.beat, e.channel, e.pitch) for e in events if e.kind == NOTE_ON)


@dataclass
class BenchEngine:
    """The engine core following the MIDI clock, as a live session wires it."""

    ports: PortSet
    follower: MidiClockFollower
    midi_in: MidiInput
    worker: GenerationWorker
    dispatcher: Dispatcher
    output: Recorder
    losses: list[ClockLost] = field(default_factory=list)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @classmethod
    def build(cls, bpm: float, parts: Sequence[tuple[str, str, PartControls]],
              clock_in_callback: bool = True, latency_ms: float = 0.0,
              frames: JackFrameClock | None = None, *,
              sync: Sync = "line", rt_priority: int = RT_PRIORITY) -> BenchEngine:
        """On `frames` (JACK time) when given, else on CLOCK_MONOTONIC; the input pump
        under SCHED_FIFO at `rt_priority` when > 0 and allowed."""
        made = [Part(name, load_model(model), controls, seed=i)
                for i, (name, model, controls) in enumerate(parts)]
        ports = open_ports("jack")
        assert ports.input is not None
        # "hold": a stall of the shared machine longer than the loss timeout (4 ticks) must
        # not stop the engine for the rest of the run; losses are counted in the report
        follower = MidiClockFollower(bpm, on_loss="hold")
        timebase = (session_time.Timebase() if frames is None
                    else session_time.Timebase.on_frames(frames))
        now = timebase.now
        midi_in = MidiInput(follower, now=now, clock_in_callback=clock_in_callback)
        ports.input.set_callback(timebase.input_callback(midi_in.callback),
                                 rt_priority=rt_priority)
        if not clock_in_callback:
            midi_in.start()  # the consumer thread feeds the follower instead
        queue = EventQueue()
        worker = GenerationWorker(made, follower, queue, now=now)
        # on JACK's stepping clock the spin can nap: the clock only passes a moment at a
        # cycle start, and the send has the whole next cycle to get into the ring buffer
        dispatcher = Dispatcher(follower, queue, latency_ms=latency_ms, now=timebase.send_now,
                                spin_sleep_s=timebase.spin_sleep_s,
                                sync=sync)
        engine = cls(ports, follower, midi_in, worker, dispatcher,
                     Recorder(MidiPortOutput(ports.output)))
        follower.add_listener(engine._on_transport)
        return engine

    def _on_transport(self, event: TransportEvent) -> None:
        if isinstance(event, ClockLost):
            self.losses.append(event)

    def start(self) -> None:
        self.worker.fill_until(0.0)
        gc.collect()
        gc.freeze()  # the collector never walks the models during playback
        self.worker.start()
        self.thread = threading.Thread(target=self.dispatcher.run_forever,
                                       args=(self.output, self.stop_flag),
                                       name="musegen-dispatch", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join(5.0)
        self.worker.stop()
        self.midi_in.stop()
        self.output.inner.all_notes_off()
        self.ports.close()
        gc.unfreeze()
