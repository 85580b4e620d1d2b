"""`musegen audio render-data`: single notes rendered by FluidSynth with the GM sound font.

Each instrument is one MIDI file of notes in fixed slots (held GATE_FRAMES, then released,
then silence so one note's tail never reaches the next), rendered once by the `fluidsynth`
command without reverb or chorus (so the render is deterministic), and cut back into notes.
The result is cached under a key of everything that shapes it (the note plan, the sound
font's bytes, FluidSynth's version); a second call only reads the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
from tqdm import tqdm

from musegen.synth import spec
from musegen.synth.spec import Instrument

logger = logging.getLogger(__name__)

SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian's fluid-soundfont-gm
TICKS_PER_BEAT = 375  # at 120 BPM one tick is 64 samples: notes start on FluidSynth's blocks
TEMPO_US = 500_000
SAMPLES_PER_TICK = 64
SLOT_FRAMES = 2 * spec.NOTE_FRAMES  # a note, then as long again in silence
GAIN = 1.0


class RenderError(Exception):
    """FluidSynth or the sound font is missing, or the render failed."""


@dataclass
class NoteSet:
    """Rendered notes: audio [N, NOTE_SAMPLES] float32 and what each note is."""

    audio: np.ndarray
    instrument: np.ndarray  # [N] index into spec.INSTRUMENTS
    pitch: np.ndarray  # [N] MIDI note
    velocity: np.ndarray  # [N] 1..127
    held_out: np.ndarray  # [N] bool: evaluation only

    def subset(self, mask: np.ndarray) -> NoteSet:
        return NoteSet(self.audio[mask], self.instrument[mask], self.pitch[mask],
                       self.velocity[mask], self.held_out[mask])

    def __len__(self) -> int:
        return len(self.pitch)


def note_plan(inst: Instrument) -> list[tuple[int, int]]:
    """(pitch, velocity) of every note rendered for an instrument, in slot order."""
    return [(p, v) for p in inst.pitches for v in spec.VELOCITIES]


def default_cache_dir() -> Path:
    env = os.environ.get("MUSEGEN_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "musegen"
    return base / "synth-data"


def render_notes(cache_dir: Path | None = None, sound_font: Path = SOUND_FONT,
                 progress: bool = True) -> NoteSet:
    """Every instrument's notes, rendered or read from the cache."""
    if shutil.which("fluidsynth") is None:
        raise RenderError("fluidsynth not found: install Debian's fluidsynth package")
    if not sound_font.is_file():
        raise RenderError(f"{sound_font} not found: install Debian's fluid-soundfont-gm")
    cache = (cache_dir or default_cache_dir()) / _cache_key(sound_font)
    path = cache / "notes.npz"
    if path.is_file():
        return load_notes(path)
    parts = [_render_instrument(i, inst, sound_font)
             for i, inst in enumerate(tqdm(spec.INSTRUMENTS, desc="rendering notes",
                                           unit="instrument", disable=not progress))]
    notes = NoteSet(*(np.concatenate(column) for column in zip(*parts, strict=True)))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, audio=(notes.audio * 32767).round().astype(np.int16),
             instrument=notes.instrument, pitch=notes.pitch, velocity=notes.velocity,
             held_out=notes.held_out)
    tmp.replace(path)  # a render cut short never looks like a finished cache
    logger.info("rendered %d notes into %s", len(notes), path)
    return notes


def load_notes(path: Path) -> NoteSet:
    with np.load(path) as z:
        return NoteSet(z["audio"].astype(np.float32) / 32767, z["instrument"], z["pitch"],
                       z["velocity"], z["held_out"])


def _cache_key(sound_font: Path) -> str:
    h = hashlib.sha256()
    plan = [(inst.name, inst.program, inst.drum, note_plan(inst)) for inst in spec.INSTRUMENTS]
    h.update(json.dumps([plan, spec.GATE_FRAMES, spec.NOTE_FRAMES, spec.SAMPLE_RATE, GAIN,
                         spec.HELD_OUT_VELOCITY, spec.HELD_OUT_PITCH_EVERY]).encode())
    with open(sound_font, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    version = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True)
    h.update(version.stdout.encode())
    return h.hexdigest()[:16]


def _render_instrument(index: int, inst: Instrument, sound_font: Path
                       ) -> tuple[np.ndarray, ...]:
    plan = note_plan(inst)
    with tempfile.TemporaryDirectory(prefix="musegen-render-") as tmp:
        mid, wav = Path(tmp) / "notes.mid", Path(tmp) / "notes.wav"
        _write_plan(inst, plan, mid)
        _fluidsynth(sound_font, mid, wav)
        audio = read_wav(wav)
    slot = SLOT_FRAMES * spec.BLOCK
    audio = np.pad(audio, (0, max(0, slot * len(plan) - len(audio))))
    notes = audio[: slot * len(plan)].reshape(len(plan), slot)[:, : spec.NOTE_SAMPLES]
    pitch = np.array([p for p, _ in plan], dtype=np.int16)
    velocity = np.array([v for _, v in plan], dtype=np.int16)
    held = np.array([spec.is_held_out(inst, p, v) for p, v in plan])
    return (np.ascontiguousarray(notes, dtype=np.float32), np.full(len(plan), index, np.int16),
            pitch, velocity, held)


def _write_plan(inst: Instrument, plan: list[tuple[int, int]], path: Path) -> None:
    channel = spec.DRUM_CHANNEL if inst.drum else 0
    gate = spec.GATE_FRAMES * spec.BLOCK // SAMPLES_PER_TICK
    slot = SLOT_FRAMES * spec.BLOCK // SAMPLES_PER_TICK
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0)])
    if not inst.drum:
        track.append(mido.Message("program_change", channel=channel, program=inst.program))
    for pitch, velocity in plan:
        track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=velocity))
        track.append(mido.Message("note_off", channel=channel, note=pitch, time=gate))
        track.append(mido.Message("note_off", channel=channel, note=pitch, time=slot - gate))
    mid = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    mid.tracks.append(track)
    mid.save(path)


def _fluidsynth(sound_font: Path, mid: Path, wav: Path) -> None:
    cmd = ["fluidsynth", "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", str(GAIN),
           "-r", str(spec.SAMPLE_RATE), "-O", "s16", "-T", "wav", "-F", str(wav),
           str(sound_font), str(mid)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not wav.is_file():
        raise RenderError(f"fluidsynth failed ({done.returncode}): {done.stderr.strip()}")


def read_wav(path: Path) -> np.ndarray:
    """A 16- or 32-bit integer WAV (ours, FluidSynth's, jack_capture's) as mono float32 in
    [-1, 1]; more channels are averaged."""
    with wave.open(str(path), "rb") as w:
        width = w.getsampwidth()
        if width not in _PCM:
            raise RenderError(f"{path}: expected 16- or 32-bit samples, got {8 * width}")
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=_PCM[width][0])
        channels = w.getnchannels()
    audio = frames.astype(np.float64).reshape(-1, channels).mean(axis=1) / _PCM[width][1]
    return np.asarray(audio, dtype=np.float32)


_PCM = {2: ("<i2", 32768.0), 4: ("<i4", 2147483648.0)}  # sample width: dtype, full scale


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = spec.SAMPLE_RATE) -> None:
    """Mono float audio as a 16-bit WAV (clipped to [-1, 1])."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).round().astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
