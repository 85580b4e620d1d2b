"""The `/ws` endpoint: admit a client, greet it, then read its messages until it goes.

Reading and writing are separate: this coroutine only reads (one message at a time, size-
and rate-limited), while the hub sends: straight to the socket through the server's direct
writer when it offers one, else (and whenever the client is behind) through the client's
writer task. A bad message gets an
`error` reply and the connection stays; only the transport's own frame limit, a client too
slow to keep up, or the client itself ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

import musegen
from bridges.web import handlers
from bridges.web.direct import frame_writer
from bridges.web.grid import steps_per_bar
from bridges.web.hub import Client, Hub
from bridges.web.protocol import Limits, ProtocolError, ServerHello, encode, parse_client
from bridges.web.security import (
    BURST,
    MAX_MESSAGE_BYTES,
    MESSAGES_PER_SECOND,
    RateLimit,
    host_ok,
    origin_ok,
    token_ok,
)
from musegen.music.drum_map import CLASS_TO_GM_PITCH, DRUM_CLASSES

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013  # sent to a client dropped for being too slow
CLOSE_WAIT_S = 2.0


@dataclass(frozen=True)
class Gate:
    token: str | None
    allowed_origins: Collection[str]
    allowed_hosts: Collection[str]
    rate: float = MESSAGES_PER_SECOND
    burst: int = BURST
    max_message_bytes: int = MAX_MESSAGE_BYTES

    def admits(self, ws: WebSocket) -> bool:
        host = ws.headers.get("host", "")
        return (host_ok(self.token, host, self.allowed_hosts)
                and origin_ok(ws.headers.get("origin"), host, self.allowed_origins)
                and token_ok(self.token, ws.headers, ws.query_params))


async def serve_client(ws: WebSocket, hub: Hub, gate: Gate) -> None:
    if not gate.admits(ws):
        await ws.close(code=POLICY_VIOLATION)  # before accept: an HTTP 403
        return
    await ws.accept()
    writer: asyncio.Task[None] | None = None

    def on_drop() -> None:
        if writer is not None:
            writer.cancel()
        asyncio.get_running_loop().create_task(_close(ws, TRY_AGAIN_LATER, "too slow"))

    client = hub.join(on_drop, frame_writer(ws.scope))
    writer = asyncio.create_task(hub.pump(client, ws.send_text), name=f"ws-{client.id}")
    try:
        _greet(hub, client, gate)
        await _read(ws, hub, client, gate)
    except WebSocketDisconnect:
        pass
    finally:
        hub.leave(client)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


def _greet(hub: Hub, client: Client, gate: Gate) -> None:
    hello = ServerHello(
        server_version=musegen.__version__, client_id=client.id,
        steps_per_bar=steps_per_bar(hub.session.worker.beats_per_bar),
        drum_lanes=list(CLASS_TO_GM_PITCH), drum_lane_names=list(DRUM_CLASSES),
        limits=Limits(max_message_bytes=gate.max_message_bytes,
                      messages_per_second=gate.rate, burst=gate.burst))
    hub.send(client, encode(hello))
    hub.send(client, hub.state_text("hello"))
    for text in hub.backlog():
        hub.send(client, text)


async def _read(ws: WebSocket, hub: Hub, client: Client, gate: Gate) -> None:
    limit = RateLimit(gate.rate, gate.burst)
    while not client.dropped:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        try:
            await _one(message, hub, client, gate, limit)
        except ProtocolError as exc:
            hub.send(client, encode(exc.reply()))
        except Exception:  # a bug must cost one reply, not the connection
            log.exception("web client %d: message failed", client.id)
            hub.send(client, encode(ProtocolError("engine", "internal error").reply()))
        # Messages already buffered come back without a pause: give the writer its turn, or
        # a client that sends a burst would overflow its own reply queue and be dropped.
        await asyncio.sleep(0)


async def _one(message: Mapping[str, Any], hub: Hub, client: Client, gate: Gate,
               limit: RateLimit) -> None:
    text = message.get("text")
    if not isinstance(text, str):
        raise ProtocolError("binary", "messages are JSON text frames")
    if not limit.allow():
        raise ProtocolError("rate_limited", f"more than {gate.rate:g} messages a second")
    if len(text) > gate.max_message_bytes:  # characters: at least as many bytes
        raise ProtocolError("too_large", f"messages are at most {gate.max_message_bytes} bytes")
    await handlers.handle(parse_client(text), hub, client)


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    # A stalled socket cannot take a close frame: the server's ping timeout reaps it later;
    # the hub has already forgotten it, so it delays nobody meanwhile.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code=code, reason=reason), CLOSE_WAIT_S)
