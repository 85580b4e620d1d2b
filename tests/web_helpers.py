"""Shared pieces of the web bridge tests: a playing session behind a real server, and a
plain websockets client that reads messages until one matches."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from websockets.sync.client import ClientConnection, connect

from bridges.web import WebServer, serve
from bridges.web.grid import shown_step, steps_per_bar
from musegen.clock import Clock, InternalClock
from musegen.engine.events import NOTE_ON
from musegen.engine.part import RenderedBar
from musegen.engine.session import LiveSession

Message = dict[str, Any]


@contextmanager
def running_server(clock: Clock | None = None, **options: Any) -> Iterator[WebServer]:
    session = LiveSession.from_models({"drums": "drums-lstm"}, clock or InternalClock(240.0))
    server = serve(session, port=0, **options)
    session.start()
    try:
        yield server
    finally:
        server.stop()
        session.close()


def ws_url(server: WebServer, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/ws" + query


def client(server: WebServer, query: str = "", **kwargs: Any) -> ClientConnection:
    return connect(ws_url(server, query), open_timeout=5, **kwargs)


def recv(ws: ClientConnection, timeout: float = 5.0) -> Message:
    message: Message = json.loads(ws.recv(timeout=timeout))
    return message


def recv_until(ws: ClientConnection, match: Callable[[Message], bool],
               timeout: float = 10.0, seen: list[Message] | None = None) -> Message:
    """The first message matching `match` (the others go to `seen`); TimeoutError if none."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no matching message")
        message = recv(ws, left)
        if match(message):
            return message
        if seen is not None:
            seen.append(message)


def of_type(kind: str, **fields: Any) -> Callable[[Message], bool]:
    return lambda m: m["type"] == kind and all(m.get(k) == v for k, v in fields.items())


def send(ws: ClientConnection, **message: Any) -> None:
    ws.send(json.dumps(message))


def greeted(ws: ClientConnection) -> tuple[Message, Message]:
    """The hello and the first state every client gets."""
    hello = recv(ws)
    state = recv(ws)
    return hello, state


def grid_of(rendered: RenderedBar, beats_per_bar: float, lanes: tuple[int, ...]) -> list[list[int]]:
    """Velocity per lane and step (0: empty), as the page's grid shows a bar."""
    steps = steps_per_bar(beats_per_bar)
    start = rendered.bar * beats_per_bar
    cells = [[0] * steps for _ in lanes]
    for e in rendered.events:
        if e.kind == NOTE_ON and e.pitch in lanes:
            cells[lanes.index(e.pitch)][shown_step(e.beat, start, steps)] = e.velocity
    return cells
