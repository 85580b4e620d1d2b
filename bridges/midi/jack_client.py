"""A never-activated JACK client: the handle the engine's frame clock reads JACK time from.

Opened once per server and never activated: it has no process callback, so it is never part
of the graph the server waits for, and reading the frame counter through it costs the server
nothing. libjack is called through ctypes, which releases the GIL around every call, so no
JACK wait ever holds it. Linux and macOS (libjack.so.0 / libjack.dylib).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

JACK_NO_START_SERVER = 0x01
JACK_SERVER_NAME = 0x04
PORT_IS_INPUT = 0x1
PORT_IS_OUTPUT = 0x2

_lib: Any = None
_lib_lock = threading.Lock()


def libjack() -> Any:
    """The system's libjack, loaded once, with the prototypes used here."""
    global _lib
    with _lib_lock:
        if _lib is None:
            path = ctypes.util.find_library("jack") or "libjack.so.0"
            lib = ctypes.CDLL(path)
            names = ctypes.POINTER(ctypes.c_char_p)
            lib.jack_client_open.restype = ctypes.c_void_p
            lib.jack_client_close.argtypes = [ctypes.c_void_p]
            lib.jack_get_ports.restype = names
            lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.c_ulong]
            lib.jack_free.argtypes = [ctypes.c_void_p]
            lib.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
            lib.jack_disconnect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
            lib.jack_port_by_name.restype = ctypes.c_void_p
            lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.jack_port_get_all_connections.restype = names
            lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            _lib = lib
        return _lib


class JackClient:
    """A never-activated client of the JACK server `server`; a context manager."""

    def __init__(self, server: str, name: str = "musegen") -> None:
        self.server = server
        lib = libjack()
        status = ctypes.c_int(0)
        handle = lib.jack_client_open(name.encode(), JACK_NO_START_SERVER | JACK_SERVER_NAME,
                                      ctypes.byref(status), server.encode())
        if not handle:
            raise RuntimeError(f"no JACK server {server!r} answers (status 0x{status.value:x})")
        self._lib = lib
        self._client: int | None = handle
        self._lock = threading.Lock()  # one libjack call on this client at a time

    def handle(self) -> int:
        """The open client, for other libjack calls on it (raises once closed)."""
        if self._client is None:
            raise RuntimeError("the JACK client is closed")
        return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._lib.jack_client_close(self._client)
                self._client = None

    def __enter__(self) -> JackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
