"""One long-lived JACK client for the rig's patchbay work: list ports, connect, read links.

Why not `jack_lsp` and `jack_connect`: each run of them opens and closes a JACK client, and a
synchronous jackd (`-S`, what the rig needs) races such short-lived clients against any other
client that activates or deactivates at the same moment. Measured on the dummy-driver rig:
ten start/stop cycles of a two-port python-rtmidi client took 11 s and logged no error on a
quiet server, and 49 s with 8 `SuspendRefNum` errors (5 s stalls of the whole server) while
`jack_lsp` was polled every 20 ms beside them. This client is opened once per server, never
activated (it has no process callback, so it is never part of the graph the server waits
for), and reads ports from JACK's shared memory: polling it costs the server nothing.

libjack is called through ctypes, which releases the GIL around every call, so no JACK wait
ever holds it. Linux and macOS (libjack.so.0 / libjack.dylib); the rig is a test and
benchmark tool, not part of the engine.
"""

from __future__ import annotations

import errno
import time
from typing import Any

from bridges.midi.jack_client import JackClient


class JackControl(JackClient):
    """A never-activated client of the JACK server `server`; a context manager."""

    def __init__(self, server: str, name: str = "musegen-rig") -> None:
        super().__init__(server, name)

    def ports(self, *, flags: int = 0) -> list[str]:
        """Every port's full name (`client:port`), optionally only inputs or outputs."""
        with self._lock:
            return self._names(self._lib.jack_get_ports(self.handle(), None, None, flags))

    def connect(self, source: str, destination: str, timeout: float = 10.0) -> None:
        """Connect an output port to an input port; already connected is fine.

        Tried again until `timeout`: a client's ports are listed as soon as it registers
        them, but the server refuses to connect them until the client has activated."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                result = self._lib.jack_connect(self.handle(), source.encode(),
                                                destination.encode())
            if result in (0, errno.EEXIST):
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"JACK cannot connect {source!r} to {destination!r} "
                                   f"({result}; is the port's client active?)")
            time.sleep(0.02)

    def disconnect(self, source: str, destination: str) -> None:
        with self._lock:
            result = self._lib.jack_disconnect(self.handle(), source.encode(),
                                               destination.encode())
        if result != 0:
            raise RuntimeError(f"JACK cannot disconnect {source!r} from {destination!r}")

    def connections(self) -> dict[str, list[str]]:
        """Every port with the ports it is connected to."""
        out: dict[str, list[str]] = {}
        for name in self.ports():
            with self._lock:
                port = self._lib.jack_port_by_name(self.handle(), name.encode())
                links = (self._names(self._lib.jack_port_get_all_connections(
                    self.handle(), port)) if port else [])
            out[name] = links
        return out

    def _names(self, array: Any) -> list[str]:
        """A NULL-terminated `const char **` from libjack as strings; frees it."""
        if not array:
            return []
        names = []
        i = 0
        while array[i] is not None:
            names.append(array[i].decode(errors="replace"))
            i += 1
        self._lib.jack_free(array)
        return names
