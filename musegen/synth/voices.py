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
from musegen.synth.kernels import mix_voices, voice_inputs
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


class _Slots:
    """Every voice slot's state as arrays, so one compiled call prepares and mixes them all."""

    def __init__(self, n: int) -> None:
        self.key = np.full(n, -1, np.int64)  # channel * 128 + pitch while it sounds, else -1
        self.channel = np.zeros(n, np.int64)
        self.pitch = np.zeros(n, np.int64)
        self.velocity = np.zeros(n, np.int64)
        self.instrument = np.zeros(n, np.int64)  # a drum's kit piece (melodic: the morph)
        self.drum = np.zeros(n, np.bool_)
        self.f0 = np.zeros(n, np.float64)  # Hz, as the instrument (or the morph) is tuned
        self.noise_start = np.zeros(n, np.int64)  # where it reads the noise loop
        self.frame = np.zeros(n, np.int64)  # frames rendered
        self.gate = np.full(n, HELD_FOREVER, np.int64)  # frames held (set by its note_off)
        self.start = np.zeros(n, np.int64)  # output sample of frame 0
        self.delay = np.zeros(n, np.int64)  # samples into its first block
        self.kill = np.zeros(n, np.bool_)  # stolen: fading out for a waiting note


class PolySynth:
    def __init__(self, net: SynthNet, morph: Morph | None = None, slots: int = SLOTS) -> None:
        self.synth = CompiledSynth(net)
        self.stream = SynthStream(self.synth, slots)
        self.morph = morph or Morph.default()
        self.morph_embedding = self.morph.embedding(self.synth.embeddings)
        self._morph_target = self.morph_embedding.copy()
        self.slots = _Slots(slots)
        self.carry = np.zeros((slots, spec.BLOCK), np.float32)
        self._cond = np.zeros((slots, NOTE_FEATURES + self.synth.config.embedding), np.float32)
        self._fade = np.zeros(slots, np.float32)
        self.position = 0  # output samples rendered
        self.stats = SynthStats()
        self._events: list[_Event] = []
        self._order = 0
        self._pending: list[_Event] = []  # note_ons waiting for a stolen slot to fade

    # ----------------------------------------------------------------- the player's side
    def note_on(self, sample: int, channel: int, pitch: int, velocity: int) -> None:
        self._push(sample, ON, channel, pitch, velocity)

    def note_off(self, sample: int, channel: int, pitch: int) -> None:
        self._push(sample, OFF, channel, pitch, 0)

    def all_notes_off(self, sample: int) -> None:
        s = self.slots
        for i in np.flatnonzero(s.key >= 0):
            self._push(sample, OFF, int(s.channel[i]), int(s.pitch[i]), 0)

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
        active = np.flatnonzero(self.slots.key >= 0)
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
        return int(np.count_nonzero(self.slots.key >= 0))

    def _render_voices(self, active: np.ndarray, out: np.ndarray) -> None:
        s, k = self.slots, len(active)
        cond, fade = self._cond[:k], self._fade[:k]
        voice_inputs(active, s.frame, s.gate, s.pitch, s.velocity, s.kill, s.drum,
                     s.instrument, self.synth.embeddings, self.morph_embedding,
                     RELEASE_FRAMES, FADE_FRAMES, HELD_FOREVER, AGE_SCALE, cond, fade)
        f0 = s.f0[active]
        raw = self.stream.controls(active, cond)
        amps, noise = self.stream.split(raw, f0, fade)
        audio = self.stream.synthesize(active, amps, noise, f0, s.frame[active] * spec.BLOCK,
                                       s.noise_start[active])
        mix_voices(audio, active, fade, s.delay, self.carry, s.frame, s.key, s.kill, out)

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
        s = self.slots
        again = (s.key == key) & ~s.kill  # a retriggered key ends its old note first
        s.gate[again] = np.minimum(s.gate[again], s.frame[again])
        slot = self._free_slot()
        if slot is None:
            self._steal()
            self._pending.append(event)
            return
        s.key[slot], s.channel[slot], s.pitch[slot] = key, event.channel, pitch
        s.velocity[slot], s.instrument[slot], s.drum[slot] = event.velocity, instrument, drum
        s.f0[slot] = self._tuned_hz(instrument, pitch, drum)
        s.noise_start[slot] = noise_offset(pitch)
        s.frame[slot], s.gate[slot], s.kill[slot] = 0, HELD_FOREVER, False
        s.delay[slot] = event.sample - self.position if event.sample >= self.position else 0
        s.start[slot] = self.position + s.delay[slot]
        self.stream.reset(slot)
        self.carry[slot] = 0.0
        self.stats.notes += 1

    def _release(self, event: _Event) -> None:
        s = self.slots
        held = np.flatnonzero((s.key == event.channel * 128 + event.pitch)
                              & (s.gate == HELD_FOREVER))
        # the frame boundary of the voice's own grid nearest the off; never one already
        # rendered
        nearest = (event.sample - s.start[held] + spec.BLOCK // 2) // spec.BLOCK
        s.gate[held] = np.maximum(s.frame[held], nearest)

    def _free_slot(self) -> int | None:
        free = np.flatnonzero(self.slots.key < 0)
        return int(free[0]) if len(free) else None

    def _steal(self) -> None:
        s = self.slots
        if s.kill.any():
            return  # one is already fading for the waiting notes
        # released first, then the oldest (the first such slot on a tie)
        age = (s.gate != HELD_FOREVER) * (1 << 40) + s.frame
        s.kill[int(np.argmax(age))] = True
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

