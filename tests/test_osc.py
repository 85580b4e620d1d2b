"""OSC in and out (bridges/osc) with python-osc as the real client and receiver, over UDP on
127.0.0.1: every control in the state can be driven, a bad message is dropped and counted
and the server goes on, and every note and downbeat comes out as a timestamped bundle."""

from __future__ import annotations

import argparse
import re
import socket
from collections.abc import Iterator

import httpx
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_packet import OscPacket
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from bridges.osc import OscControls, OscNotesOut, parse_target
from musegen.engine import NOTE_ON, LiveSession
from tests.jack_rig import wait_until
from tests.test_engine import FakeTime
from tests.test_session import make_session, play

WAIT_S = 5.0




@pytest.fixture
def session() -> LiveSession:
    made, _ = make_session({"drums": "drums-lstm"}, FakeTime())
    return made


@pytest.fixture
def osc(session: LiveSession) -> Iterator[tuple[OscControls, SimpleUDPClient]]:
    server = OscControls(session, "127.0.0.1", 0)
    try:
        yield server, SimpleUDPClient("127.0.0.1", server.port)
    finally:
        server.close()


def sent(server: OscControls, client: SimpleUDPClient, address: str, value: object) -> None:
    """Send one message and wait until the server has applied or dropped it."""
    seen = server.applied + server.dropped_total
    client.send_message(address, value)  # type: ignore[arg-type]
    assert wait_until(lambda: server.applied + server.dropped_total > seen, WAIT_S), address


def test_osc_drives_every_control_transport_tempo_and_morph(
        session: LiveSession, osc: tuple[OscControls, SimpleUDPClient]) -> None:
    server, client = osc
    sent(server, client, "/musegen/drums/genre", "funk")
    sent(server, client, "/musegen/drums/density", 20)  # an int is a number too
    sent(server, client, "/musegen/drums/temperature", 0.75)  # OSC floats are 32-bit
    sent(server, client, "/musegen/drums/humanize", 0.5)
    sent(server, client, "/musegen/drums/swing", 0.25)
    sent(server, client, "/musegen/drums/mute", True)
    sent(server, client, "/musegen/tempo", 96.5)
    sent(server, client, "/musegen/synth/morph", [0.25, 0.75])
    controls = session.part("drums").controls
    assert (controls.genre, controls.density, controls.temperature, controls.humanize,
            controls.swing, controls.mute) == ("funk", 20.0, 0.75, 0.5, 0.25, True)
    sent(server, client, "/musegen/drums/mute", 0)
    assert not session.part("drums").controls.mute
    assert session.state().tempo_bpm == 96.5
    assert session.morph == (0.25, 0.75)
    assert session.clock.playing  # make_session started it
    sent(server, client, "/musegen/stop", [])
    assert not session.clock.playing
    sent(server, client, "/musegen/play", [])
    assert session.clock.playing
    sent(server, client, "/musegen/rewind", [])
    assert session.clock.beat_at(session.now()) == pytest.approx(0.0, abs=1e-6)
    assert server.dropped_total == 0 and server.applied == 12


@pytest.mark.parametrize("address, value, reason", [
    ("/other/drums/density", 10, "not under /musegen/"),
    ("/musegen/melody/density", 10, "no part 'melody'"),
    ("/musegen/drums/loudness", 10, "no control 'loudness'"),
    ("/musegen/drums/density", "busy", "density must be a number"),
    ("/musegen/drums/density", -4.0, "density"),
    ("/musegen/drums/genre", 3, "genre must be a string"),
    ("/musegen/drums/genre", "polka", "polka"),
    ("/musegen/drums/mute", 0.5, "mute must be 0/1"),
    ("/musegen/tempo", [120, 121], "takes 1 argument"),
    ("/musegen/tempo", 5000.0, "tempo"),
    ("/musegen/synth/morph", [0.5, 1.5], "morph y"),
    ("/musegen/play", 1, "takes 0 argument"),
    ("/musegen/drums/density/now", 10, "no such address"),
])
def test_a_bad_message_is_dropped_counted_and_changes_nothing(
        session: LiveSession, osc: tuple[OscControls, SimpleUDPClient], address: str,
        value: object, reason: str) -> None:
    server, client = osc
    before, tempo, morph = session.part("drums").controls, session.state().tempo_bpm, session.morph
    sent(server, client, address, value)
    assert server.dropped == {"refused": 1} and server.applied == 0
    assert reason in server.reasons[-1], server.reasons[-1]
    assert session.part("drums").controls == before
    assert (session.state().tempo_bpm, session.morph) == (tempo, morph)
    sent(server, client, "/musegen/drums/density", 12.0)  # and the server goes on
    assert server.applied == 1 and session.part("drums").controls.density == 12.0


def test_a_datagram_that_is_not_osc_is_dropped_and_the_server_goes_on(
        session: LiveSession, osc: tuple[OscControls, SimpleUDPClient]) -> None:
    server, client = osc
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        for junk in (b"hello", b"\xff\xfe\x00\x01", b"#bundle\x00garbage"):
            raw.sendto(junk, ("127.0.0.1", server.port))
    assert wait_until(lambda: server.dropped["not_osc"] == 3, WAIT_S), server.dropped
    sent(server, client, "/musegen/tempo", 100.0)
    assert session.state().tempo_bpm == 100.0


class Receiver:
    """A UDP socket on 127.0.0.1 whose datagrams python-osc parses: (timetag, address,
    args) per message, in arrival order."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]

    def read(self) -> list[tuple[float, str, list[object]]]:
        got = []
        while True:
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return got
            got += [(m.time, m.message.address, list(m.message.params))
                    for m in OscPacket(data).messages]


def test_every_note_and_downbeat_goes_out_as_a_bundle_stamped_on_the_clock() -> None:
    ft = FakeTime()
    session, recorded = make_session({"drums": "drums-lstm"}, ft)
    receiver = Receiver()
    epoch = 2_000_000_000.0  # the wall clock, fixed so the stamps can be checked exactly
    out = OscNotesOut(session, "127.0.0.1", receiver.port, ahead_s=0.05,
                      wall=lambda: epoch + ft.t)
    try:
        play(session, ft, until=6.5)  # bars 0 to 3 at 120 BPM; 0 and 1 were generated before
    finally:
        out.close()
        messages = receiver.read()
        receiver.sock.close()
    notes = [(t - epoch, args) for t, a, args in messages if a == "/musegen/drums/note"]
    ons = [s for s in recorded.sent if s.event.kind == NOTE_ON]
    assert len(ons) > 8 and len(notes) == len(ons)
    for (stamp, args), s in zip(notes, ons, strict=True):
        # each note the session sent, in order, stamped ahead_s after it was due (to the
        # NTP timetag's rounding at this epoch: well under a microsecond)
        assert stamp == pytest.approx(s.at + 0.05, abs=1e-5)
        assert args[:2] == [s.event.pitch, s.event.velocity]
    heard = [args[2] for (_, args), s in zip(notes, ons, strict=True) if s.event.beat >= 8.0]
    assert heard and all(0 < beats <= 4.0 for beats in heard)  # durations of bars 2 and 3
    downbeats = {args[0]: t - epoch for t, a, args in messages if a == "/musegen/bar"}
    # each bar generated while listening (a bar ahead of play), on its beat at 120 BPM
    assert downbeats == pytest.approx({2: 4.0, 3: 6.0, 4: 8.0}, abs=1e-5)


def test_parse_target() -> None:
    assert parse_target("127.0.0.1:9001") == ("127.0.0.1", 9001)
    for bad in ("9001", "host:", ":9001", "host:0", "host:70000", "host:port"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_target(bad)


def test_musegen_live_with_osc_in_and_out_and_the_count_in_health() -> None:
    """`musegen live --osc 0 --osc-out ...`: python-osc's own server hears the notes, a
    python-osc client turns the density, a bad message shows in /api/health."""
    from bridges.cli import add_live
    from bridges.live import LiveHooks, open_live

    heard: list[tuple[str, tuple[object, ...]]] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: heard.append((address, args)))
    receiver = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    import threading
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    parser = argparse.ArgumentParser()
    add_live(parser.add_subparsers())
    args = parser.parse_args([
        "live", "--backend", "none", "--no-record", "--bpm", "240", "--port", "0",
        "--osc", "0", "--osc-out", f"127.0.0.1:{receiver.server_address[1]}"])
    said: list[str] = []
    running = open_live(args, LiveHooks(say=said.append))
    try:
        osc_port = int(re.search(r"OSC controls on udp://127\.0\.0\.1:(\d+)", " ".join(said))[1])
        url = re.search(r"web page at (\S+)", " ".join(said))[1]  # type: ignore[index]
        running.start()
        client = SimpleUDPClient("127.0.0.1", osc_port)
        client.send_message("/musegen/drums/density", 30.0)
        client.send_message("/musegen/drums/density", "lots")
        assert wait_until(lambda: running.session.part("drums").controls.density == 30.0, WAIT_S)
        assert wait_until(lambda: any(a == "/musegen/drums/note" for a, _ in heard), 10.0)
        assert wait_until(lambda: any(a == "/musegen/bar" for a, _ in heard), 10.0)
        health = httpx.get(f"{url.rstrip('/')}/api/health", timeout=5.0).json()
        assert health["dropped_inputs"] == {"osc": 1}
    finally:
        running.close()
        receiver.shutdown()
        receiver.server_close()
