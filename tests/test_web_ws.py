"""The /ws protocol against a real uvicorn server and a plain websockets client: greeting,
bars ahead of time, controls, step edits, transport, errors, and who gets in."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bridges.web import WebConfigError, WebServer, grid, serve
from bridges.web.protocol import server_adapter
from musegen.clock.midi_follower import MidiClockFollower
from musegen.engine.part import RenderedBar
from musegen.engine.session import LiveSession
from musegen.music.drum_map import CLASS_TO_GM_PITCH
from tests.test_session import FakeTime, make_session, play
from tests.web_helpers import (
    client,
    greeted,
    grid_of,
    of_type,
    recv,
    recv_until,
    running_server,
    send,
)


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    with running_server(tick_s=0.5) as s:
        yield s


@pytest.fixture(scope="module")
def playing(server: WebServer) -> WebServer:
    server.hub.session.play()
    return server


def sounds_at(state: dict[str, float], beat: float) -> float:
    return state["server_time"] + (beat - state["beat"]) * 60.0 / state["tempo_bpm"]


def latest(session: LiveSession, bar: int) -> RenderedBar:
    """The engine's current version of `bar` (a regenerated bar is remembered twice)."""
    return [r for r in session.part("drums").rendered if r.bar == bar][-1]


def test_a_client_is_greeted_with_version_state_and_the_bars_ahead(server: WebServer) -> None:
    with client(server) as ws:
        hello, state = greeted(ws)
        assert hello["type"] == "hello" and hello["version"] == 1
        assert hello["drum_lanes"] == list(CLASS_TO_GM_PITCH)
        assert hello["steps_per_bar"] == 16
        assert state["type"] == "state" and state["reason"] == "hello"
        assert state["parts"][0]["name"] == "drums"
        assert state["parts"][0]["controls"]["auto"] is True
        backlog = recv_until(ws, of_type("bar"))
        assert backlog["reason"] == "backlog" and backlog["part"] == "drums"
        for message in (hello, state, backlog):  # what the server sends is valid protocol
            server_adapter.validate_python(message)


def test_bars_arrive_ahead_of_when_they_sound(playing: WebServer) -> None:
    with client(playing) as ws:
        greeted(ws)
        state: dict[str, float] | None = None
        leads: list[float] = []
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline and len(leads) < 2:
            m = recv(ws)
            if m["type"] == "state" and m["playing"]:
                state = m
            elif m["type"] == "bar" and m["reason"] == "generated" and state is not None:
                first = min((n["beat"] for n in m["notes"]), default=m["start_beat"])
                leads.append(sounds_at(state, first) - time.monotonic())
                assert m["start_beat"] == m["bar"] * m["beats_per_bar"]
                assert all(m["start_beat"] <= n["beat"] < m["start_beat"] + 4 for n in m["notes"])
        assert len(leads) == 2, "two bars in 6 s at 240 BPM"
        assert min(leads) >= 0.1, leads


def test_ping_gets_a_pong_with_the_server_clock(server: WebServer) -> None:
    with client(server) as ws:
        greeted(ws)
        send(ws, type="ping", id=7, client_time=123.5)
        pong = recv_until(ws, of_type("pong"))
        assert pong["id"] == 7 and pong["client_time"] == 123.5
        assert abs(pong["server_time"] - time.monotonic()) < 1.0


def test_a_density_change_reaches_every_client_and_the_next_bar(playing: WebServer) -> None:
    session = playing.hub.session
    lo, hi = session.part("drums").meta.density_range
    with client(playing) as a, client(playing) as b:
        greeted(a), greeted(b)
        target = 4.0 if session.part("drums").controls.density != 4.0 else 6.0
        send(a, type="controls", id="d", part="drums", density=target)
        ack = recv_until(a, of_type("ack", id="d"))
        assert ack["detail"]["density"] == target
        state = recv_until(b, lambda m: m["type"] == "state" and m["reason"] == "controls")
        assert state["parts"][0]["controls"]["density"] == target
        bar = recv_until(b, lambda m: m["type"] == "bar" and m["controls"]["density"] == target)
        assert bar["bar"] > session.worker.bar_at(session.state().beat) - 1
        assert session.part("drums").controls.density == target
        assert lo <= target <= hi
    session.set_controls("drums", density=(lo + hi) / 2)


def test_a_step_edit_reaches_the_engine_and_the_other_clients(playing: WebServer) -> None:
    session = playing.hub.session
    with client(playing) as a, client(playing) as b:
        greeted(a), greeted(b)
        send(a, type="controls", id=1, part="drums", auto=False)
        recv_until(a, of_type("ack", id=1))
        # the held loop is queued (an edit racing the regeneration of a stale bar is lost)
        recv_until(a, lambda m: m["type"] == "bar" and m["controls"]["auto"] is False)
        now = session.worker.bar_at(session.state().beat)
        send(a, type="step", id=2, part="drums", bar=now + 1, step=3, pitch=50, velocity=100)
        ack = recv_until(a, of_type("ack", id=2))
        edited_bar = ack["detail"]["bar"]
        assert edited_bar >= now + 1

        def has_tom_on_step_3(m: dict[str, Any]) -> bool:
            return any(n["pitch"] == 50 and math.floor((n["beat"] - m["start_beat"]) * 4
                                                       + 0.5) == 3 for n in m["notes"])

        # "edited", or "generated" when the edit was kept for a bar not made yet
        recv_until(b, lambda m: m["type"] == "bar" and m["bar"] == edited_bar
                   and has_tom_on_step_3(m))
        rendered = latest(session, edited_bar)
        assert grid_of(rendered, 4.0, CLASS_TO_GM_PITCH)[6][3] == 100  # lane 6: high tom
        send(a, type="step", id=3, part="drums", bar=edited_bar, step=3, pitch=50, velocity=0)
        ack = recv_until(a, of_type("ack", id=3))
        rendered = latest(session, ack["detail"]["bar"])
        assert grid_of(rendered, 4.0, CLASS_TO_GM_PITCH)[6][3] == 0
        send(a, type="pattern", id=4, part="drums", action="continue")
        assert recv_until(a, of_type("ack", id=4))["detail"]["action"] == "continue"
    assert session.part("drums").controls.hold is False


def test_tempo_and_stop_play_go_to_every_client(server: WebServer) -> None:
    session = server.hub.session
    with client(server) as a, client(server) as b:
        greeted(a), greeted(b)
        send(a, type="tempo", bpm=200)
        state = recv_until(b, lambda m: m["type"] == "state" and m["reason"] == "tempo")
        assert state["tempo_bpm"] == 200
        send(a, type="transport", action="stop")
        assert recv_until(b, of_type("state", reason="stop"))["playing"] is False
        send(a, type="transport", action="play")
        assert recv_until(b, of_type("state", reason="continue"))["playing"] is True
        send(a, type="tempo", bpm=240)
        recv_until(b, of_type("state", reason="tempo"))
    assert session.clock.playing and session.clock.tempo_bpm == 240


@pytest.mark.parametrize("text, code", [
    ("{not json", "bad_json"),
    ("[1, 2]", "invalid"),
    ('{"type": "warp"}', "unknown_type"),
    ('{"type": "ping"}', "invalid"),
    ('{"type": "tempo", "bpm": 9999}', "invalid"),
    ('{"type": "ping", "client_time": 1, "version": 2}', "unsupported_version"),
    ('{"type": "controls", "part": "bass", "density": 3}', "engine"),
    ('{"type": "model", "part": "drums", "model": "/etc"}', "engine"),
    ('{"type": "controls", "part": "drums", "temperature": 1e-300}', "invalid"),
    ('{"type": "controls", "part": "drums", "genre": "polka"}', "engine"),
    ('{"type": "step", "part": "drums", "bar": 0, "step": 40, "pitch": 36, "velocity": 1}',
     "engine"),
    ('{"type": "morph", "x": 1.5, "y": 0}', "invalid"),
    ('{"type": "morph", "x": 0.5}', "invalid"),
    ('{"type": "morph", "x": "left", "y": 0}', "invalid"),
    ('{"type": "morph", "x": NaN, "y": 0}', "invalid"),
    ('{"type": "morph", "x": 0.5, "y": 0.5, "part": "drums"}', "invalid"),
])
def test_a_bad_message_gets_an_error_and_the_connection_stays(server: WebServer, text: str,
                                                              code: str) -> None:
    with client(server) as ws:
        greeted(ws)
        ws.send(text)
        error = recv_until(ws, of_type("error"))
        assert error["code"] == code, error
        server_adapter.validate_python(error)
        send(ws, type="ping", client_time=1.0)
        recv_until(ws, of_type("pong"))


def test_the_request_id_comes_back_on_an_error(server: WebServer) -> None:
    with client(server) as ws:
        greeted(ws)
        send(ws, type="tempo", id="t1", bpm=-5)
        error = recv_until(ws, of_type("error"))
        assert error["id"] == "t1" and error["of"] == "tempo" and "bpm" in error["message"]


def test_binary_and_oversized_messages_are_refused_politely(server: WebServer) -> None:
    with client(server) as ws:
        greeted(ws)
        ws.send(b"\x00\x01")
        assert recv_until(ws, of_type("error"))["code"] == "binary"
        send(ws, type="hello", client="x" * 9000)
        assert recv_until(ws, of_type("error"))["code"] == "too_large"
        send(ws, type="ping", client_time=2.0)
        recv_until(ws, of_type("pong"))


def test_a_frame_past_the_transport_limit_closes_the_socket(server: WebServer) -> None:
    with client(server, max_size=None) as ws:
        greeted(ws)
        ws.send("x" * 100_000)
        with pytest.raises(ConnectionClosed) as closed:
            recv_until(ws, lambda m: False, timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_a_flood_is_rate_limited_and_the_connection_stays(server: WebServer) -> None:
    with client(server) as ws:
        greeted(ws)
        for i in range(200):
            send(ws, type="ping", id=i, client_time=float(i))
        replies = [recv_until(ws, lambda m: m["type"] in ("pong", "error")) for _ in range(200)]
        limited = [m for m in replies if m["type"] == "error"]
        assert limited and all(m["code"] == "rate_limited" for m in limited)
        assert len(replies) - len(limited) >= 80  # the burst goes through
        time.sleep(0.5)
        send(ws, type="ping", id="after", client_time=0.0)
        assert recv_until(ws, of_type("pong", id="after"))


def test_another_site_cannot_open_the_socket(server: WebServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        client(server, origin="http://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    same = server.url
    with client(server, origin=same) as ws:  # type: ignore[arg-type]
        assert greeted(ws)[0]["type"] == "hello"


def test_a_foreign_host_name_is_refused_without_a_token(server: WebServer) -> None:
    response = httpx.get(server.url + "/api/health", headers={"Host": "evil.example:8000"})
    assert response.status_code == 400
    assert httpx.get(server.url + "/api/health").status_code == 200


def test_binding_beyond_loopback_needs_a_token(server: WebServer) -> None:
    with pytest.raises(WebConfigError):
        serve(server.hub.session, host="0.0.0.0", port=0)


def test_with_a_token_everything_but_health_and_the_page_needs_it() -> None:
    with running_server(token="s3cret") as server:
        with pytest.raises(InvalidStatus):
            client(server)
        with client(server, "?token=s3cret") as ws:
            assert greeted(ws)[0]["type"] == "hello"
        assert httpx.get(server.url + "/api/models").status_code == 401
        bearer = {"Authorization": "Bearer s3cret"}
        assert httpx.get(server.url + "/api/models", headers=bearer).status_code == 200
        assert httpx.get(server.url + "/api/health").status_code == 200
        assert httpx.get(server.url + "/").status_code == 200


def test_transport_under_a_daw_clock_is_an_error_reply() -> None:
    session = LiveSession.from_models({"drums": "drums-lstm"}, MidiClockFollower())
    server = serve(session, port=0)
    try:
        with client(server) as ws:
            _, state = greeted(ws)
            assert state["clock"] == "midi"
            send(ws, type="transport", id=1, action="play")
            error = recv_until(ws, of_type("error"))
            assert error["code"] == "engine" and "DAW" in error["message"]
            send(ws, type="tempo", id=2, bpm=100)
            assert recv_until(ws, of_type("error"))["id"] == 2
    finally:
        server.stop()
        session.close()


def test_messages_are_json_objects_with_a_type(server: WebServer) -> None:
    with client(server) as ws:
        for _ in range(3):
            raw = ws.recv(timeout=5)
            assert isinstance(raw, str)
            assert "type" in json.loads(raw)


def test_a_grid_edit_for_the_bar_not_made_yet_is_kept_for_it() -> None:
    ft = FakeTime()
    session, _ = make_session({"drums": "drums-lstm"}, ft, density=4.0)
    play(session, ft, until=0.5)  # bar 1 queued; bar 2 waits for the next bar line
    assert grid.edit(session, "drums", 2, 5, 50, 100) == 2  # kept, not an error
    play(session, ft, until=4.5)  # bar 2 has been made
    assert grid_of(latest(session, 2), 4.0, CLASS_TO_GM_PITCH)[6][5] == 100


def test_under_a_daw_clock_the_clients_follow_its_start_and_tempo() -> None:
    """The browser is one more client of the engine's clock: when that clock follows a DAW,
    every client gets the DAW's start and tempo as state anchors that place the beats
    where the DAW's ticks put them."""
    from musegen.music.midi_spec import CLOCK as TICK
    from musegen.music.midi_spec import START

    follower = MidiClockFollower()
    session = LiveSession.from_models({"drums": "drums-lstm"}, follower)
    session.start()
    server = serve(session, port=0)
    t0 = time.monotonic() + 0.3

    def ticks(start: float, bpm: float, count: int) -> float:
        period = 60.0 / (bpm * 24)
        for k in range(count):
            t = start + k * period
            time.sleep(max(0.0, t - time.monotonic()))
            follower.feed(TICK, t)
        return start + count * period

    try:
        with client(server) as ws:
            greeted(ws)
            time.sleep(max(0.0, t0 - time.monotonic()))
            follower.feed(START, t0)
            later = ticks(t0, 120.0, 24 * 4)  # one bar at 120
            started = recv_until(ws, lambda m: m["type"] == "state" and m["playing"])
            assert started["clock"] == "midi"
            assert sounds_at(started, 4.0) == pytest.approx(t0 + 2.0, abs=0.03)
            ticks(later, 150.0, 24 * 6)  # the DAW goes to 150
            faster = recv_until(ws, lambda m: m["type"] == "state"
                                and abs(m["tempo_bpm"] - 150.0) < 3.0, timeout=5.0)
            assert faster["playing"]
            assert sounds_at(faster, faster["beat"] + 1.0) - faster["server_time"] == \
                pytest.approx(0.4, abs=0.01)  # a beat at 150 BPM
    finally:
        server.stop()
        session.close()


def test_a_morph_move_reaches_the_engine_and_every_client(server: WebServer) -> None:
    session = server.hub.session
    with client(server) as a, client(server) as b:
        _, state = greeted(a)
        greeted(b)
        assert state["morph"] == {"x": session.morph[0], "y": session.morph[1]}
        send(a, type="morph", id="m", x=0.3, y=0.7)
        ack = recv_until(a, of_type("ack", id="m"))
        assert ack["of"] == "morph" and ack["detail"] == {"x": 0.3, "y": 0.7}
        for ws in (a, b):
            moved = recv_until(ws, of_type("state", reason="morph", morph={"x": 0.3, "y": 0.7}))
            server_adapter.validate_python(moved)
        assert session.morph == (0.3, 0.7)
        send(a, type="morph", id="bad", x=0.3, y=-1)
        error = recv_until(a, of_type("error", id="bad"))
        assert error["code"] == "invalid" and error["of"] == "morph" and "y" in error["message"]
        assert session.morph == (0.3, 0.7), "a refused move moves nothing"
        send(a, type="morph", id="again", x=0.0, y=0.0)  # the connection still works
        recv_until(a, of_type("ack", id="again"))
    assert session.morph == (0.0, 0.0)


def test_a_knob_swept_on_the_engine_is_coalesced_and_ends_where_it_stopped(
        server: WebServer) -> None:
    session = server.hub.session
    with client(server) as ws:
        greeted(ws)
        for v in range(128):  # a knob sweep, as CC 26 would move it, off the event loop
            session.set_morph(v / 127, 0.5)
        seen: list[dict[str, Any]] = []
        last = recv_until(ws, lambda m: m["type"] == "state" and m["reason"] == "morph"
                          and m["morph"] == {"x": 1.0, "y": 0.5}, seen=seen)
        moves = [m for m in seen if m.get("reason") == "morph"] + [last]
        assert len(moves) < 20, f"{len(moves)} states for one sweep"
    session.set_morph(0.0, 0.0)
