"""musegen.music.midi_spec against mido's own table, so the two cannot drift apart."""

from __future__ import annotations

import mido
import pytest
from mido.messages import specs

from musegen.music import midi_spec as spec

# our name -> mido's message type
CHANNEL_TYPES = {
    spec.NOTE_OFF: "note_off",
    spec.NOTE_ON: "note_on",
    spec.POLY_AFTERTOUCH: "polytouch",
    spec.CONTROL_CHANGE: "control_change",
    spec.PROGRAM_CHANGE: "program_change",
    spec.CHANNEL_AFTERTOUCH: "aftertouch",
    spec.PITCH_BEND: "pitchwheel",
}
SYSTEM_TYPES = {
    spec.SYSEX_START: "sysex",
    spec.MTC_QUARTER_FRAME: "quarter_frame",
    spec.SONG_POSITION: "songpos",
    spec.SONG_SELECT: "song_select",
    spec.TUNE_REQUEST: "tune_request",
    spec.CLOCK: "clock",
    spec.START: "start",
    spec.CONTINUE: "continue",
    spec.STOP: "stop",
    spec.ACTIVE_SENSING: "active_sensing",
    spec.RESET: "reset",
}


@pytest.mark.parametrize("status, kind", [*CHANNEL_TYPES.items(), *SYSTEM_TYPES.items()])
def test_status_bytes_match_mido(status: int, kind: str) -> None:
    assert specs.SPEC_BY_TYPE[kind]["status_byte"] == status


def test_lengths_match_mido() -> None:
    assert set(spec.CHANNEL_MESSAGE_LENGTH) == set(CHANNEL_TYPES)
    for status, length in spec.CHANNEL_MESSAGE_LENGTH.items():
        assert specs.SPEC_BY_TYPE[CHANNEL_TYPES[status]]["length"] == length
        for channel in range(spec.NUM_CHANNELS):
            assert spec.length_of(status | channel) == length
    assert set(spec.SYSTEM_MESSAGE_LENGTH) == set(SYSTEM_TYPES) - {spec.SYSEX_START}
    for status, length in spec.SYSTEM_MESSAGE_LENGTH.items():
        assert specs.SPEC_BY_TYPE[SYSTEM_TYPES[status]]["length"] == length
        assert spec.length_of(status) == length
    assert spec.length_of(spec.SYSEX_START) is None
    assert spec.length_of(0x40) is None


def test_status_ranges_match_mido() -> None:
    kinds = {s & spec.STATUS_MASK for s in specs.CHANNEL_MESSAGES}
    assert kinds == set(CHANNEL_TYPES)
    assert {s & spec.CHANNEL_MASK for s in specs.CHANNEL_MESSAGES} == set(range(spec.NUM_CHANNELS))
    assert min(specs.CHANNEL_MESSAGES) == spec.STATUS_BIT
    assert min(specs.COMMON_MESSAGES) == spec.SYSTEM == spec.SYSEX_START
    assert specs.SYSEX_START == spec.SYSEX_START and specs.SYSEX_END == spec.SYSEX_END
    assert spec.CLOCK_TRANSPORT <= specs.REALTIME_MESSAGES
    defined = set(specs.SPEC_BY_STATUS)
    for status in spec.UNDEFINED_SYSTEM:
        assert status not in defined
    assert spec.MAX_SONG_POSITION == specs.MAX_SONGPOS


def test_data_values() -> None:
    # bytes mido writes for a few messages, built from the table
    note = mido.Message("note_on", channel=spec.DRUM_CHANNEL, note=36, velocity=spec.MAX_DATA)
    assert note.bytes() == [spec.NOTE_ON | spec.DRUM_CHANNEL, 36, 127]
    off = mido.Message("control_change", channel=3, control=spec.ALL_NOTES_OFF_CC, value=0)
    assert off.bytes() == [spec.CONTROL_CHANGE | 3, 123, 0]
    songpos = mido.Message("songpos", pos=spec.MAX_SONG_POSITION)
    assert songpos.bytes() == [spec.SONG_POSITION, spec.DATA_MASK, spec.DATA_MASK]
    assert spec.DRUM_CHANNEL == 9  # General MIDI channel 10
    assert spec.CLOCK_PPQN == 24 and spec.CLOCKS_PER_MIDI_BEAT * 4 == spec.CLOCK_PPQN
