"""The FastAPI app: the page at `/`, the protocol at `/ws`, REST under `/api`.

    app = create_app(session)                  # loopback only, no token
    app = create_app(session, token="s3cret")  # any Host; every API call needs the token

The app owns a `Hub` (app.state.hub) that hooks the session's bar and transport listeners
when the app starts and unhooks the transport one when it stops.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

import musegen
from bridges.web import rest
from bridges.web.hub import DEFAULT_QUEUE, TICK_S, Fanout, Hub
from bridges.web.security import BURST, MESSAGES_PER_SECOND, host_ok
from bridges.web.ws import Gate, serve_client
from musegen.engine.session import LiveSession
from musegen.paths import web_dir


def create_app(
    session: LiveSession,
    *,
    token: str | None = None,
    allowed_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] = (),
    client_queue: int = DEFAULT_QUEUE,
    tick_s: float = TICK_S,
    messages_per_second: float = MESSAGES_PER_SECOND,
    burst: int = BURST,
    fanout: Fanout = "direct",
    dropped_inputs: Mapping[str, Callable[[], int]] | None = None,
) -> FastAPI:
    """The app for `session`. `allowed_origins`: pages on other origins that may open the
    websocket and call the API ("*": any); `allowed_hosts`: names besides loopback the
    server answers to without a token; `fanout`: see `Hub`; `dropped_inputs`: other front
    doors' counts of messages dropped (OSC), by name, shown by /api/health."""
    hub = Hub(session, queue_size=client_queue, tick_s=tick_s, fanout=fanout)
    hub.dropped_inputs = dict(dropped_inputs or {})
    gate = Gate(token, frozenset(allowed_origins), frozenset(allowed_hosts),
                messages_per_second, burst)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(title="musegen", version=musegen.__version__, lifespan=lifespan,
                  description="A live music engine: the drum machine page, its websocket "
                  "protocol (docs/protocol.md) and one-shot generation.")
    app.state.hub = hub

    @app.middleware("http")
    async def check_host(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not host_ok(token, request.headers.get("host", ""), gate.allowed_hosts):
            return JSONResponse({"detail": "unknown host"}, status_code=400)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and a NaN or Infinity in it (Python's JSON
        # reader takes them) cannot be written back as JSON: that would be a 500, not a 422
        return JSONResponse({"detail": finite(jsonable_encoder(exc.errors()))}, status_code=422)

    if allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(allowed_origins),
                           allow_methods=["GET", "POST", "PUT"],
                           allow_headers=["Authorization", "Content-Type"])
    app.include_router(rest.router(hub, token))

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        await serve_client(ws, hub, gate)

    app.mount("/", StaticFiles(directory=web_dir(), html=True), name="web")
    return app


def finite(value: Any) -> Any:
    """`value` with every NaN or infinity spelled as a string, so it can be written as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
