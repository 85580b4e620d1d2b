"""The session recording: every note sent and received, in a MIDI file rewritten atomically at
every bar, so a crash or `kill -9` loses at most the bar being played.

Cheap where it must be: `send` (the dispatcher's thread) and `note_in` (the input thread)
only append to deques. A writer thread wakes every `poll_s`; when the clock has crossed a
bar line (or, while stopped, when anything new arrived) it encodes the new events onto
per-track byte buffers (the file's tracks are append-only, so old bars are never encoded
again) and writes header + buffers to a temporary file that replaces the old one.

Time: the file is in wall time as heard, at PPQN, with the clock's tempo written as tempo
changes where they happened, so a player can line it up with the bars of the session.
Tracks: 0 tempo, 1 what the engine sent, 2 what the player played.
"""

from __future__ import annotations

import bisect
import math
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from musegen.clock import Clock, TempoEvent, TransportEvent
from musegen.engine.events import NOTE_ON, ScheduledEvent
from musegen.music.midi_spec import CHANNEL_MASK
from musegen.music.midi_spec import NOTE_OFF as NOTE_OFF_STATUS
from musegen.music.midi_spec import NOTE_ON as NOTE_ON_STATUS
from musegen.music.timing import PPQN

END_OF_TRACK = b"\x00\xff\x2f\x00"

Raw = tuple[float, int, int, int]  # (seconds, status byte, data1, data2)


class SessionRecorder:
    def __init__(
        self,
        path: str | os.PathLike[str],
        clock: Clock,
        *,
        now: Callable[[], float] = time.monotonic,
        poll_s: float = 0.05,
        beats_per_bar: float = 4.0,
    ) -> None:
        self.path = Path(path)
        self.beats_per_bar = beats_per_bar
        self.clock = clock
        self.poll_s = poll_s
        self.writes = 0
        self._now = now
        self._t0 = now()
        self._out: deque[Raw] = deque()
        self._in: deque[Raw] = deque()
        self._tempo_in: deque[tuple[float, float]] = deque()
        self._tempo_map: list[tuple[float, int, float]] = [(self._t0, 0, clock.tempo_bpm)]
        self._tracks = [bytearray(self._tempo_bytes(0, clock.tempo_bpm)), bytearray(),
                        bytearray()]
        self._last_tick = [0, 0, 0]
        self._last_bar: int | None = None
        self._lock = threading.Lock()  # one writer at a time (thread and close())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        clock.add_listener(self._on_transport)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush(force=True)

    # -- intake (any thread, cheap) -----------------------------------------------------------

    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        """As an engine Output: record what is sent, at the moment it was due."""
        for e in events:
            status = (NOTE_ON_STATUS if e.kind == NOTE_ON else NOTE_OFF_STATUS) | e.channel
            self._out.append((at, status, e.pitch, e.velocity))

    def note_in(self, t: float, channel: int, pitch: int, velocity: int) -> None:
        status = (NOTE_ON_STATUS if velocity > 0 else NOTE_OFF_STATUS) | (channel & CHANNEL_MASK)
        self._in.append((t, status, pitch & 0x7F, velocity & 0x7F))

    def _on_transport(self, event: TransportEvent) -> None:
        if isinstance(event, TempoEvent):
            self._tempo_in.append((event.t, event.bpm))

    # -- writing ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="musegen-recorder", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        self.clock.remove_listener(self._on_transport)
        self.flush(force=True)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.flush()

    def flush(self, force: bool = False) -> bool:
        """Write the file if a bar line has passed (or `force`); True when written."""
        beat = self.clock.beat_at(self._now())
        bar = math.floor(beat / self.beats_per_bar) if math.isfinite(beat) else None
        new = bool(self._out or self._in or self._tempo_in)
        if not force and (not new or (bar == self._last_bar and self.clock.playing)):
            return False
        with self._lock:
            self._last_bar = bar
            self._encode_pending()
            self._write()
            self.writes += 1
        return True

    def _encode_pending(self) -> None:
        while self._tempo_in:
            t, bpm = self._tempo_in.popleft()
            tick = self._tick(t)
            self._tempo_map.append((t, tick, bpm))
            self._append(0, tick, self._tempo_bytes_body(bpm))
        for track, source in ((1, self._out), (2, self._in)):
            while source:
                t, status, d1, d2 = source.popleft()
                self._append(track, self._tick(t), bytes((status, d1, d2)))

    def _tick(self, t: float) -> int:
        """Wall time -> file tick through the tempo map recorded so far."""
        i = max(0, bisect.bisect_right(self._tempo_map, (t, math.inf, math.inf)) - 1)
        t_i, tick_i, bpm = self._tempo_map[i]
        return max(0, tick_i + round((t - t_i) * bpm / 60.0 * PPQN))

    def _append(self, track: int, tick: int, body: bytes) -> None:
        delta = max(0, tick - self._last_tick[track])  # a late arrival lands at the same tick
        self._last_tick[track] += delta
        self._tracks[track] += _varlen(delta) + body

    def _tempo_bytes(self, tick: int, bpm: float) -> bytes:
        return _varlen(tick) + self._tempo_bytes_body(bpm)

    @staticmethod
    def _tempo_bytes_body(bpm: float) -> bytes:
        us = max(1, min(0xFFFFFF, round(60_000_000 / bpm)))
        return b"\xff\x51\x03" + us.to_bytes(3, "big")

    def _write(self) -> None:
        chunks = [b"MThd" + struct.pack(">IHHH", 6, 1, len(self._tracks), PPQN)]
        for data in self._tracks:
            body = bytes(data) + END_OF_TRACK
            chunks.append(b"MTrk" + struct.pack(">I", len(body)) + body)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(chunks))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)  # atomic: a reader or a crash never sees half a file


def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))
