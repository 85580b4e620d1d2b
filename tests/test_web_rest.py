"""The REST API on a real server: health, models, state, the timbre morph, one-shot
generation as JSON and as a MIDI file, and schemathesis checking every operation against the
served OpenAPI."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import mido
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from bridges.web import WebServer
from musegen.checkpoint import load_model, shipped_models
from musegen.synth.checkpoint import shipped_synths
from tests.web_helpers import client, greeted, of_type, recv_until, running_server


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    with running_server() as s:
        yield s


def test_health_says_ok_with_the_protocol_version(server: WebServer) -> None:
    body = httpx.get(server.url + "/api/health").json()
    assert body["status"] == "ok" and body["protocol"] == 1
    assert body["engine_running"] is True


def test_models_lists_the_shipped_models_and_synths(server: WebServer) -> None:
    rows = httpx.get(server.url + "/api/models").json()
    synths = {m.name for m in shipped_synths()}
    assert {r["name"] for r in rows} == {meta.name for meta, _ in shipped_models()} | synths
    drums = next(r for r in rows if r["name"] == "drums-lstm")
    assert drums["part"] == "drums" and "rock" in drums["genres"]
    synth = next(r for r in rows if r["name"] == "synth-wavenet")
    assert synth["part"] == "audio" and "piano" in synth["instruments"]


def test_state_is_the_engine_anchor(server: WebServer) -> None:
    body = httpx.get(server.url + "/api/state").json()
    assert body["type"] == "state" and body["parts"][0]["name"] == "drums"
    assert body["tempo_bpm"] == server.hub.session.clock.tempo_bpm


def test_put_morph_moves_the_timbre_and_every_page_sees_it(server: WebServer) -> None:
    with client(server) as ws:
        greeted(ws)
        response = httpx.put(server.url + "/api/morph", json={"x": 0.6, "y": 0.2})
        assert response.status_code == 200 and response.json() == {"x": 0.6, "y": 0.2}
        assert httpx.get(server.url + "/api/state").json()["morph"] == {"x": 0.6, "y": 0.2}
        assert server.hub.session.morph == (0.6, 0.2)
        recv_until(ws, of_type("state", reason="morph", morph={"x": 0.6, "y": 0.2}))
    httpx.put(server.url + "/api/morph", json={"x": 0, "y": 0})


@pytest.mark.parametrize("content", [
    '{"x": 1.5, "y": 0}', '{"x": 0.5}', '{"x": "left", "y": 0}', '{"x": NaN, "y": 0}',
    '{"x": 0.5, "y": 0.5, "z": 1}', '[0.5, 0.5]', "not json",
])
def test_put_morph_refuses_a_bad_position(server: WebServer, content: str) -> None:
    before = server.hub.session.morph
    response = httpx.put(server.url + "/api/morph", content=content,
                         headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "detail" in response.json()
    assert server.hub.session.morph == before


def test_generate_returns_notes_within_the_bars_asked_for(server: WebServer) -> None:
    request = {"model": "drums-lstm", "genre": "funk", "density": 20, "bars": 2, "seed": 3}
    body = httpx.post(server.url + "/api/generate", json=request, timeout=60).json()
    assert body["genre"] == "funk" and body["bars"] == 2
    assert body["notes"], "two bars of drums at density 20 have hits"
    assert all(0 <= n["beat"] < 8 and n["channel"] == 9 for n in body["notes"])
    again = httpx.post(server.url + "/api/generate", json=request, timeout=60).json()
    assert again["notes"] == body["notes"], "a seed makes it repeatable"


def test_generate_midi_is_a_midi_file_download(server: WebServer) -> None:
    response = httpx.post(server.url + "/api/generate/midi", json={"bars": 2}, timeout=60)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/midi"
    assert "attachment" in response.headers["content-disposition"]
    midi = mido.MidiFile(file=io.BytesIO(response.content))
    notes = [m for track in midi.tracks for m in track if m.type == "note_on"]
    assert notes and all(m.channel == 9 for m in notes)


@pytest.mark.parametrize("body, status", [
    ({"model": "nope"}, 404),
    ({"model": "../../etc"}, 404),
    ({"genre": "polka"}, 404),
    ({"model": "melody-lstm", "genre": "hiphop"}, 404),
    ({"bars": 0}, 422),
    ({"surprise": 1}, 422),
])
def test_generate_refuses_what_it_cannot_do(server: WebServer, body: dict[str, object],
                                            status: int) -> None:
    response = httpx.post(server.url + "/api/generate", json=body, timeout=60)
    assert response.status_code == status
    assert "detail" in response.json()


def test_a_density_beyond_the_model_is_clamped_and_said(server: WebServer) -> None:
    body = httpx.post(server.url + "/api/generate", json={"density": 500, "bars": 1},
                      timeout=60).json()
    assert body["density"] == load_model("drums-lstm").meta.density_range[1]


def test_the_openapi_document_is_served(server: WebServer) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    assert {"/api/health", "/api/models", "/api/state", "/api/morph", "/api/generate",
            "/api/generate/midi"} <= set(doc["paths"])


def test_every_operation_keeps_to_its_openapi_document(server: WebServer) -> None:
    """Schemathesis generates requests for each operation from the served document (valid
    and not) and checks every response against it: status codes, content types, bodies."""
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(timeout=60)

        check()
