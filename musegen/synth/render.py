"""`musegen render IN.mid --out OUT.wav`: a MIDI file played by the synth, offline.

Every note of every track is put on the synth's sample timeline at its time in seconds
(mido applies the file's tempo map); drums on channel 10 play the kit, every other channel
the morph's timbre. The render runs the same block-by-block synth as live playing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
from tqdm import tqdm

from musegen.synth import spec
from musegen.synth.model import SynthNet
from musegen.synth.morph import Morph
from musegen.synth.voices import PolySynth, SynthStats

TAIL_S = 1.0  # after the last note-off, for releases


class RenderInputError(ValueError):
    """The MIDI file cannot be read."""


@dataclass
class Rendered:
    audio: np.ndarray  # [samples] float32
    stats: SynthStats
    peak: float


def read_notes(path: Path) -> list[tuple[float, bool, int, int, int]]:
    """(seconds, is_on, channel, pitch, velocity) of every note message, in time order."""
    try:
        mid = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise RenderInputError(f"{path}: not a readable MIDI file ({exc})") from None
    out, t = [], 0.0
    for msg in mid:  # merged tracks, times in seconds
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            out.append((t, True, msg.channel, msg.note, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            out.append((t, False, msg.channel, msg.note, 0))
    return out


def render_midi(net: SynthNet, path: Path, morph: Morph | None = None,
                progress: bool = False) -> Rendered:
    notes = read_notes(path)
    synth = PolySynth(net, morph)
    for seconds, on, channel, pitch, velocity in notes:
        sample = round(seconds * spec.SAMPLE_RATE)
        if on:
            synth.note_on(sample, channel, pitch, velocity)
        else:
            synth.note_off(sample, channel, pitch)
    end = (notes[-1][0] if notes else 0.0) + TAIL_S
    blocks = int(np.ceil(end * spec.SAMPLE_RATE / spec.BLOCK))
    audio = np.empty(blocks * spec.BLOCK, np.float32)
    for i in tqdm(range(blocks), desc="rendering", unit="block", disable=not progress):
        audio[i * spec.BLOCK : (i + 1) * spec.BLOCK] = synth.render_block()
    return Rendered(audio, synth.stats, float(np.abs(audio).max()) if len(audio) else 0.0)
