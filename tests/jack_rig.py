"""A real JACK server for tests, as pytest fixtures (no mocks anywhere).

Use it from a test module with

    from tests.jack_rig import jack, jack_tool  # noqa: F401  (fixtures are found by name)

    def test_something(jack: JackServer, jack_tool: JackTool) -> None:
        clock = jack_tool.clock(120)                # jack_midi_clock -b 120 -B
        transport = jack_tool.transport()           # jack_transport (play/stop/locate...)
        dump = jack_tool.dump("rec")                # jack_midi_dump -a rec, records live
        dump.connect(clock.port, "musegen:musegen in")
        transport.play(); ...; records = dump.stop()  # [DumpRecord(frame, data)]

`jack` is session-scoped: one `jackd --no-realtime -S -d dummy -r 48000 -p 64` named
musegen-test-<k> (the first of a small pool that no running jackd uses) for the whole
run, stopped (SIGTERM, then SIGKILL) at the end. While it
runs, this process's environment has JACK_DEFAULT_SERVER set to it and
JACK_NO_START_SERVER=1, so python-rtmidi's JACK clients and every subprocess find it and
nothing starts another server. `jack.env` is that environment for subprocesses.

`jack_tool` is function-scoped: the clocks, transports and dumps a test starts through it
are stopped after the test (so leftovers never leak into the next one), and the transport
is stopped and located to 0 so every test starts from the top.

Tests skip, saying which binaries are missing, only when the JACK tools are not installed
(CI installs jackd2 and jack-midi-clock, so there they run).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Protocol

import pytest

from bench.rig.jack_tools import (
    JackMidiClock,
    JackServer,
    JackTransport,
    MidiDump,
    connect,
    connections,
    free_server_name,
    lsp,
    missing_tools,
    wait_port,
    wait_until,
)

__all__ = ["JackTool", "connect", "connections", "jack", "jack_tool", "lsp", "wait_port",
           "wait_until"]


class _Stoppable(Protocol):
    def stop(self) -> object: ...


@pytest.fixture(scope="session")
def jack() -> Iterator[JackServer]:
    """The test session's private JACK server (skips if the JACK tools are missing)."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"JACK tools not installed: {', '.join(missing)} (apt install jackd2 "
                    "jack-midi-clock)")
    server = JackServer(free_server_name("musegen-test")).start()
    server.use_in_process()
    try:
        yield server
    finally:
        server.stop()


class JackTool:
    """Starts JACK helper processes for one test and stops them all afterwards."""

    def __init__(self, server: JackServer) -> None:
        self.server = server
        self.env = server.env
        self._started: list[_Stoppable] = []
        self._transports: list[JackTransport] = []

    def clock(self, bpm: float, *, force_bpm: bool = True, jitter_pct: float = 0.0,
              resync_delay_s: float = 0.1) -> JackMidiClock:
        """`jack_midi_clock -b BPM` (-B unless force_bpm=False; -J jitter_pct)."""
        clock = JackMidiClock(self.env, bpm, force_bpm=force_bpm, jitter_pct=jitter_pct,
                              resync_delay_s=resync_delay_s)
        self._started.append(clock)
        return clock

    def transport(self) -> JackTransport:
        transport = JackTransport(self.env)
        self._transports.append(transport)
        return transport

    def dump(self, name: str = "musegen-dump") -> MidiDump:
        dump = MidiDump(self.env, name)
        self._started.append(dump)
        return dump

    def seconds(self, frames: int) -> float:
        return frames / self.server.rate

    def close(self) -> None:
        for transport in self._transports:
            transport.stop()
            transport.locate(0)
            transport.close()
        for proc in reversed(self._started):
            proc.stop()


@pytest.fixture
def jack_tool(jack: JackServer) -> Iterator[JackTool]:
    tool = JackTool(jack)
    stalls = jack.stalls()
    try:
        yield tool
    finally:
        tool.close()
        if jack.stalls() > stalls:  # say so: a failure after this is the server's stall
            warnings.warn(f"the JACK server stalled {jack.stalls() - stalls} time(s) in "
                          "this test (SuspendRefNum in its log)", stacklevel=1)
