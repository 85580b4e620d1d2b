"""Fan-out under trouble, on a real server, for both of the hub's fan-outs: a client that
stops reading is dropped while the others get everything in order; clients that vanish
without a goodbye are forgotten."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from bridges.web import WebServer
from bridges.web.direct import text_frame
from bridges.web.hub import Hub
from musegen.clock import InternalClock
from musegen.engine.session import LiveSession
from tests.web_helpers import client, greeted, recv, running_server

QUEUE = 8


@pytest.fixture(scope="module", params=["direct", "queued"])
def server(request: pytest.FixtureRequest) -> Iterator[WebServer]:
    with running_server(client_queue=QUEUE, fanout=request.param) as s:
        yield s


def stalled_client(server: WebServer) -> socket.socket:
    """A websocket client that completes the handshake and then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: leave the greeting frames in the kernel buffer
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def wait_for(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_client_that_stops_reading_is_dropped_and_the_others_get_everything(
        server: WebServer) -> None:
    hub = server.hub
    dropped_before = hub.dropped
    stalled = stalled_client(server)
    try:
        with client(server, max_size=None) as good:
            greeted(good)
            assert wait_for(lambda: len(hub.clients) >= 2)
            got: list[int] = []

            def read() -> None:
                while len(got) < sent:
                    m = recv(good, timeout=20)
                    if m["type"] == "flood":
                        got.append(m["i"])

            sent = 300
            reader = threading.Thread(target=read)
            reader.start()
            pad = "x" * 32_000
            for i in range(sent):  # ~10 MB: more than any socket buffer holds
                hub.broadcast_threadsafe(json.dumps({"type": "flood", "i": i, "pad": pad}))
                time.sleep(0.003)
            reader.join(30)
            assert got == list(range(sent)), "the reading client got every message in order"
            assert wait_for(lambda: hub.dropped > dropped_before)
            assert len(hub.clients) == 1
            # the direct fan-out wrote straight to the socket while the client kept up
            assert (hub.direct_writes > 0) == (hub.fanout == "direct")
    finally:
        stalled.close()


def test_clients_that_vanish_are_forgotten(server: WebServer) -> None:
    hub = server.hub
    assert wait_for(lambda: len(hub.clients) == 0)
    with ExitStack() as stack:
        gone = [stack.enter_context(client(server)) for _ in range(20)]
        for ws in gone:
            greeted(ws)
        assert wait_for(lambda: len(hub.clients) == 20)
        for ws in gone:  # no close frame: the process just lets go of the socket
            ws.socket.shutdown(socket.SHUT_RDWR)
            ws.socket.close()
        assert wait_for(lambda: len(hub.clients) == 0), "no client lingers after it vanished"
    with client(server) as ws:
        greeted(ws)
        hub.broadcast_threadsafe(json.dumps({"type": "flood", "i": -1}))
        while recv(ws)["type"] != "flood":
            pass


def test_direct_writes_never_overtake_a_queued_message_and_a_backed_up_client_is_dropped(
        ) -> None:
    session = LiveSession.from_models({"drums": "drums-lstm"}, InternalClock(120.0))
    hub = Hub(session, queue_size=3)
    written: list[bytes] = []
    socket_ok = True

    def write(frame: bytes) -> bool:
        if socket_ok:
            written.append(frame)
        return socket_ok

    async def scenario() -> None:
        nonlocal socket_ok
        dropped: list[bool] = []
        one = hub.join(lambda: dropped.append(True), write)
        hub.broadcast("a")  # keeping up: straight to the socket
        socket_ok = False
        hub.broadcast("b")  # the socket is backed up: queued
        socket_ok = True
        hub.broadcast("c")  # the socket would take it, but "b" is waiting: queued behind
        assert written == [text_frame("a")] and one.queue.qsize() == 2
        sent: list[str] = []

        async def send(text: str) -> None:
            await asyncio.sleep(0)
            sent.append(text)

        writer = asyncio.create_task(hub.pump(one, send))
        while len(sent) < 2:
            await asyncio.sleep(0)
        hub.broadcast("d")  # caught up: direct again
        assert sent == ["b", "c"] and written[-1] == text_frame("d")
        writer.cancel()
        socket_ok = False
        for text in "efgh":  # nobody drains the queue now: the client falls behind
            hub.broadcast(text)
        assert dropped == [True] and one.id not in hub.clients

    try:
        asyncio.run(scenario())
    finally:
        session.close()
