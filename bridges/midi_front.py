"""The DAW's front door of a live session: MIDI ports wired to a LiveSession.

Out: the session's dispatcher sends to a `MidiPortOutput` on 'musegen out' (and the melody
part to 'musegen melody out' when asked). In: 'musegen in' feeds the MIDI clock follower
(when the session follows the DAW) and the player's notes and CCs into the session.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bridges.midi.backends import MidiUnavailable, resolve
from bridges.midi.clock_out import LockedSink, MidiClockOut
from bridges.midi.input import MidiInput, MidiMessage
from bridges.midi.output import MidiPortOutput
from bridges.midi.ports import PortSet, open_ports
from bridges.midi.timebase import Timebase
from musegen.engine import LiveSession

__all__ = ["MidiFront", "MidiUnavailable", "open_midi_front"]


@dataclass
class MidiFront:
    session: LiveSession
    ports: PortSet
    output: MidiPortOutput
    input: MidiInput | None
    backend: str
    clock_out: MidiClockOut | None = None

    def close(self) -> None:
        if self.input is not None:
            self.input.stop()
        if self.clock_out is not None:
            self.clock_out.close()  # a Stop first: the follower must not free-run
        self.session.remove_output(self.output)
        self.output.all_notes_off()
        self.ports.close()

    def describe(self) -> str:
        names = ", ".join(repr(p.name) for p in self.ports.all())
        clock = f"; MIDI clock out on {self.ports.output.name!r}" if self.clock_out else ""
        return f"ports {names} on {self.backend}{clock}"

    def on_message(self, message: MidiMessage) -> None:
        if message.kind == "cc":
            self.session.cc_in(message.t, message.channel, message.data1, message.data2)
        else:
            velocity = message.data2 if message.kind == "note_on" else 0
            self.session.note_in(message.t, message.channel, message.data1, velocity)


def open_midi_front(args: argparse.Namespace, session: LiveSession,
                    timebase: Timebase, *, clock_in_callback: bool = True) -> MidiFront:
    """Open the ports `args` ask for and wire them to `session` (MidiUnavailable if none);
    input times on `timebase` (the session's clock). `clock_in_callback`: the clock bytes
    are fed to the session's follower in the port's callback, not on the consumer thread."""
    backend = timebase.backend or resolve(args.backend)  # resolved once: "auto" probes
    ports = open_ports(backend, listen=True, input_from=args.input_from,
                       output_to=args.output_to, melody=args.melody_port)
    routes = {"melody": ports.melody} if ports.melody is not None else {}
    # with clock out, the note output and the clock share 'musegen out' from two threads
    sink = LockedSink(ports.output) if args.clock_out else ports.output
    output = MidiPortOutput(sink, routes)
    session.add_output(output)
    clock_out = (MidiClockOut(sink, session.clock, timebase.now, rt_priority=args.rt_priority)
                 if args.clock_out else None)
    midi_in = MidiInput(session.clock.tick_follower, now=timebase.now,
                        clock_in_callback=clock_in_callback)
    front = MidiFront(session, ports, output, midi_in, str(backend), clock_out)
    if ports.input is not None:
        midi_in.add_listener(front.on_message)
        ports.input.set_callback(timebase.input_callback(midi_in.callback),
                                 rt_priority=args.rt_priority)
        midi_in.start()
    return front
