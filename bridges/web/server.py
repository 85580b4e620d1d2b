"""Run the web bridge next to a live session: uvicorn on its own thread and event loop.

    server = serve(session)                   # http://127.0.0.1:8000
    print(server.url); ...; server.stop()

The socket is bound here, on the caller's thread, so a port in use or a bad address fails
at once with an OSError instead of inside the server thread. Binding anything but a
loopback address needs a token: the engine takes commands from whoever can reach it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from bridges.web.app import create_app
from bridges.web.direct import DirectProtocol
from bridges.web.hub import DEFAULT_QUEUE, TICK_S, Fanout, Hub
from bridges.web.security import BURST, MESSAGES_PER_SECOND, WS_FRAME_LIMIT, is_loopback
from musegen.engine.session import LiveSession

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
PING_INTERVAL_S = 10.0  # a client that vanished without closing is reaped within ~20 s


class WebConfigError(ValueError):
    """A setting the server refuses (a non-loopback address without a token)."""


@dataclass
class WebServer:
    url: str
    host: str
    port: int
    app: FastAPI
    _server: uvicorn.Server
    _thread: threading.Thread
    _stopped: bool = field(default=False)

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    def stop(self) -> None:
        """Close every connection and stop the server thread (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT_S)


def serve(
    session: LiveSession,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    *,
    allowed_origins: Sequence[str] = (),
    log_level: str = "warning",
    client_queue: int = DEFAULT_QUEUE,
    tick_s: float = TICK_S,
    messages_per_second: float = MESSAGES_PER_SECOND,
    burst: int = BURST,
    fanout: Fanout = "direct",
    dropped_inputs: Mapping[str, Callable[[], int]] | None = None,
) -> WebServer:
    """Serve the page, `/ws` and `/api` for `session` (port 0: any free port). `fanout`:
    "direct" writes each message, framed once, straight to every client keeping up;
    "queued" sends every copy through ASGI from a task per client (the old path, kept to
    compare against)."""
    if token == "":
        token = None
    if token is None and not is_loopback(host):
        raise WebConfigError(f"serving on {host} needs a token (--token): anyone who can "
                             "reach it could drive the engine")
    app = create_app(session, token=token, allowed_origins=allowed_origins,
                     allowed_hosts=() if is_loopback(host) else (host,),
                     client_queue=client_queue, tick_s=tick_s,
                     messages_per_second=messages_per_second, burst=burst, fanout=fanout,
                     dropped_inputs=dropped_inputs)
    sock = _bind(host, port)
    # uvicorn's own websockets protocol, plus a direct frame writer the hub may use
    config = uvicorn.Config(app, log_level=log_level, ws=DirectProtocol,
                            ws_max_size=WS_FRAME_LIMIT,
                            ws_ping_interval=PING_INTERVAL_S, ws_ping_timeout=PING_INTERVAL_S,
                            # JSON of a few KiB a bar needs no compression, and deflating
                            # it once per client cost ~0.3 ms each and ~60 KiB of zlib state
                            ws_per_message_deflate=False,
                            timeout_graceful_shutdown=2, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="musegen-web", daemon=True)
    thread.start()
    _wait_started(server, thread, sock)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    log.info("web page at %s", url)
    return WebServer(url, host, bound, app, server, thread)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _wait_started(server: uvicorn.Server, thread: threading.Thread,
                  sock: socket.socket) -> None:
    deadline = threading.Event()
    for _ in range(int(START_TIMEOUT_S / 0.01)):
        if server.started:
            return
        if not thread.is_alive():
            break
        deadline.wait(0.01)
    server.should_exit = True
    sock.close()
    raise OSError("the web server did not start")
