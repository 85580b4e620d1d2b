"""MIDI ports: our own virtual ports ("musegen in", "musegen out"), or a connection to an
existing port found by name, kept alive by a watcher that reopens it when it comes back.

Virtual mode creates the port and lets the DAW connect to it; on JACK rtmidi makes one
client per rtmidi object, so the ports show up as "musegen:musegen in" and
"musegen-01:musegen out" (JACK numbers clashing client names): the port part is exactly
ours. Existing-port mode opens our port connected to the first port whose name contains
the target (an exact match wins), e.g. a loopMIDI port on Windows, where rtmidi has no
virtual ports at all.

A connected port that goes away (the synth quit, the USB cable came out) is noticed by
`PortWatcher`, a small thread polling the port lists (one cheap rtmidi call per port), and
reopened when a port of that name is back. A flap shorter than the poll interval goes
unnoticed on backends that keep the name: the port would still be listed at both polls.

Output sends take a lock that a reopen also takes, so the dispatch thread never writes to a
port in the middle of being reopened; uncontended it costs well under a microsecond.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bridges.midi.backends import DEFAULT_CLIENT, MidiUnavailable, open_input, open_output
from bridges.midi.pump import InputPump
from bridges.midi.ticker import Ticker

logger = logging.getLogger(__name__)

IN_NAME = "musegen in"
OUT_NAME = "musegen out"
MELODY_NAME = "musegen melody out"
WATCH_INTERVAL_S = 0.5

Direction = Literal["input", "output"]
InputCallback = Callable[[tuple[Sequence[int], float], object], None]


def find_port(names: Sequence[str], target: str) -> int | None:
    """Index of the port named `target`, else of the first whose name contains it."""
    if target in names:
        return names.index(target)
    folded = target.casefold()
    for i, name in enumerate(names):
        if folded in name.casefold():
            return i
    return None


class MidiPort:
    """One rtmidi port: virtual (`target` None) or connected to an existing port."""

    def __init__(self, midi: Any, direction: Direction, name: str,
                 target: str | None = None) -> None:
        self.direction: Direction = direction
        self.name = name  # our port's name (on JACK, after the client name and a colon)
        self.target = target
        self.reopened = 0  # times the watcher brought the connection back
        self._midi = midi
        self._lock = threading.Lock()
        self._connected = False
        self._callback: InputCallback | None = None
        self._pump: InputPump | None = None
        self._rt_priority = 0

    @classmethod
    def open(cls, backend: str, direction: Direction, name: str, *, target: str | None = None,
             client: str = DEFAULT_CLIENT) -> MidiPort:
        """Open a virtual port called `name`, or (with `target`) connect to an existing port
        whose name contains `target`; raises MidiUnavailable with the ports there are."""
        midi = open_input(backend, client) if direction == "input" else open_output(backend, client)
        port = cls(midi, direction, name, target)
        try:
            port._open_first()
        except BaseException:
            midi.delete()
            raise
        return port

    @property
    def connected(self) -> bool:
        """A virtual port always is; an existing-port connection while its target is there."""
        return self._connected

    @property
    def virtual(self) -> bool:
        return self.target is None

    def available(self) -> list[str]:
        """The ports this one could connect to (the other side's ports)."""
        return list(self._midi.get_ports())

    def set_callback(self, callback: InputCallback, *, rt_priority: int = 0) -> None:
        """Input only: receive every message in `callback` (kept across reopens), with the
        timing messages (clock, start, stop) let through and sysex and active sensing not.

        `callback((message, t), ABSOLUTE_TIME)` runs on a pump thread (see pump.py: never
        in the MIDI system's own thread), `t` being the arrival time on time.monotonic;
        under SCHED_FIFO at `rt_priority` where the system allows it (0: normal)."""
        if self.direction != "input":
            raise ValueError("only an input port has a callback")
        self._callback = callback
        self._rt_priority = rt_priority
        with self._lock:
            self._apply_callback()

    @property
    def pump(self) -> InputPump | None:
        """Input only, once a callback is set: the thread that reads the port."""
        return self._pump

    def send_message(self, message: Sequence[int]) -> None:
        """Output only: send one raw message (a no-op while disconnected)."""
        with self._lock:
            if self._connected:
                self._midi.send_message(message)

    def poll(self) -> bool:
        """Existing-port mode: follow the target going away and coming back (the watcher
        calls this). Returns True when the connection changed."""
        if self.target is None:
            return False
        index = find_port(self.available(), self.target)
        if index is None:
            if self._connected:
                self._connected = False
                logger.warning("MIDI port %r went away; waiting for it to come back", self.target)
                return True
            return False
        if self._connected:
            return False
        with self._lock:
            self._midi.close_port()
            self._midi.open_port(index, self.name)
            self._apply_callback()
            self._connected = True
        self.reopened += 1
        logger.info("MIDI port %r is back; reconnected", self.target)
        return True

    def close(self) -> None:
        if self._pump is not None:
            self._pump.stop()
        with self._lock:
            self._connected = False
            self._midi.close_port()
            self._midi.delete()

    def _open_first(self) -> None:
        if self.target is None:
            try:
                self._midi.open_virtual_port(self.name)
            except Exception as exc:  # WinMM: rtmidi has no virtual ports there
                raise MidiUnavailable(f"cannot create the virtual port {self.name!r} ({exc}); "
                                      "connect to an existing port by name instead") from exc
        else:
            names = self.available()
            index = find_port(names, self.target)
            if index is None:
                have = ", ".join(repr(n) for n in names) or "none"
                raise MidiUnavailable(f"no MIDI {self._other_side()} port matches "
                                      f"{self.target!r} (there are: {have})")
            self._midi.open_port(index, self.name)
        self._connected = True

    def _other_side(self) -> str:
        return "output" if self.direction == "input" else "input"

    def _apply_callback(self) -> None:
        """After every open: let timing messages through and (re)start pumping the input
        with a fresh time base (rtmidi's deltas restart with a new connection). Called
        with `_lock` held; the pump takes it for each read."""
        if self._callback is None:
            return
        self._midi.ignore_types(sysex=True, timing=False, active_sense=True)
        if self._pump is not None:
            self._pump.stop()
        self._pump = InputPump(self._midi, self._callback, lock=self._lock,
                               rt_priority=self._rt_priority)
        self._pump.start()


class PortWatcher:
    """A daemon thread that calls `poll()` on existing-port connections every interval."""

    def __init__(self, ports: Sequence[MidiPort], interval_s: float = WATCH_INTERVAL_S) -> None:
        self.ports = [p for p in ports if not p.virtual]  # virtual ports cannot go away
        self.interval_s = interval_s
        self.errors = 0
        self._ticker = Ticker(self.poll_all, interval_s, "musegen-port-watch")

    def start(self) -> None:
        if self.ports:
            self._ticker.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._ticker.stop(timeout)

    def poll_all(self) -> None:
        for port in self.ports:
            try:
                port.poll()
            except Exception:  # a backend hiccup must not end the watching
                self.errors += 1
                logger.exception("polling MIDI port %r failed", port.target)



@dataclass
class PortSet:
    """The ports of a live session, and the watcher over the existing-port ones."""

    output: MidiPort
    input: MidiPort | None = None
    melody: MidiPort | None = None  # a separate port for melodic parts, when asked for
    watcher: PortWatcher = field(default_factory=lambda: PortWatcher([]))

    def all(self) -> list[MidiPort]:
        return [p for p in (self.input, self.output, self.melody) if p is not None]

    def close(self) -> None:
        self.watcher.stop()
        for port in self.all():
            port.close()


def open_ports(backend: str, *, listen: bool = True, input_from: str | None = None,
               output_to: str | None = None, melody: bool = False, melody_to: str | None = None,
               client: str = DEFAULT_CLIENT,
               watch_interval_s: float = WATCH_INTERVAL_S) -> PortSet:
    """Open "musegen out" (and "musegen in" when `listen`, "musegen melody out" when
    `melody`), each virtual unless given an existing port's name; starts the watcher."""
    opened: list[MidiPort] = []
    try:
        output = MidiPort.open(backend, "output", OUT_NAME, target=output_to, client=client)
        opened.append(output)
        midi_in = None
        if listen:
            midi_in = MidiPort.open(backend, "input", IN_NAME, target=input_from, client=client)
            opened.append(midi_in)
        melody_port = None
        if melody or melody_to is not None:
            melody_port = MidiPort.open(backend, "output", MELODY_NAME, target=melody_to,
                                        client=client)
            opened.append(melody_port)
    except BaseException:
        for port in opened:
            port.close()
        raise
    watcher = PortWatcher(opened, watch_interval_s)
    watcher.start()
    return PortSet(output, midi_in, melody_port, watcher)
