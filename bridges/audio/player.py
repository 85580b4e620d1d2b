"""The engine's `Output` as sound: due events -> the neural synth -> a ring -> the device.

Three threads meet here and none waits for another:
- the dispatch thread calls `send` when events are due; it appends `(at, events)` to a
  deque (one atomic append under the GIL) and returns;
- the synthesis thread keeps the ring a block or two ahead of the device (one under
  real-time scheduling, see AHEAD_BLOCKS): before each block it takes what `send` left,
  maps each `at` to a synth sample through the `SampleClock` plus a fixed lead, hands the
  notes to `PolySynth`, renders and writes;
- the device's callback reads the ring and anchors the `SampleClock` (bridges.audio.output).

Latency: an event due at `at` starts at the sample the device reads at `at` plus the lead.
Right after a callback took its buffer (`blocksize` samples, read at once), the synthesis
thread tops the ring up to its blocks ahead past it; so the rendered audio reaches
`ahead` + blocksize samples past the read head the line maps `at` to. The
events reach the synthesis thread a little after `at` (the dispatcher sends on JACK's frame
clock up to a period late, and hands over through a thread), so the lead adds
DISPATCH_SLACK: together, the least that puts every event into samples not rendered yet.
The device's own latency comes after, the same for every note. An event that still arrives
for samples already rendered is played at once and counted late by the synth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bridges.audio.output import Device, DeviceStream
from bridges.audio.ring import Ring
from bridges.audio.timeline import SampleClock
from bridges.midi.ticker import set_realtime
from musegen.engine import NOTE_ON, ScheduledEvent
from musegen.engine.session import ready_for_real_time
from musegen.synth.model import SynthNet
from musegen.synth.morph import Morph
from musegen.synth.spec import BLOCK, SAMPLE_RATE
from musegen.synth.voices import PolySynth

logger = logging.getLogger(__name__)

# Blocks rendered ahead of the device's buffer. The synthesis thread must refill within that
# many blocks. Under real-time scheduling (SCHED_FIFO, `rt_priority`) one block is enough: 0
# underruns in 60 s at 120 BPM on the 2-core JACK rig. At normal priority it must wait out
# other threads: one block underran 3 times in those 60 s, two blocks (10.7 ms) 0 times.
AHEAD_BLOCKS_REALTIME = 1
AHEAD_BLOCKS = 2
REALTIME_WAIT_S = 1.0  # the most the constructor waits for the thread to say how it runs
# an event's way from `at` to the synthesis thread: up to a JACK period late from the
# dispatcher, then the hand-off (without it, one event in 20 came up to 32 samples late)
DISPATCH_SLACK = 128
RING_CAPACITY = 4096  # a power of two well over AHEAD_BLOCKS blocks
NAP_S = BLOCK / SAMPLE_RATE / 4  # the synthesis thread looks at the ring this often
INBOX_LEN = 4096  # moments waiting for the synthesis thread; if it died, the oldest go
DRAIN_S = 0.2  # close waits at most this long for the device to play the ring out


@dataclass(frozen=True)
class AudioStats:
    underruns: int  # device reads the ring could not fill
    missing: int  # samples of silence those reads played
    late: int  # events for samples already rendered (played at once)
    stolen: int  # voices taken for a new note
    notes: int  # notes started
    xruns: int  # underflows PortAudio itself flagged

    def describe(self) -> str:
        return (f"{self.notes} notes, {self.underruns} underruns, {self.late} late events, "
                f"{self.stolen} voices stolen")


class AudioOutput:
    """Implements `musegen.engine.Output`: plays the session through `net` on `device`.

    Opening starts the synthesis thread and the stream (AudioUnavailable if the device
    refuses); `close()` ends every note with a short fade, stops the thread and the stream.
    With `rt_priority` > 0 the synthesis thread asks for SCHED_FIFO at that priority; where it
    gets it, the ring runs AHEAD_BLOCKS_REALTIME blocks ahead, else AHEAD_BLOCKS (or
    `ahead_blocks`, when given).
    """

    def __init__(self, net: SynthNet, device: Device, now: Callable[[], float], *,
                 name: str = "synth", morph: Morph | None = None, blocksize: int = BLOCK,
                 ahead_blocks: int | None = None, rt_priority: int = 0) -> None:
        if not 0 < blocksize <= BLOCK:  # the lead counts on callbacks of a known size
            raise ValueError(f"blocksize must be 1..{BLOCK}, got {blocksize}")
        self.name = name
        self.rt_priority = rt_priority
        self.realtime = False  # whether the synthesis thread got SCHED_FIFO
        self.synth = PolySynth(net, morph)
        _warm_up(net)
        self.ring = Ring(RING_CAPACITY)
        self.clock = SampleClock(SAMPLE_RATE)
        self.stream = DeviceStream(device, self.ring, self.clock, now, blocksize)
        self._inbox: deque[tuple[float, Sequence[ScheduledEvent]]] = deque(maxlen=INBOX_LEN)
        self._fade_out = np.linspace(1.0, 0.0, BLOCK, dtype=np.float32)
        self._stopping = False
        self._closed = False
        self._scheduled = threading.Event()  # the thread has asked for its scheduling
        self._go = threading.Event()  # the ring is filled: the thread may start topping up
        self._thread = threading.Thread(target=self._run, name="musegen-synth", daemon=True)
        self._thread.start()
        self._scheduled.wait(REALTIME_WAIT_S)
        if ahead_blocks is None:
            ahead_blocks = AHEAD_BLOCKS_REALTIME if self.realtime else AHEAD_BLOCKS
        self.ahead = ahead_blocks * BLOCK  # the most the ring holds past a callback's read
        # from the line's sample of `at` to the event's (see the module's docstring)
        self.lead = self.ahead + blocksize + DISPATCH_SLACK
        while self.ring.available() < self.ahead + blocksize:  # the first reads find it full
            self.ring.write(self.synth.render_block())
        self._go.set()
        # from the stream's first callback on the GIL is the audio thread's deadline; the
        # session prepares the same, but after the stream runs: its first collection over the
        # loaded models held the GIL ~100 ms there, and the first notes came 52 ms late
        ready_for_real_time()
        try:
            self.stream.start()
        except BaseException:
            self._stop_thread()
            raise

    @property
    def latency_s(self) -> float:
        """From due to heard: the lead and the device's latency."""
        return self.lead / SAMPLE_RATE + self.stream.latency_s

    def describe(self) -> str:
        scheduling = "real-time" if self.realtime else "normal priority"
        return (f"{self.stream.device.describe()} ({self.name}, block {BLOCK} @ "
                f"{SAMPLE_RATE // 1000} kHz, {self.ahead // BLOCK} ahead, {scheduling}, "
                f"{1000 * self.latency_s:.1f} ms latency)")

    # ------------------------------------------------------------------ the dispatcher's side
    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        if not self._stopping:
            self._inbox.append((at, tuple(events)))

    def set_morph(self, x: float, y: float) -> None:
        """Move the melodic timbre (any thread: the synth reads one attribute per block)."""
        self.synth.set_morph(x, y)

    def stats(self) -> AudioStats:
        s = self.synth.stats
        return AudioStats(self.ring.underruns, self.ring.missing, s.late, s.stolen, s.notes,
                          self.stream.xruns)

    def close(self) -> AudioStats:
        """All notes off (faded over one block), the thread joined, the ring played out, the
        stream stopped and closed. Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._stop_thread()
            deadline = time.monotonic() + DRAIN_S
            while self.ring.available() and time.monotonic() < deadline:
                time.sleep(NAP_S)
            self.stream.close()
        return self.stats()

    def _stop_thread(self) -> None:
        self._stopping = True
        self._go.set()
        self._thread.join(5.0)
        if self._thread.is_alive():
            logger.warning("the synthesis thread did not stop")

    # ------------------------------------------------------------------ the synthesis thread
    def _run(self) -> None:
        if self.rt_priority > 0:
            self.realtime = set_realtime(self.rt_priority)
        self._scheduled.set()
        self._go.wait()
        ring, synth, room = self.ring, self.synth, self.ahead - BLOCK
        try:
            while not self._stopping:
                if ring.available() > room:
                    time.sleep(NAP_S)
                    continue
                self._take_events()
                ring.write(synth.render_block())
            self._take_events()
            self._finish()
        except Exception:  # the ring runs dry and says so in underruns; the session goes on
            logger.exception("the synthesis thread failed")

    def _take_events(self) -> None:
        inbox, synth = self._inbox, self.synth
        while inbox:
            at, events = inbox.popleft()
            mapped = self.clock.sample_at(at)
            # before the device's first callback there is no line yet: as soon as possible
            sample = synth.position if mapped is None else mapped + self.lead
            for e in events:
                if e.kind == NOTE_ON:
                    synth.note_on(sample, e.channel, e.pitch, e.velocity)
                else:
                    synth.note_off(sample, e.channel, e.pitch)

    def _finish(self) -> None:
        """The last block: every note released and faded to silence, so closing never
        clicks; after it an empty ring is the end, not an underrun."""
        self.synth.all_notes_off(self.synth.position)
        last = self.synth.render_block() * self._fade_out
        deadline = time.monotonic() + DRAIN_S  # a device that stopped reading takes none
        while self.ring.space() < len(last) and time.monotonic() < deadline:
            time.sleep(NAP_S)
        self.ring.write(last)
        self.ring.count_underruns = False


def _warm_up(net: SynthNet) -> None:
    """One note on a throwaway synth: the first block compiles (or loads) the synth's numba
    kernels, a fifth of a second that must not fall on the real-time thread."""
    scratch = PolySynth(net)
    scratch.note_on(0, 0, 60, 64)
    scratch.render_block()
