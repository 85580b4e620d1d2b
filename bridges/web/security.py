"""Who may talk to the engine: the Host, the Origin, the token, and how much and how fast.

Without a token the server only answers requests addressed to a loopback name (a page on
another site that rebinds its DNS name to 127.0.0.1 still sends its own name as Host).
A websocket from a browser must come from the page's own origin or one allowed by name;
clients that send no Origin are programs, not pages a user was lured to. With a token,
every API request and websocket must carry it (`?token=` or `Authorization: Bearer`).
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_MESSAGE_BYTES = 8192  # a client message; the largest real one is well under 1 KiB
WS_FRAME_LIMIT = 65536  # the transport closes the socket (1009) on anything bigger
MESSAGES_PER_SECOND = 40.0
BURST = 80


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a Host header ('[::1]:8000' -> '::1')."""
    return urlsplit(f"//{host_header}").hostname or ""


def token_ok(expected: str | None, headers: Mapping[str, str],
             query: Mapping[str, str]) -> bool:
    if expected is None:
        return True
    given = query.get("token") or ""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return hmac.compare_digest(given.encode(), expected.encode())


def host_ok(token: str | None, host_header: str, allowed_hosts: Collection[str]) -> bool:
    """Without a token, only loopback names (or ones allowed by name) are answered."""
    if token is not None:
        return True
    name = host_name(host_header)
    return is_loopback(name) or name in allowed_hosts


def origin_ok(origin: str | None, host_header: str, allowed: Collection[str]) -> bool:
    if origin is None:
        return True
    if "*" in allowed or origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host_header


class RateLimit:
    """A token bucket: `rate` messages a second on average, bursts of up to `burst`."""

    def __init__(self, rate: float = MESSAGES_PER_SECOND, burst: int = BURST) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
