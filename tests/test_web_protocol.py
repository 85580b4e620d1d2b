"""The protocol models on their own, and hypothesis-made malformed messages sent over a real
socket: each gets one error reply that is valid protocol, and the connection stays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection

from bridges.web import WebServer
from bridges.web.protocol import (
    CLIENT_TYPES,
    Pattern,
    ProtocolError,
    SetControls,
    SetMorph,
    Step,
    parse_client,
    server_adapter,
)
from tests.web_helpers import client, greeted, of_type, recv_until, running_server, send

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
almost_messages = st.fixed_dictionaries(
    {"type": st.sampled_from(CLIENT_TYPES)},
    optional={"id": json_values, "version": json_values, "part": json_values,
              "bpm": json_values, "step": json_values, "action": json_values,
              "density": json_values, "client_time": json_values, "x": json_values,
              "y": json_values, "extra": json_values})
malformed = st.one_of(
    st.text(max_size=60),
    json_values.map(json.dumps),
    almost_messages.map(json.dumps),
)


def test_valid_messages_parse_to_their_models() -> None:
    step = parse_client('{"type": "step", "id": 3, "part": "drums", "bar": 2, "step": 5, '
                        '"pitch": 38, "velocity": 90}')
    assert isinstance(step, Step) and step.id == 3 and step.velocity == 90
    controls = parse_client('{"type": "controls", "part": "drums", "auto": false}')
    assert isinstance(controls, SetControls) and controls.auto is False
    assert controls.density is None
    assert isinstance(parse_client('{"type": "pattern", "part": "d", "action": "vary"}'),
                      Pattern)
    morph = parse_client('{"type": "morph", "x": 0, "y": 1}')
    assert isinstance(morph, SetMorph) and (morph.x, morph.y) == (0.0, 1.0)


@pytest.mark.parametrize("text, code", [
    ("", "bad_json"),
    ('"hello"', "invalid"),
    ('{"type": 5}', "unknown_type"),
    ('{"type": "ping", "client_time": 1, "surprise": true}', "invalid"),
    ('{"type": "controls", "part": "drums", "temperature": 1e-300}', "invalid"),
    ('{"type": "step", "part": "d", "bar": -1, "step": 0, "pitch": 1, "velocity": 1}',
     "invalid"),
    ('{"type": "ping", "client_time": 1, "version": "1"}', "unsupported_version"),
    ('{"type": "morph", "x": 0.5, "y": Infinity}', "invalid"),
])
def test_malformed_messages_raise_the_right_code(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as error:
        parse_client(text)
    assert error.value.code == code


@given(malformed)
@settings(max_examples=300, deadline=None)
def test_anything_parses_or_is_a_protocol_error(text: str) -> None:
    try:
        parse_client(text)
    except ProtocolError as exc:
        server_adapter.validate_json(exc.reply().model_dump_json())


def parses(text: str) -> bool:
    try:
        parse_client(text)
    except ProtocolError:
        return False
    return True


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    with running_server(messages_per_second=1000.0, burst=1000) as s:  # no rate limit here
        yield s


@pytest.fixture(scope="module")
def connection(server: WebServer) -> Iterator[ClientConnection]:
    with client(server) as ws:
        greeted(ws)
        yield ws


@given(malformed)
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_malformed_messages_over_the_wire_get_an_error_and_the_socket_stays(
        connection: ClientConnection, text: str) -> None:
    assume(not parses(text))  # a valid message by chance is not this test's business
    connection.send(text)
    reply: dict[str, Any] = recv_until(connection, lambda m: m["type"] in ("error", "ack"))
    assert reply["type"] == "error"
    server_adapter.validate_python(reply)
    send(connection, type="ping", id="alive", client_time=0.0)
    recv_until(connection, of_type("pong", id="alive"))
