"""OSC out: every note as it sounds, and each bar's downbeat, as timestamped OSC bundles.

    /musegen/<part>/note  pitch velocity duration_beats
    /musegen/bar          bar (the first part's bars, numbered from 0)

A note goes out when the dispatcher sends it (an engine Output: `send` only queues it; a
sender thread of its own builds the bundle and writes the socket), in a bundle stamped
`ahead_s` after it is due: a receiver that honours timetags (SuperCollider, Max with
timestamps on) plays it then, free of the network's jitter; `--latency-ms` sends everything
that much earlier. Its duration is the one its bar was generated with (the off's beat less
the on's). A downbeat goes out when its bar is generated, a bar or so ahead, stamped with
the time the clock then gives that beat: a tempo change after that moves the beat, not the
stamp. Timetags are wall-clock time (NTP, as OSC has it), mapped from the engine's clock at
sending.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from musegen.engine import NOTE_ON, LiveSession, Part, RenderedBar, ScheduledEvent

logger = logging.getLogger(__name__)

AHEAD_S = 0.05  # stamped this long after due: room for the network, the receiver's wake-up
DEFAULT_BEATS = 0.25  # a note whose bar we never saw (generated before we listened)
KEPT_NOTES = 4096  # durations remembered; older ones go (their notes have long sounded)
QUEUED = 4096  # moments waiting for the sender thread; a stalled one drops the oldest


def parse_target(text: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--osc-out wants HOST:PORT, got {text!r}")
    return host, int(port)


class OscNotesOut:
    """Implements `musegen.engine.Output` (notes) and listens to the session's bars
    (durations, downbeats). Sends are counted; a send the network refuses is counted too."""

    def __init__(self, session: LiveSession, host: str, port: int, *, ahead_s: float = AHEAD_S,
                 wall: Callable[[], float] = time.time) -> None:
        self.session = session
        self.target = (host, port)
        self.ahead_s = ahead_s
        self._wall = wall
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._durations: dict[int, float] = {}  # note_id -> beats, from the bars generated
        self._durations_lock = threading.Lock()  # the generation and the sender thread
        self._downbeats_sent = -1  # the last bar whose downbeat went out
        self._first_part = next(iter(session.parts))
        self.sent = 0
        self.errors = 0
        self._queue: deque[tuple[float, tuple[ScheduledEvent, ...]]] = deque(maxlen=QUEUED)
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="musegen-osc-out", daemon=True)
        self._thread.start()
        session.add_bar_listener(self._on_bar)
        session.add_output(self)

    def describe(self) -> str:
        return f"udp://{self.target[0]}:{self.target[1]}"

    def close(self) -> None:
        """Stop taking notes, send what is queued, close the socket."""
        self.session.remove_output(self)
        self._closing = True
        self._wake.set()
        self._thread.join(2.0)
        self._sock.close()

    # ------------------------------------------------------------ the dispatcher's side
    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        """Queue the moment (the dispatch thread builds nothing and writes no socket)."""
        self._queue.append((at, tuple(events)))
        self._wake.set()

    # ------------------------------------------------------------ the sender thread
    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                self._send_notes(*self._queue.popleft())
            if self._closing:
                return

    def _send_notes(self, at: float, events: tuple[ScheduledEvent, ...]) -> None:
        notes = [e for e in events if e.kind == NOTE_ON]
        if not notes:
            return
        bundle = OscBundleBuilder(self._wall_at(at) + self.ahead_s)  # type: ignore[arg-type]
        for e in notes:
            with self._durations_lock:
                beats = self._durations.pop(e.note_id, DEFAULT_BEATS)
            bundle.add_content(_message(f"/musegen/{e.part}/note", e.pitch, e.velocity,
                                        float(beats)))
        self._send(bundle.build().dgram)

    # ------------------------------------------------------------ the generation side
    def _on_bar(self, part: Part, rendered: RenderedBar) -> None:
        ons = {e.note_id: e.beat for e in rendered.events if e.kind == NOTE_ON}
        lengths = {e.note_id: e.beat - ons[e.note_id] for e in rendered.events
                   if e.kind != NOTE_ON and e.note_id in ons}
        with self._durations_lock:
            self._durations.update(lengths)
            while len(self._durations) > KEPT_NOTES:  # insertion order: the oldest first
                del self._durations[next(iter(self._durations))]
        if part.name == self._first_part and rendered.bar > self._downbeats_sent:
            self._downbeat(rendered.bar, rendered.bar * part.beats_per_bar)

    def _downbeat(self, bar: int, beat: float) -> None:
        due = self.session.clock.time_at(beat)
        if due == float("inf"):  # stopped: no time to give it
            return
        self._downbeats_sent = bar
        bundle = OscBundleBuilder(self._wall_at(due))  # type: ignore[arg-type]
        bundle.add_content(_message("/musegen/bar", bar))
        self._send(bundle.build().dgram)

    def _wall_at(self, t: float) -> float:
        """The engine's time `t` (its clock's seconds) as wall-clock seconds."""
        return t + (self._wall() - self.session.now())

    def _send(self, dgram: bytes) -> None:
        try:
            self._sock.sendto(dgram, self.target)
            self.sent += 1
        except OSError:
            self.errors += 1


def _message(address: str, *args: int | float) -> OscMessage:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build()
