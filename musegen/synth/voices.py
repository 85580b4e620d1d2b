"""Polyphony: notes on a sample timeline become voices of one SynthStream.

`PolySynth` is what a player drives. Events carry the output sample they start on (the
caller maps its clock's seconds to samples), so an onset lands on its sample whatever the
block size: a voice runs on its own frame grid, started in the block its note falls in and
delayed within it by a carry buffer. Drums (channel 10) play the kit piece of their class;
every other channel plays the morph's timbre. When every slot sounds, the quietest-aged
voice is stolen: it fades to silence over one block and its slot takes the new note next
block, so a steal never clicks. Steals, ignored notes and late events are counted.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from musegen.music.drum_map import CLASS_TO_GM_PITCH, DRUM_CLASSES, drum_class
from musegen.synth import spec
from musegen.synth.dsp import noise_offset
from musegen.synth.model import AGE_SCALE, NOTE_FEATURES, SynthNet
from musegen.synth.morph import Morph
from musegen.synth.stream import CompiledSynth, SynthStream

SLOTS: Final = 24  # 8 melodic voices and the kit fit with room for releases
RELEASE_FRAMES: Final = spec.NOTE_FRAMES - spec.GATE_FRAMES  # as long as training saw
FADE_FRAMES: Final = 8  # a voice ends by fading over this many frames
HELD_FOREVER: Final = 1 << 30
ON, OFF = 0, 1


@dataclass
class SynthStats:
    notes: int = 0
    stolen: int = 0
    ignored: int = 0  # drum notes of no class we render
    late: int = 0  # events for samples already rendered (played at once)


@dataclass(order=True)
class _Event:
    sample: int
    order: int
    kind: int = field(compare=False)
    channel: int = field(compare=False)
    pitch: int = field(compare=False)
    velocity: int = field(compare=False)


class _Voice:
    __slots__ = ("channel", "delay", "drum", "f0", "frame", "gate", "instrument", "key",
                 "kill", "noise_start", "pitch", "start", "velocity")

    def __init__(self) -> None:
        self.key = -1  # channel * 128 + pitch while the slot sounds, else -1
        self.channel = self.pitch = self.velocity = self.instrument = 0
        self.drum = False
        self.f0 = 0.0  # Hz, as the instrument (or the morph's blend) is tuned
        self.noise_start = 0  # where it reads the noise loop
        self.frame = 0  # frames rendered
        self.gate = HELD_FOREVER  # frames the key is held (set by its note_off)
        self.start = 0  # output sample of frame 0
        self.delay = 0  # samples into its first block
        self.kill = False


class PolySynth:
    def __init__(self, net: SynthNet, morph: Morph | None = None, slots: int = SLOTS) -> None:
        self.synth = CompiledSynth(net)
        self.stream = SynthStream(self.synth, slots)
        self.morph = morph or Morph.default()
        self.morph_embedding = self.morph.embedding(self.synth.embeddings)
        self._morph_target = self.morph_embedding.copy()
        self.voices = [_Voice() for _ in range(slots)]
        self.carry = np.zeros((slots, spec.BLOCK), np.float32)
        self.position = 0  # output samples rendered
        self.stats = SynthStats()
        self._events: list[_Event] = []
        self._order = 0
        self._pending: list[_Event] = []  # note_ons waiting for a stolen slot to fade
        self._embedding_size = self.synth.config.embedding

    # ----------------------------------------------------------------- the player's side
    def note_on(self, sample: int, channel: int, pitch: int, velocity: int) -> None:
        self._push(sample, ON, channel, pitch, velocity)

    def note_off(self, sample: int, channel: int, pitch: int) -> None:
        self._push(sample, OFF, channel, pitch, 0)

    def all_notes_off(self, sample: int) -> None:
        for v in self.voices:
            if v.key >= 0:
                self._push(sample, OFF, v.channel, v.pitch, 0)

    def set_morph(self, x: float, y: float) -> None:
        """Move the timbre; sounding melodic voices glide there over a few blocks."""
        self.morph = self.morph.moved(x, y)
        self._morph_target = self.morph.embedding(self.synth.embeddings)

    def _push(self, sample: int, kind: int, channel: int, pitch: int, velocity: int) -> None:
        if sample < self.position:
            self.stats.late += 1
            sample = self.position
        self._order += 1
        heapq.heappush(self._events, _Event(sample, self._order, kind, channel & 15,
                                            pitch & 127, velocity & 127))

    # ----------------------------------------------------------------- the audio side
    def render_block(self) -> np.ndarray:
        """The next BLOCK output samples [BLOCK] float32."""
        end = self.position + spec.BLOCK
        self._start_pending()
        while self._events and self._events[0].sample < end:
            event = heapq.heappop(self._events)
            if event.kind == ON:
                self._start(event)
            else:
                self._release(event)
        self._glide_morph()
        out = np.zeros(spec.BLOCK, np.float32)
        active = np.array([i for i, v in enumerate(self.voices) if v.key >= 0], np.int64)
        if len(active):
            self._render_voices(active, out)
        self.stream.frame += 1
        self.position = end
        return out

    def render(self, samples: int) -> np.ndarray:
        """Whole blocks covering `samples`, trimmed to it (offline use)."""
        blocks = [self.render_block() for _ in range(math.ceil(samples / spec.BLOCK))]
        return np.concatenate(blocks)[:samples] if blocks else np.zeros(0, np.float32)

    def sounding(self) -> int:
        return sum(v.key >= 0 for v in self.voices)

    def _render_voices(self, active: np.ndarray, out: np.ndarray) -> None:
        voices = [self.voices[i] for i in active]
        k = len(voices)
        frames = np.fromiter((v.frame for v in voices), np.float32, k)
        gates = np.fromiter((v.gate for v in voices), np.float32, k)
        drum = np.fromiter((v.drum for v in voices), np.bool_, k)
        kill = np.fromiter((v.kill for v in voices), np.bool_, k)
        f0 = np.fromiter((v.f0 for v in voices), np.float64, k)
        cond = np.empty((k, NOTE_FEATURES + self._embedding_size), np.float32)
        note_features_into(cond, frames, gates,
                           np.fromiter((v.pitch for v in voices), np.float32, k),
                           np.fromiter((v.velocity for v in voices), np.float32, k))
        # the model's order: note features, then the timbre (the kit piece's or the morph's)
        cond[:, NOTE_FEATURES:] = self.morph_embedding
        if drum.any():
            rows = np.flatnonzero(drum)
            cond[rows, NOTE_FEATURES:] = self.synth.embeddings[[voices[r].instrument
                                                                 for r in rows]]
        fade = fades(frames, gates, kill)
        raw = self.stream.controls(active, cond)
        amps, noise = self.stream.split(raw, f0, fade)
        samples = frames.astype(np.int64) * spec.BLOCK
        starts = np.fromiter((v.noise_start for v in voices), np.int64, k)
        audio = self.stream.synthesize(active, amps, noise, f0, samples, starts)
        for row, (slot, v) in enumerate(zip(active, voices, strict=True)):
            d = v.delay
            out[d:] += audio[row, : spec.BLOCK - d]
            if d:
                out[:d] += self.carry[slot, :d]
                self.carry[slot, :d] = audio[row, spec.BLOCK - d :]
            v.frame += 1
            if fade[row] == 0.0:
                # a fade reaches silence at the block's end: the `delay` samples it carries
                # into the next block are the quietest of it, and are dropped with the slot
                v.key = -1
                v.kill = False

    def _start_pending(self) -> None:
        pending, self._pending = self._pending, []
        for event in pending:
            self._start(event)

    def _start(self, event: _Event) -> None:
        instrument, pitch, drum = self._timbre_of(event.channel, event.pitch)
        if instrument < 0:
            self.stats.ignored += 1
            return
        key = event.channel * 128 + event.pitch
        for v in self.voices:  # a retriggered key ends its old note first
            if v.key == key and not v.kill:
                v.gate = min(v.gate, v.frame)
        slot = self._free_slot()
        if slot is None:
            self._steal()
            self._pending.append(event)
            return
        v = self.voices[slot]
        v.key, v.channel, v.pitch, v.velocity = key, event.channel, pitch, event.velocity
        v.instrument, v.drum = instrument, drum
        v.f0 = self._tuned_hz(instrument, pitch, drum)
        v.noise_start = noise_offset(pitch)
        v.frame, v.gate, v.kill = 0, HELD_FOREVER, False
        v.delay = event.sample - self.position if event.sample >= self.position else 0
        v.start = self.position + v.delay
        self.stream.reset(slot)
        self.carry[slot] = 0.0
        self.stats.notes += 1

    def _release(self, event: _Event) -> None:
        key = event.channel * 128 + event.pitch
        for v in self.voices:
            if v.key == key and v.gate == HELD_FOREVER:
                # the frame boundary of the voice's own grid nearest the off; never one
                # already rendered
                v.gate = max(v.frame, (event.sample - v.start + spec.BLOCK // 2) // spec.BLOCK)

    def _free_slot(self) -> int | None:
        for i, v in enumerate(self.voices):
            if v.key < 0:
                return i
        return None

    def _steal(self) -> None:
        if any(v.kill for v in self.voices):
            return  # one is already fading for the waiting notes
        def age(v: _Voice) -> tuple[bool, int]:  # released first, then the oldest
            return (v.gate != HELD_FOREVER, v.frame)
        max(self.voices, key=age).kill = True
        self.stats.stolen += 1

    def _timbre_of(self, channel: int, pitch: int) -> tuple[int, int, bool]:
        if channel == spec.DRUM_CHANNEL:
            cls = drum_class(pitch)
            if cls is None:
                return -1, pitch, True
            return (spec.INSTRUMENT_INDEX[f"kit-{DRUM_CLASSES[cls]}"], CLASS_TO_GM_PITCH[cls],
                    True)
        return 0, pitch, False  # melodic: the morph's embedding, not this index

    def _tuned_hz(self, instrument: int, pitch: int, drum: bool) -> float:
        tuning = self.synth.tuning
        cents = (float(tuning[instrument, pitch]) if drum else
                 float(self.morph.weights() @ tuning[self.morph.rows(), pitch]))
        return float(spec.midi_to_hz(pitch) * 2.0 ** (cents / 1200.0))

    def _glide_morph(self) -> None:
        target = self._morph_target  # one read: set_morph may swap it from another thread
        self.morph_embedding += (target - self.morph_embedding) * self.morph.glide


def note_features_into(cond: np.ndarray, frames: np.ndarray, gates: np.ndarray,
                       pitch: np.ndarray, velocity: np.ndarray) -> None:
    """cond[:, :NOTE_FEATURES] for voices at `frames` held for `gates` frames: the same
    features as model.note_features gives a whole note."""
    released = frames >= gates
    cond[:, 0] = (pitch - 60.0) / 24.0
    cond[:, 1] = velocity / 127.0
    cond[:, 2] = ~released
    cond[:, 3] = np.log1p(np.minimum(frames, 256.0)) / AGE_SCALE
    since = np.clip(frames - gates + 1, 0.0, 256.0)
    cond[:, 4] = np.where(released, np.log1p(since) / AGE_SCALE, 0.0)


def fades(frames: np.ndarray, gates: np.ndarray, kill: np.ndarray) -> np.ndarray:
    """1 while a voice plays; down to 0 over its last frames (after the release it was
    trained on, or at once when stolen); 0 frees the slot after this block."""
    left = np.clip(gates + RELEASE_FRAMES - frames, 0, FADE_FRAMES) / FADE_FRAMES
    out = np.where(gates >= HELD_FOREVER, 1.0, left)
    return np.asarray(np.where(kill, 0.0, out), dtype=np.float32)
