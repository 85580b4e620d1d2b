"""Direct frame writes for the hub's fan-out, under uvicorn's websockets (sans-I/O) protocol.

Going through ASGI, every copy of a message costs its own `send` coroutine: Starlette's state
checks, uvicorn's event wait, the websockets library framing the same text again, and a
writer task woken to run it all. A server frame is not masked, so one message is the same
bytes on every connection: the hub frames it once (`text_frame`) and, for each client whose
socket can take it now, hands those bytes to the transport in one synchronous pass.

`DirectProtocol` is uvicorn's own websockets protocol (passed as `ws=` to uvicorn.Config)
that offers such a writer to the app in the ASGI scope, under `extensions[EXTENSION]
["write"]`. A server without it (another ASGI server, Starlette's TestClient) offers none
and the hub sends through ASGI as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

log = logging.getLogger(__name__)

EXTENSION = "musegen.direct_frames"
FrameWriter = Callable[[bytes], bool]


def text_frame(text: str) -> bytes:
    """`text` as one unmasked, uncompressed websocket text frame (the server side)."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def frame_writer(scope: Mapping[str, Any]) -> FrameWriter | None:
    """The direct writer the server offers in this websocket's scope, if any."""
    extensions = scope.get("extensions") or {}
    offered = extensions.get(EXTENSION)
    if not isinstance(offered, dict):
        return None
    write = offered.get("write")
    return write if callable(write) else None


class DirectProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol plus `write_frame`, offered to the app in the scope."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # Only an upgraded connection has a scope; the app's task has not run yet, so the
        # extension is there when it first looks.
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:  # a deflated frame is not ours
            extensions = scope.setdefault("extensions", {})
            if extensions is not None:
                extensions[EXTENSION] = {"write": self.write_frame}

    def write_frame(self, frame: bytes) -> bool:
        """Write one ready frame now; False (nothing written) when the connection is not
        open for data or its transport buffer is over the high-water mark. Every other write
        uvicorn makes is flushed as it is made, so frames never interleave."""
        if (self.close_sent or self.disconnected or not self.handshake_complete
                or self.initial_response is not None or not self.writable.is_set()
                or self.conn.state is not State.OPEN or self.transport.is_closing()):
            return False
        self.transport.write(frame)
        return True
