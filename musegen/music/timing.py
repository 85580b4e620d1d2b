"""Musical time: ticks at a fixed PPQN, bars and beats from the time signature.

Everything inside the engine is measured in ticks; only the clock maps beats to seconds.
480 ticks per quarter divides evenly by the MIDI clock's 24 pulses per quarter (20 ticks a
pulse), by 16th notes (120) and by 16th-note triplets (80).
"""

from __future__ import annotations

from dataclasses import dataclass

from musegen.music.midi_spec import CLOCK_PPQN as CLOCK_PPQN  # re-exported

PPQN = 480
TICKS_PER_CLOCK = PPQN // CLOCK_PPQN
DEFAULT_TEMPO_US = 500_000  # 120 BPM, the MIDI file default


@dataclass(frozen=True, slots=True)
class TimeSignature:
    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        if self.numerator <= 0 or self.denominator <= 0:
            raise ValueError(f"bad time signature {self.numerator}/{self.denominator}")

    @property
    def ticks_per_beat(self) -> int:
        """Ticks of one notated beat (a quarter in 4/4, an eighth in 6/8)."""
        return PPQN * 4 // self.denominator

    @property
    def ticks_per_bar(self) -> int:
        return self.numerator * self.ticks_per_beat

    def steps_per_bar(self, steps_per_quarter: int) -> int:
        """Grid steps in one bar, e.g. 16 sixteenths in 4/4, 12 in 6/8."""
        return self.ticks_per_bar * steps_per_quarter // PPQN

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


FOUR_FOUR = TimeSignature(4, 4)


def rescale_ticks(ticks: int, from_ppqn: int, to_ppqn: int = PPQN) -> int:
    """Convert a tick count between resolutions, rounding to the nearest tick."""
    return (ticks * to_ppqn + from_ppqn // 2) // from_ppqn


def bpm_to_us(bpm: float) -> int:
    return round(60_000_000 / bpm)
