"""The engine's `Output` on MIDI ports: scheduled events become raw 3-byte messages.

`send` runs at the moment events are due (musegen.engine.Output), so it does no logging and
allocates nothing per event: each port has one preallocated message buffer that is filled
in place (rtmidi copies it into its own vector at `send_message`, so reuse is safe) and a
bytearray of sounding-note counts per key, which `all_notes_off` turns into explicit
note_offs before a CC 123 (All Notes Off) on every channel the port played on. Explicit
offs come first because many synths and DAWs ignore CC 123, or ignore it in omni mode.

Events are routed by `event.part` (drums and melody may go to different ports); parts
without a route go to the default port. A port error is counted, never raised into the
dispatcher: the next moment's notes should still get their chance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from musegen.engine import NOTE_ON, ScheduledEvent
from musegen.music import midi_spec as spec

logger = logging.getLogger(__name__)

KEYS = spec.NUM_CHANNELS * spec.NUM_NOTES  # channel * 128 + pitch, as ScheduledEvent.key


class MessageSink(Protocol):
    """Anything that sends one raw MIDI message: a `MidiPort`, an rtmidi `MidiOut`."""

    def send_message(self, message: Sequence[int]) -> None: ...


class _Route:
    """One port's buffer and the notes it has sounding."""

    __slots__ = ("buffer", "channels", "sink", "sounding")

    def __init__(self, sink: MessageSink) -> None:
        self.sink = sink
        self.buffer = [0, 0, 0]
        self.sounding = bytearray(KEYS)  # note_ons minus note_offs per key, 0..255
        # 1 where a note was ever sent: CC 123 goes there
        self.channels = bytearray(spec.NUM_CHANNELS)


class MidiPortOutput:
    """Implements `musegen.engine.Output`; call `all_notes_off()` on shutdown."""

    def __init__(self, default: MessageSink,
                 routes: Mapping[str, MessageSink] | None = None) -> None:
        self._default = _Route(default)
        by_sink: dict[int, _Route] = {id(default): self._default}
        self._routes: dict[str, _Route] = {}
        for part, sink in (routes or {}).items():  # parts sharing a port share its state
            self._routes[part] = by_sink.setdefault(id(sink), _Route(sink))
        self._all = list(by_sink.values())
        self.sent = 0  # messages sent
        self.errors = 0  # messages a port refused

    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        """Send one moment's events now, each to its part's port."""
        routes, default = self._routes, self._default
        for event in events:
            route = routes.get(event.part, default)
            key = event.key & (KEYS - 1)
            buf = route.buffer
            if event.kind == NOTE_ON:
                buf[0] = spec.NOTE_ON | (event.channel & spec.CHANNEL_MASK)
                buf[2] = (event.velocity & spec.DATA_MASK) or 1  # velocity 0 would mean note_off
                route.sounding[key] = min(route.sounding[key] + 1, 255)
                route.channels[event.channel & spec.CHANNEL_MASK] = 1
            else:
                buf[0] = spec.NOTE_OFF | (event.channel & spec.CHANNEL_MASK)
                buf[2] = 0
                if route.sounding[key]:
                    route.sounding[key] -= 1
            buf[1] = event.pitch & spec.DATA_MASK
            self._write(route, buf)

    def all_notes_off(self) -> int:
        """An explicit note_off for every sounding note, then CC 123 on each channel used;
        returns the number of messages sent. Safe to call more than once."""
        before = self.sent
        for route in self._all:
            for key in range(KEYS):
                while route.sounding[key]:
                    route.sounding[key] -= 1
                    channel, pitch = divmod(key, spec.NUM_NOTES)
                    self._write(route, [spec.NOTE_OFF | channel, pitch, 0])
            for channel in range(spec.NUM_CHANNELS):
                if route.channels[channel]:
                    self._write(route, [spec.CONTROL_CHANGE | channel, spec.ALL_NOTES_OFF_CC, 0])
        return self.sent - before

    def sounding(self) -> int:
        """Notes sent on and not yet off, over all ports."""
        return sum(sum(route.sounding) for route in self._all)

    def _write(self, route: _Route, message: Sequence[int]) -> None:
        try:
            route.sink.send_message(message)
        except Exception:  # a closed or vanished port: count it, keep the dispatcher going
            self.errors += 1
            if self.errors == 1:
                logger.exception("sending MIDI failed (logged once)")
            return
        self.sent += 1
