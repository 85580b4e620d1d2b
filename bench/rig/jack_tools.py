"""A private JACK server and the JACK command-line tools, driven from Python.

Used by the latency benchmark and by the real-JACK tests (tests/jack_rig.py wraps these in
pytest fixtures). Nothing here is mocked: `jackd` runs the dummy driver (no sound card, no
realtime privileges) under a unique server name, and every tool is pointed at it through
JACK_DEFAULT_SERVER, with JACK_NO_START_SERVER=1 so nothing ever starts a second server.

    jackd --no-realtime -S -n NAME -d dummy -r 48000 -p 64   the server (1.33 ms periods)
    jack_midi_clock -b BPM [-B] [-J PCT] [-d SEC]            MIDI clock from the transport
    jack_transport                                           master/tempo/play/stop/locate
    jack_midi_dump -a NAME                                   every event with its frame time
    (ports and connections: one long-lived client, jack_control.py, not jack_lsp/jack_connect)

Frame times from `jack_midi_dump -a` count from when the dump started, on the server's own
sample clock, so clock ticks and notes recorded by one dump share one exact time base.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from bench.rig.jack_control import JackControl
from bridges.midi.backends import jack_socket_may_exist

logger = logging.getLogger(__name__)

TOOLS = ("jackd", "jack_lsp", "jack_connect", "jack_midi_dump", "jack_transport",
         "jack_midi_clock")
# "   4992: 90 3c 64 note on  (channel  0): pitch  60, velocity 100": frame, hex bytes, a
# description after them for channel messages (its words are never two hex digits)
DUMP_LINE = re.compile(r"^\s*(\d+):((?:\s+[0-9a-fA-F]{2}(?=\s|$))+)")
# Patient: a JACK client killed before it closes stays registered, and a synchronous server
# then waits about 5 s every cycle until it times that client out, stalling everyone.
STOP_TIMEOUT_S = 15.0

_controls: dict[str, JackControl] = {}
_controls_lock = threading.Lock()


def missing_tools(tools: Sequence[str] = TOOLS) -> list[str]:
    """The JACK binaries not on PATH."""
    return [tool for tool in tools if shutil.which(tool) is None]


def wait_until(predicate: Callable[[], bool], timeout: float, poll_s: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; returns the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str],
                 sig: int = signal.SIGINT) -> None:
    """`sig`, then SIGKILL if it has not exited within STOP_TIMEOUT_S.

    SIGINT by default: the JACK tools close their client cleanly on it, while on SIGTERM
    they die with the client still registered and the server then stalls every client
    (un)registration for about 5 s until it times the dead one out."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)


def free_server_name(prefix: str, pool: int = 4) -> str:
    """`prefix-k` for the first k that no running jackd uses.

    A small fixed pool, not a unique name per run: JACK's shared-memory registry has 8
    server slots and reclaims one only when a server of the same name starts again, so
    unique names from killed runs would use the slots up ("Too many servers already
    active"). tests/jack_rig.py picks its test server's name the same way."""
    running = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    for k in range(pool):
        name = f"{prefix}-{k}"
        if f"-n {name} " not in running:
            return name
    return f"{prefix}-{os.getpid()}"


def start_private_server(prefix: str, *, rate: int = 48000, period: int = 64,
                         attempts: int = 3) -> JackServer:
    """A started JackServer named from `prefix`'s pool, retrying when another process
    took the same name at the same moment."""
    for attempt in range(attempts):
        try:
            return JackServer(free_server_name(prefix), rate=rate, period=period).start()
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            logger.warning("jackd did not start; trying the next free name")
    raise AssertionError("unreachable")


class JackServer:
    """`jackd` on the dummy driver under a unique name; a context manager."""

    def __init__(self, name: str | None = None, *, rate: int = 48000, period: int = 64) -> None:
        self.name = name or f"musegen-{os.getpid()}"
        self.rate = rate
        self.period = period
        self.env: dict[str, str] = {**os.environ, "JACK_DEFAULT_SERVER": self.name,
                                    "JACK_NO_START_SERVER": "1"}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the server)
        self._saved_env: dict[str, str | None] = {}

    def start(self, timeout: float = 15.0) -> JackServer:
        cmd = ["jackd", "--no-realtime", "-S", "-n", self.name, "-d", "dummy",
               "-r", str(self.rate), "-p", str(self.period)]
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                      env=self.env, start_new_session=True)
        if not wait_until(self._answers, timeout, 0.05):
            log = self.log_tail()
            self.stop()
            raise RuntimeError(f"jackd {self.name!r} did not answer in {timeout} s: {log}")
        time.sleep(0.3)  # a jackd whose name was taken meanwhile exits now; the one that
        if self._proc.poll() is not None:  # answered was someone else's server
            close_control(self.name)
            self._proc = None
            raise RuntimeError(f"jackd {self.name!r} exited: {self.log_tail()}")
        logger.info("jackd %r up (%d Hz, %d frames)", self.name, self.rate, self.period)
        return self

    def _answers(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"jackd exited: {self.log_tail()}")
        if not jack_socket_may_exist(self.name):
            return False  # not up yet: spare libjack's failed-connection messages
        try:
            return any(p.startswith("system:") for p in lsp(self.env))
        except RuntimeError:  # not answering yet
            return False

    def use_in_process(self) -> None:
        """Point this process's own JACK clients (python-rtmidi) at the server too."""
        for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER"):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = self.env[key]

    def stalls(self) -> int:
        """How many times the server has logged a cycle a client never finished (each one
        stops every client for the server's timeout, about 5 s)."""
        return self._log_bytes().count(b"SuspendRefNum")

    def log_tail(self, chars: int = 2000) -> str:
        return self._log_bytes().decode(errors="replace")[-chars:].strip()

    def _log_bytes(self) -> bytes:
        # pread, not seek+read: jackd writes through the same open file, so moving its
        # offset would make it overwrite what it logged before
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0)

    def stop(self) -> None:
        close_control(self.name)
        if self._proc is not None:
            stop_process(self._proc, signal.SIGTERM)  # jackd shuts down cleanly on TERM
            self._proc = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def control(env: Mapping[str, str]) -> JackControl:
    """The rig's one control client on the server `env` names (opened on first use).

    Listing and connecting go through it rather than `jack_lsp`/`jack_connect`, whose
    short-lived clients race other clients' activation on a synchronous server (see
    jack_control.py)."""
    name = env.get("JACK_DEFAULT_SERVER", "default")
    with _controls_lock:
        found = _controls.get(name)
        if found is None:
            if _controls:  # libjack keeps the first server's shared memory while any of
                # its clients is open, so a second server would be read as the first one
                raise RuntimeError(f"one JACK server per process: {sorted(_controls)} is "
                                   f"in use here, so {name!r} cannot be")
            found = _controls[name] = JackControl(name)
        return found


def close_control(server: str) -> None:
    """Close the control client of `server` (before the server stops)."""
    with _controls_lock:
        found = _controls.pop(server, None)
    if found is not None:
        found.close()


def lsp(env: Mapping[str, str]) -> list[str]:
    """Every port's name on the server `env` names."""
    return control(env).ports()


def connections(env: Mapping[str, str]) -> dict[str, list[str]]:
    """Every port with the ports it is connected to."""
    return control(env).connections()


def connect(env: Mapping[str, str], source: str, destination: str) -> None:
    control(env).connect(source, destination)


def wait_port(env: Mapping[str, str], contains: str, timeout: float = 20.0,
              exclude: Sequence[str] = ()) -> str:
    """The first port whose name contains `contains` (and is not in `exclude`)."""
    found: list[str] = []

    def look() -> bool:
        found[:] = [p for p in lsp(env) if contains in p and p not in exclude]
        return bool(found)

    if not wait_until(look, timeout):
        raise RuntimeError(f"no JACK port containing {contains!r} after {timeout} s")
    return found[0]


class JackMidiClock:
    """`jack_midi_clock`: sends MIDI clock while the JACK transport rolls.

    `force_bpm` (-B) ignores a timebase master and plays `bpm`; without it a master (see
    `JackTransport.master`) sets the tempo and song position pointers are sent on locate.
    `jitter_pct` (-J, 0..20) perturbs the tick intervals (measured at -J 10, 120 BPM:
    intervals within +-10 % of the period); over seconds the phase wanders as well."""

    def __init__(self, env: Mapping[str, str], bpm: float, *, force_bpm: bool = True,
                 jitter_pct: float = 0.0, resync_delay_s: float = 0.1) -> None:
        self.env = dict(env)
        self.bpm = bpm
        args = ["jack_midi_clock", "-b", f"{bpm:g}", "-d", f"{resync_delay_s:g}"]
        if force_bpm:
            args.append("-B")
        if jitter_pct > 0:
            args += ["-J", f"{min(jitter_pct, 20.0):g}"]
        before = set(lsp(self.env))
        self._proc = subprocess.Popen(args, env=self.env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        self.port = wait_port(self.env, "mclk_out", exclude=sorted(before))

    def stop(self) -> None:
        stop_process(self._proc)


class JackTransport:
    """`jack_transport` driven through its stdin commands (what `help` lists there)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._proc = subprocess.Popen(["jack_transport"], env=dict(env), stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      text=True, start_new_session=True)

    def command(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()

    def master(self) -> None:
        """Become timebase master: jack_midi_clock (without -B) then takes tempo and
        bar/beat positions from it, and sends song position pointers."""
        self.command("master")

    def tempo(self, bpm: float) -> None:
        self.command(f"tempo {bpm:g}")

    def play(self) -> None:
        self.command("play")

    def stop(self) -> None:
        self.command("stop")

    def locate(self, frame: int) -> None:
        self.command(f"locate {frame}")

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.command("quit")
                self._proc.wait(2.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop_process(self._proc)


@dataclass(frozen=True, slots=True)
class DumpRecord:
    frame: int  # sample frames since the dump started
    data: tuple[int, ...]  # the raw MIDI bytes

    @property
    def status(self) -> int:
        return self.data[0] if self.data else -1


def parse_dump(lines: Sequence[str]) -> list[DumpRecord]:
    """`jack_midi_dump -a` lines as records; other lines are skipped."""
    records = []
    for line in lines:
        match = DUMP_LINE.match(line)
        if match:
            data = tuple(int(b, 16) for b in match.group(2).split())
            records.append(DumpRecord(int(match.group(1)), data))
    return records


class MidiDump:
    """`jack_midi_dump -a` under a client name; records every event it is sent.

    stdout is line-buffered (stdbuf) and read by a thread, so `records()` is live."""

    def __init__(self, env: Mapping[str, str], name: str = "musegen-dump") -> None:
        self.env = dict(env)
        before = set(lsp(self.env))
        cmd = ["jack_midi_dump", "-a", name]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        self._proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True,
                                      start_new_session=True)
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="jack-midi-dump", daemon=True)
        self._reader.start()
        self.port = wait_port(self.env, ":input", exclude=sorted(before))

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.append(line)  # list.append is atomic: records() may read meanwhile

    def connect(self, *sources: str) -> None:
        for source in sources:
            connect(self.env, source, self.port)

    def records(self) -> list[DumpRecord]:
        return parse_dump(list(self._lines))

    def stop(self) -> list[DumpRecord]:
        stop_process(self._proc)
        self._reader.join(STOP_TIMEOUT_S)
        return self.records()
