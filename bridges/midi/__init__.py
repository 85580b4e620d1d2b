"""The DAW MIDI bridge: virtual or existing rtmidi ports, clock-following input, note output.

    ports = open_ports("auto", melody=True)          # "musegen in", "musegen out", ...
    follower = MidiClockFollower(120.0)
    midi_in = MidiInput(follower)                    # feeds the clock from the callback
    ports.input.set_callback(midi_in.callback); midi_in.start()
    output = MidiPortOutput(ports.output, {"melody": ports.melody})
    dispatcher.run_forever(output, stop_event); output.all_notes_off(); ports.close()

rtmidi is imported lazily (inside bridges.midi.backends), so importing this package needs
no MIDI library and `--backend none` works anywhere.
"""

from __future__ import annotations

from bridges.midi.backends import BACKENDS, MidiUnavailable, list_ports, resolve
from bridges.midi.input import MidiInput, MidiMessage
from bridges.midi.output import MidiPortOutput
from bridges.midi.ports import (
    IN_NAME,
    MELODY_NAME,
    OUT_NAME,
    MidiPort,
    PortSet,
    PortWatcher,
    open_ports,
)

__all__ = [
    "BACKENDS",
    "IN_NAME",
    "MELODY_NAME",
    "OUT_NAME",
    "MidiInput",
    "MidiMessage",
    "MidiPort",
    "MidiPortOutput",
    "MidiUnavailable",
    "PortSet",
    "PortWatcher",
    "list_ports",
    "open_ports",
    "resolve",
]
