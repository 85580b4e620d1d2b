"""The nine drum classes of the Groove MIDI Dataset paper, and the note numbers that map to them.

Input accepts General MIDI and the Roland TD-11 note numbers found in the data (Gillick et al.
2019, Table 2 and Magenta's `drums_encoder_decoder`); output uses one GM note per class on
channel 10.
"""

from __future__ import annotations

from typing import Final

DRUM_CLASSES: Final = (
    "kick",
    "snare",
    "closed_hihat",
    "open_hihat",
    "low_tom",
    "mid_tom",
    "high_tom",
    "crash",
    "ride",
)
NUM_DRUM_CLASSES: Final = len(DRUM_CLASSES)

# class index -> the note numbers (GM and TD-11) heard as that class
_CLASS_PITCHES: Final[tuple[tuple[int, ...], ...]] = (
    (36, 35),  # kick
    (38, 40, 37, 39, 31, 32, 33, 34, 56, 65, 66, 75, 85),  # snare head, rim, cross-stick, clap
    (42, 22, 44, 54, 68, 69, 70, 71, 73, 78, 80),  # closed hi-hat bow/edge, pedal
    (46, 26, 67, 72, 74, 79, 81),  # open hi-hat bow/edge
    (43, 58, 41, 29, 61, 64, 84),  # low (floor) tom
    (47, 45, 60, 63, 77, 86, 87),  # mid tom
    (50, 48, 62, 76, 83, 30),  # high tom
    (49, 55, 57, 52, 27, 28, 82),  # crash 1/2 bow/edge, china
    (51, 59, 53),  # ride bow/edge/bell
)

PITCH_TO_CLASS: Final[dict[int, int]] = {
    pitch: cls for cls, pitches in enumerate(_CLASS_PITCHES) for pitch in pitches if pitch < 128
}

# class index -> the GM note written on output: one note of each class's own input list, so
# what we write reads back as the same class (GM 43 high floor tom, 47 low-mid tom, 50 high tom)
CLASS_TO_GM_PITCH: Final = (36, 38, 42, 46, 43, 47, 50, 49, 51)


def drum_class(pitch: int) -> int | None:
    """The drum class a note number plays, or None if it is not a drum we model."""
    return PITCH_TO_CLASS.get(pitch)
