"""The real-time engine core: parts generate bars ahead, a dispatcher sends them on time.

    loaded = load_model("drums-lstm")
    drums = Part("drums", loaded, PartControls("rock", 16.0))
    clock, queue = InternalClock(120.0), EventQueue()
    worker = GenerationWorker([drums], clock, queue)          # a thread, one bar ahead
    dispatcher = Dispatcher(clock, queue, latency_ms=10.0)    # one per output
    worker.fill_until(0.0); gc.freeze(); worker.start(); clock.start()
    dispatcher.run_forever(output, stop_event)                # output: any `Output`

A `LiveSession` wires all of this plus the recorder, CC mapping and player input for the
front doors (see session.py).

Core only: no MIDI, audio or network imports; bridges implement `Output`.
"""

from __future__ import annotations

from musegen.engine.cc_map import CCBinding, CCMap
from musegen.engine.dispatch import SYNCS, Batch, Dispatcher, EventWaiter, StopFlag, Sync, Waiter
from musegen.engine.events import NOTE_OFF, NOTE_ON, Output, ScheduledEvent
from musegen.engine.part import Part, PartControls, RenderedBar, shape_onset
from musegen.engine.player import Accompaniment, CallAndResponse, PlayerTracker
from musegen.engine.queue import EventQueue
from musegen.engine.recorder import SessionRecorder
from musegen.engine.session import EngineError, LiveSession, PartState, SessionState
from musegen.engine.timbre import MorphListener
from musegen.engine.worker import GenerationWorker

__all__ = [
    "NOTE_OFF",
    "NOTE_ON",
    "SYNCS",
    "Accompaniment",
    "Batch",
    "CCBinding",
    "CCMap",
    "CallAndResponse",
    "Dispatcher",
    "EngineError",
    "EventQueue",
    "EventWaiter",
    "GenerationWorker",
    "LiveSession",
    "MorphListener",
    "Output",
    "Part",
    "PartControls",
    "PartState",
    "PlayerTracker",
    "RenderedBar",
    "ScheduledEvent",
    "SessionRecorder",
    "SessionState",
    "StopFlag",
    "Sync",
    "Waiter",
    "shape_onset",
]
