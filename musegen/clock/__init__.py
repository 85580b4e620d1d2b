"""Clocks: wall time <-> musical position, internal or following an external MIDI clock.

Core only: no device I/O here. A MIDI input adapter feeds `MidiClockFollower.feed` with the
realtime bytes and their timestamps; the engine asks any `Clock` for `beat_at(now)`.
"""

from __future__ import annotations

from musegen.clock.base import (
    Clock,
    ClockKind,
    ClockLost,
    ClockRegained,
    Continue,
    Listener,
    SongPosition,
    Start,
    Stop,
    TempoEvent,
    TransportEvent,
)
from musegen.clock.internal import InternalClock
from musegen.clock.midi_follower import MidiClockFollower
from musegen.clock.tempo_fit import TickLineFit

__all__ = [
    "Clock",
    "ClockKind",
    "ClockLost",
    "ClockRegained",
    "Continue",
    "InternalClock",
    "Listener",
    "MidiClockFollower",
    "SongPosition",
    "Start",
    "Stop",
    "TempoEvent",
    "TickLineFit",
    "TransportEvent",
]
