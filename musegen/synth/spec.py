"""The synth's fixed numbers: rate, block, instruments, and which notes are rendered for it.

Time is counted in samples and frames here because this is the sound itself; the engine
hands the synth notes already mapped to seconds by its clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from musegen.music.drum_map import CLASS_TO_GM_PITCH, DRUM_CLASSES

SAMPLE_RATE: Final = 48_000
BLOCK: Final = 256  # samples per frame: the conv stack runs once per block (187.5 Hz)
FRAME_RATE: Final = SAMPLE_RATE / BLOCK
DRUM_CHANNEL: Final = 9

# One training note: the key held for GATE_FRAMES, then released; NOTE_FRAMES in all.
GATE_FRAMES: Final = 112  # 0.60 s
NOTE_FRAMES: Final = 192  # 1.02 s
NOTE_SAMPLES: Final = NOTE_FRAMES * BLOCK

VELOCITIES: Final = (30, 50, 70, 90, 110, 127)
HELD_OUT_VELOCITY: Final = 70  # one velocity per instrument is never trained on
HELD_OUT_PITCH_EVERY: Final = 5  # and every 5th pitch of each range


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int  # GM program (0-based); drums play on channel 10 instead
    low: int  # lowest and highest MIDI note rendered
    high: int
    drum: bool = False

    @property
    def pitches(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1))


MELODIC: Final = (
    Instrument("piano", 0, 36, 96),
    Instrument("bass", 33, 28, 60),  # electric bass (finger)
    Instrument("organ", 16, 36, 96),  # drawbar organ
    Instrument("strings", 48, 43, 96),  # string ensemble 1
    Instrument("flute", 73, 60, 96),
    Instrument("lead", 81, 48, 96),  # lead 2 (sawtooth)
)
# each drum class is its own timbre, rendered at its one GM note on channel 10
DRUMS: Final = tuple(Instrument(f"kit-{name}", 0, note, note, drum=True)
                     for name, note in zip(DRUM_CLASSES, CLASS_TO_GM_PITCH, strict=True))
INSTRUMENTS: Final = MELODIC + DRUMS
INSTRUMENT_INDEX: Final = {inst.name: i for i, inst in enumerate(INSTRUMENTS)}


def is_held_out(inst: Instrument, pitch: int, velocity: int) -> bool:
    """Notes kept for evaluation only: every 5th pitch of a range, and one velocity."""
    if velocity == HELD_OUT_VELOCITY:
        return True
    return not inst.drum and (pitch - inst.low) % HELD_OUT_PITCH_EVERY == 2


def midi_to_hz(pitch: float) -> float:
    return float(440.0 * 2.0 ** ((pitch - 69.0) / 12.0))
