"""The OSC control server: one UDP socket, one thread, every message applied as it comes.

Bundles are applied at once, in their order (a control message's timetag is not waited
for: the engine's controls act from the next bar anyway). A datagram that is not OSC, or a
message `addresses.apply_message` refuses, is dropped and counted by reason; the last few
reasons are kept for whoever asks (`/api/health` shows the count).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import Counter, deque

from pythonosc.osc_packet import OscPacket, ParseError

from bridges.osc.addresses import OscDrop, apply_message
from musegen.engine import LiveSession

logger = logging.getLogger(__name__)

MAX_DATAGRAM = 65_535
POLL_S = 0.2  # how often the thread looks whether it should stop
KEPT_REASONS = 16


class OscControls:
    """Serves `session` on UDP `host:port` (port 0: any free one, see `.port`)."""

    def __init__(self, session: LiveSession, host: str = "127.0.0.1", port: int = 9000) -> None:
        self.session = session
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self._sock.settimeout(POLL_S)
        self.host, self.port = self._sock.getsockname()[:2]
        self.applied = 0
        self.dropped: Counter[str] = Counter()  # per kind: "not_osc", "refused", "failed"
        self.reasons: deque[str] = deque(maxlen=KEPT_REASONS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="musegen-osc", daemon=True)
        self._thread.start()

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def describe(self) -> str:
        return f"udp://{self.host}:{self.port} (no authentication: keep it on a trusted network)"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self._sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:  # closed under us
                return
            self.handle(data)

    def handle(self, data: bytes) -> None:
        """Parse and apply one datagram (the thread's work; public for the tests' sake)."""
        try:
            messages = OscPacket(data).messages
        except ParseError as exc:
            self._drop("not_osc", f"not an OSC packet ({exc})")
            return
        for timed in messages:
            message = timed.message
            try:
                apply_message(self.session, message.address, message.params)
            except OscDrop as exc:
                self._drop("refused", str(exc))
            except Exception as exc:  # a bug here must not end the server
                logger.exception("OSC message %s failed", message.address)
                self._drop("failed", f"{message.address}: {exc!r}")
            else:
                self.applied += 1

    def _drop(self, kind: str, reason: str) -> None:
        self.dropped[kind] += 1
        self.reasons.append(reason)
        logger.debug("OSC message dropped: %s", reason)
