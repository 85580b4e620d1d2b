"""MIDI wire constants: status bytes, message lengths, and the few data values we use.

One table, in the style of mido's `messages/specs.py`: every module that reads or writes raw
MIDI bytes (the clock follower, the port bridges, the recorder, the bench) takes its numbers
from here. `tests/test_midi_spec.py` checks the table against `mido.messages.specs`, so the
two cannot drift apart. Pure constants: no I/O, no dependency on mido at run time.
"""

from __future__ import annotations

from typing import Final

# --- channel voice messages: the high nibble of the status byte, the channel in the low one
NOTE_OFF: Final = 0x80
NOTE_ON: Final = 0x90
POLY_AFTERTOUCH: Final = 0xA0  # mido: polytouch
CONTROL_CHANGE: Final = 0xB0
PROGRAM_CHANGE: Final = 0xC0
CHANNEL_AFTERTOUCH: Final = 0xD0  # mido: aftertouch
PITCH_BEND: Final = 0xE0  # mido: pitchwheel

STATUS_MASK: Final = 0xF0  # status & STATUS_MASK: the kind of a channel message
CHANNEL_MASK: Final = 0x0F  # status & CHANNEL_MASK: its channel, 0..15
NUM_CHANNELS: Final = 16
DATA_MASK: Final = 0x7F  # data bytes are 0..127
STATUS_BIT: Final = 0x80  # set on status bytes, clear on data bytes: byte >= STATUS_BIT
NUM_NOTES: Final = 128

# --- system common messages
SYSEX_START: Final = 0xF0
MTC_QUARTER_FRAME: Final = 0xF1
SONG_POSITION: Final = 0xF2  # mido: songpos
SONG_SELECT: Final = 0xF3
TUNE_REQUEST: Final = 0xF6
SYSEX_END: Final = 0xF7

# --- system realtime messages (one byte, may arrive between any two others)
CLOCK: Final = 0xF8
START: Final = 0xFA
CONTINUE: Final = 0xFB
STOP: Final = 0xFC
ACTIVE_SENSING: Final = 0xFE
RESET: Final = 0xFF

SYSTEM: Final = 0xF0  # status >= SYSTEM: a system message, not a channel one
# Status bytes MIDI 1.0 leaves undefined.
UNDEFINED_SYSTEM: Final = frozenset((0xF4, 0xF5, 0xF9, 0xFD))

# Message length in bytes, status included, by status (channel messages by their kind).
# System exclusive has no fixed length and is not listed.
CHANNEL_MESSAGE_LENGTH: Final = {
    NOTE_OFF: 3,
    NOTE_ON: 3,
    POLY_AFTERTOUCH: 3,
    CONTROL_CHANGE: 3,
    PROGRAM_CHANGE: 2,
    CHANNEL_AFTERTOUCH: 2,
    PITCH_BEND: 3,
}
SYSTEM_MESSAGE_LENGTH: Final = {
    MTC_QUARTER_FRAME: 2,
    SONG_POSITION: 3,
    SONG_SELECT: 2,
    TUNE_REQUEST: 1,
    CLOCK: 1,
    START: 1,
    CONTINUE: 1,
    STOP: 1,
    ACTIVE_SENSING: 1,
    RESET: 1,
}
# The clock and transport bytes a clock follower takes (song position comes with data).
CLOCK_TRANSPORT: Final = frozenset((CLOCK, START, CONTINUE, STOP))

# --- data values
DRUM_CHANNEL: Final = 9  # MIDI channel 10, counted from zero (General MIDI percussion)
ALL_SOUND_OFF_CC: Final = 120
RESET_ALL_CONTROLLERS_CC: Final = 121
ALL_NOTES_OFF_CC: Final = 123
SWITCH_ON_MIN: Final = 64  # a switch controller (sustain, ...) is on from this value
MAX_DATA: Final = DATA_MASK

# --- timing
CLOCK_PPQN: Final = 24  # MIDI clock ticks per quarter note
CLOCKS_PER_MIDI_BEAT: Final = 6  # a song-position "MIDI beat" is a 16th note
MAX_SONG_POSITION: Final = 0x3FFF  # 14 bits, LSB first


def length_of(status: int) -> int | None:
    """Bytes in a message with this status byte, or None (sysex, undefined, a data byte)."""
    if status >= SYSTEM:
        return SYSTEM_MESSAGE_LENGTH.get(status)
    if status >= STATUS_BIT:
        return CHANNEL_MESSAGE_LENGTH[status & STATUS_MASK]
    return None
