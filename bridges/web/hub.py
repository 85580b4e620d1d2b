"""Fan-out from one engine to many browsers: every client gets every message, in order.

Engine hooks run on engine threads (bars on the generation thread, transport events on
whatever thread moved the clock). They serialise a message once and hand the text to the
event loop with `call_soon_threadsafe`. There, in the "direct" fan-out (the default where
the server offers it, see `direct.py`), the text is framed once and written straight to
every client that is keeping up (nothing queued, socket not backed up) in one pass. Any
other client gets it on its bounded queue without waiting, and its writer task drains the
queue onto its socket through ASGI (the "queued" fan-out does this for every client). A
client whose queue is full is too slow to keep up: it is dropped there and then, so it can
never delay the others or make the server hold an unbounded backlog for it. A client that
has gone costs nothing: its queue and task go with it.

The hub also remembers the bars queued ahead, so a client that connects (or reconnects)
mid-song gets what is about to sound at once instead of a bar of silence.

A move of the timbre morph (from a page, REST or a knob) reaches every client as a `state`
with reason "morph". Moves come in bursts (a pad dragged, a knob swept): they are coalesced
to one state per `MORPH_EVERY_S`, and the last position always goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from bridges.web.direct import FrameWriter, text_frame
from bridges.web.protocol import StateReason, encode
from bridges.web.snapshot import bar_message, session_state
from musegen.clock.base import (
    ClockLost,
    ClockRegained,
    Continue,
    SongPosition,
    Start,
    Stop,
    TempoEvent,
    TransportEvent,
)
from musegen.engine.part import Part, RenderedBar
from musegen.engine.session import LiveSession

log = logging.getLogger(__name__)

DEFAULT_QUEUE = 64  # messages; a bar per part per bar plus a state a second: ~30 s of music
TICK_S = 1.0  # a state anchor this often keeps browsers on a drifting (DAW-led) clock
KEPT_BARS = 32  # bars remembered for late joiners, all parts together
MORPH_EVERY_S = 0.02  # at most one morph state this often (a knob sends hundreds a second)
Fanout = Literal["direct", "queued"]
FANOUTS: tuple[Fanout, ...] = ("direct", "queued")
_REASONS: dict[type, StateReason] = {
    Start: "start", Stop: "stop", Continue: "continue", SongPosition: "locate",
    TempoEvent: "tempo", ClockLost: "clock_lost", ClockRegained: "clock_regained",
}


@dataclass(eq=False)
class Client:
    id: int
    queue: asyncio.Queue[str]
    on_drop: Callable[[], None]
    write: FrameWriter | None = None  # the server's direct writer, when it offers one
    dropped: bool = False
    busy: bool = False  # the writer task holds a message it has not finished sending
    sent: int = 0
    joined: float = field(default_factory=time.monotonic)


class Hub:
    def __init__(self, session: LiveSession, *, queue_size: int = DEFAULT_QUEUE,
                 tick_s: float = TICK_S, fanout: Fanout = "direct") -> None:
        if fanout not in FANOUTS:
            raise ValueError(f"fanout must be one of {FANOUTS}, not {fanout!r}")
        self.session = session
        # other front doors' dropped-message counts, by name (shown by /api/health)
        self.dropped_inputs: dict[str, Callable[[], int]] = {}
        self.queue_size = queue_size
        self.tick_s = tick_s
        self.fanout = fanout
        self.clients: dict[int, Client] = {}
        self.dropped = 0  # clients dropped for being too slow
        self.broadcasts = 0
        self.direct_writes = 0  # copies written straight to a socket, not queued
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.Task[None] | None = None
        self._bars: dict[tuple[str, int], RenderedBar] = {}
        self._bars_lock = threading.Lock()
        self._hooked = False
        self._morph_pending = False  # a morph state is scheduled and has not read the state
        self._morph_lock = threading.Lock()
        self._morph_sent = 0.0

    # -- life cycle (on the event loop) -------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._hooked:  # a session cannot forget a bar listener: hook it once
            self.session.add_bar_listener(self._on_bar)
            self._hooked = True
            for part in self.session.parts.values():  # bars queued before we were hooked
                for rendered in tuple(part.rendered):
                    self._remember(part.name, rendered)
        self.session.add_transport_listener(self._on_transport)
        self._morph_pending = False  # one scheduled on a loop that has gone never ran
        self.session.add_morph_listener(self._on_morph)
        self._tick = asyncio.create_task(self._ticker())

    async def stop(self) -> None:
        self.session.clock.remove_listener(self._on_transport)
        self.session.remove_morph_listener(self._on_morph)
        if self._tick is not None:
            self._tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick
        for client in list(self.clients.values()):
            self._drop(client, slow=False)
        self._loop = None

    # -- clients (on the event loop) ----------------------------------------------------------

    def join(self, on_drop: Callable[[], None], write: FrameWriter | None = None) -> Client:
        """A new client; `write` is the server's direct frame writer for its socket, if any
        (used only by the direct fan-out)."""
        client = Client(next(self._ids), asyncio.Queue(self.queue_size), on_drop,
                        write if self.fanout == "direct" else None)
        self.clients[client.id] = client
        return client

    def leave(self, client: Client) -> None:
        self.clients.pop(client.id, None)

    def send(self, client: Client, text: str, frame: bytes | None = None) -> bool:
        """Send one message to one client: written now when it is keeping up and the fan-out
        is direct, else queued; a full queue drops the client (False). `frame`: `text`
        already framed, shared by every client of a broadcast."""
        if client.dropped:
            return False
        # Straight to the socket only when nothing of this client's is waiting or in flight,
        # so its messages stay in order; a backed-up socket refuses and the queue takes it.
        if (client.write is not None and not client.busy and client.queue.empty()
                and client.write(frame if frame is not None else text_frame(text))):
            client.sent += 1
            self.direct_writes += 1
            return True
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("web client %d dropped: %d messages behind", client.id,
                        client.queue.qsize())
            self._drop(client, slow=True)
            return False
        return True

    def broadcast(self, text: str) -> None:
        self.broadcasts += 1
        clients = tuple(self.clients.values())
        frame = text_frame(text) if any(c.write is not None for c in clients) else None
        for client in clients:
            self.send(client, text, frame)

    def broadcast_threadsafe(self, text: str) -> None:
        """`broadcast` from any thread (engine hooks)."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody listens
            loop.call_soon_threadsafe(self.broadcast, text)

    @staticmethod
    async def pump(client: Client, send: Callable[[str], Awaitable[None]]) -> None:
        """Drain `client`'s queue onto its socket until cancelled."""
        while True:
            text = await client.queue.get()
            client.busy = True
            try:
                await send(text)
            finally:
                client.busy = False
            client.sent += 1

    def _drop(self, client: Client, *, slow: bool) -> None:
        client.dropped = True
        self.clients.pop(client.id, None)
        if slow:
            self.dropped += 1
        client.on_drop()

    # -- what a new client needs --------------------------------------------------------------

    def backlog(self) -> list[str]:
        """The bars queued from the playing one on, as `bar` messages (oldest first)."""
        session = self.session
        bpb = session.worker.beats_per_bar
        playing = session.worker.bar_at(session.state().beat)
        ahead = playing + session.worker.lookahead_bars + 1
        with self._bars_lock:
            bars = sorted(self._bars.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        now = time.monotonic()
        return [encode(bar_message(name, bpb, rendered, now, "backlog"))
                for (name, index), rendered in bars if playing <= index <= ahead]

    # -- engine hooks (engine threads) --------------------------------------------------------

    def _on_bar(self, part: Part, rendered: RenderedBar) -> None:
        sent_at = time.monotonic()  # the engine's send moment, for delivery latency
        edited = self._remember(part.name, rendered)
        if self._loop is None or not self.clients:
            return
        text = encode(bar_message(part.name, part.beats_per_bar, rendered, sent_at,
                                  "edited" if edited else "generated"))
        self.broadcast_threadsafe(text)

    def _remember(self, name: str, rendered: RenderedBar) -> bool:
        """Keep the bar for late joiners; True when it is an edit of the bar it replaces."""
        key = (name, rendered.bar)
        with self._bars_lock:
            old = self._bars.get(key)
            self._bars[key] = rendered
            while len(self._bars) > KEPT_BARS:
                del self._bars[min(self._bars, key=lambda k: k[1])]
        return old is not None and old.version == rendered.version and \
            old.tokens == rendered.tokens

    def remembered(self, name: str, bar: int) -> RenderedBar | None:
        with self._bars_lock:
            return self._bars.get((name, bar))

    def _on_transport(self, event: TransportEvent) -> None:
        if self._loop is None or not self.clients:
            return
        self.broadcast_threadsafe(self.state_text(_REASONS.get(type(event), "tick")))

    def _on_morph(self, x: float, y: float) -> None:
        loop = self._loop
        if loop is None:
            return
        with self._morph_lock:
            if self._morph_pending:
                return  # the state already scheduled reads the position when it goes out
            self._morph_pending = True
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody listens
            loop.call_soon_threadsafe(self._schedule_morph)

    def _schedule_morph(self) -> None:
        wait = self._morph_sent + MORPH_EVERY_S - time.monotonic()
        if self._loop is not None:
            self._loop.call_later(max(0.0, wait), self._send_morph)

    def _send_morph(self) -> None:
        with self._morph_lock:
            self._morph_pending = False  # a move from now on schedules another state
        self._morph_sent = time.monotonic()
        if self.clients:
            self.broadcast(self.state_text("morph"))

    def state_text(self, reason: StateReason) -> str:
        return encode(session_state(self.session, reason))

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if self.clients:
                self.broadcast(self.state_text("tick"))
