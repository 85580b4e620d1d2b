"""Which MIDI system python-rtmidi talks to, chosen from `--backend`, and the port lists.

    auto      Linux: ALSA when /dev/snd/seq is usable, else JACK when a server answers;
              macOS: CoreMIDI; Windows: WinMM (no virtual ports there: connect to an
              existing port, e.g. one made by loopMIDI)
    alsa, jack, coremidi, winmm   that API, or `MidiUnavailable` saying why not
    none      no MIDI at all (the internal clock, the web bridge)

rtmidi is imported inside the functions only, so `--backend none` and the engine core never
need it. Every failure to open is a `MidiUnavailable` with a one-line reason, never
rtmidi's own exception type or a traceback: the CLI prints it and exits.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import rtmidi

logger = logging.getLogger(__name__)

Backend = Literal["auto", "alsa", "jack", "coremidi", "winmm", "none"]
BACKENDS: tuple[Backend, ...] = ("auto", "alsa", "jack", "coremidi", "winmm", "none")
ALSA_SEQ = "/dev/snd/seq"
DEFAULT_CLIENT = "musegen"


class MidiUnavailable(RuntimeError):
    """A MIDI backend or port cannot be opened; the message is one line for the user."""


def alsa_usable(path: str = ALSA_SEQ) -> bool:
    """The ALSA sequencer device exists and this user may open it."""
    return os.access(path, os.R_OK | os.W_OK)


def jack_socket_may_exist(server: str) -> bool:
    """False when the JACK server `server` surely is not up: on Linux its socket folder is
    missing (elsewhere: no cheap test, True)."""
    return not sys.platform.startswith("linux") or os.path.exists(
        f"/dev/shm/jack_{server}_{os.getuid()}_0")


def jack_running() -> bool:
    """A JACK server answers (the one JACK_DEFAULT_SERVER names, or the default one)."""
    if not jack_socket_may_exist(os.environ.get("JACK_DEFAULT_SERVER", "default")):
        return False  # no server's socket folder: skip libjack's noisy failed connection
    try:
        _open("jack", "input", "musegen-probe").delete()
    except MidiUnavailable:
        return False
    return True


def resolve(backend: str, *, platform: str | None = None) -> Backend:
    """The concrete backend for `backend` (resolving "auto"); raises MidiUnavailable."""
    if backend not in BACKENDS:
        raise MidiUnavailable(f"unknown MIDI backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend != "auto":
        return backend  # type: ignore[return-value]  # checked against BACKENDS above
    platform = platform or sys.platform
    if platform.startswith("linux"):
        if alsa_usable():
            return "alsa"
        if jack_running():
            return "jack"
        raise MidiUnavailable(f"no MIDI on this machine: {ALSA_SEQ} is not usable and no "
                              "JACK server answers (start jackd, or use --backend none)")
    if platform == "darwin":
        return "coremidi"
    if platform.startswith(("win", "cygwin")):
        return "winmm"
    raise MidiUnavailable(f"no MIDI backend known for platform {platform!r}")


def api_of(backend: Backend) -> int:
    """The rtmidi API constant for a concrete backend."""
    rt = _rtmidi()
    apis = {"alsa": rt.API_LINUX_ALSA, "jack": rt.API_UNIX_JACK,
            "coremidi": rt.API_MACOSX_CORE, "winmm": rt.API_WINDOWS_MM}
    if backend not in apis:
        raise MidiUnavailable(f"backend {backend!r} has no MIDI API")
    api: int = apis[backend]
    if api not in rt.get_compiled_api():
        raise MidiUnavailable(f"python-rtmidi was built without {backend} support")
    return api


def open_input(backend: str, client: str = DEFAULT_CLIENT) -> rtmidi.MidiIn:
    """An rtmidi input client on `backend` (no port opened yet)."""
    return _open(backend, "input", client)


def open_output(backend: str, client: str = DEFAULT_CLIENT) -> rtmidi.MidiOut:
    """An rtmidi output client on `backend` (no port opened yet)."""
    return _open(backend, "output", client)


def list_ports(backend: str) -> dict[str, list[str]]:
    """{"inputs": ports we can read from, "outputs": ports we can send to} (`musegen ports`).

    "inputs" are the other programs' output ports, as rtmidi's MidiIn lists them."""
    concrete = resolve(backend)
    if concrete == "none":
        return {"inputs": [], "outputs": []}
    midi_in = open_input(concrete, "musegen-ports")
    midi_out = open_output(concrete, "musegen-ports")
    try:
        return {"inputs": list(midi_in.get_ports()), "outputs": list(midi_out.get_ports())}
    finally:
        midi_in.delete()
        midi_out.delete()


def _open(backend: str, direction: Literal["input", "output"], client: str) -> Any:
    concrete = resolve(backend)
    if concrete == "none":
        raise MidiUnavailable("MIDI is off (--backend none)")
    api = api_of(concrete)
    rt = _rtmidi()
    kind = rt.MidiIn if direction == "input" else rt.MidiOut
    try:
        return kind(api, name=client)
    except rt.RtMidiError as exc:  # e.g. "MidiInJack::initialize: JACK server not running?"
        raise MidiUnavailable(f"cannot open {concrete} MIDI {direction}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _rtmidi() -> Any:
    """python-rtmidi, imported on first use so that no MIDI library is needed without MIDI."""
    try:
        import rtmidi
    except ImportError as exc:  # a broken install: say so instead of a traceback
        raise MidiUnavailable(f"python-rtmidi is not importable: {exc}") from exc
    return rtmidi
