"""REST next to the websocket: health, the shipped models, the engine state, the timbre morph,
and one-shot generation as JSON notes or as a MIDI file. FastAPI documents all of it at
/openapi.json."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

import musegen
from bridges.web.hub import Hub
from bridges.web.oneshot import OneShot, UnknownModel, midi_bytes
from bridges.web.oneshot import Request as OneShotRequest
from bridges.web.protocol import PROTOCOL_VERSION, MorphXY, NoteOut, State, Temperature
from bridges.web.security import token_ok
from bridges.web.snapshot import session_state
from musegen.catalogue import models_json
from musegen.music.controls import ControlError
from musegen.music.timing import PPQN


class ApiError(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    version: str
    protocol: int
    clients: int
    dropped_clients: int
    engine_running: bool
    playing: bool
    uptime_s: float
    # messages other front doors dropped (bad address or value), by door: {"osc": 2}
    dropped_inputs: dict[str, int] = {}


class ModelInfo(BaseModel):
    name: str
    version: str
    family: str
    part: str
    genres: list[str]
    density_range: list[float]  # empty for a synth (part "audio")
    instruments: list[str] = Field(default_factory=list)  # what a synth plays
    params: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)


class GenerateRequest(BaseModel):
    """Defaults: the model's first genre and the middle of its density range; a density
    outside the model's range is clamped into it (the reply says which was used)."""

    model_config = ConfigDict(extra="forbid")
    model: Annotated[str, Field(min_length=1, max_length=64)] = "drums-lstm"
    genre: Annotated[str, Field(max_length=64)] | None = None
    density: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    temperature: Temperature = 1.0
    top_k: Annotated[int, Field(ge=0, le=1000)] = 0
    # a tiny top_p keeps no token at all and the sampler fails: 0.05 is nearly greedy
    top_p: Annotated[float, Field(ge=0.05, le=1.0)] = 1.0
    bars: Annotated[int, Field(ge=1, le=32)] = 4
    tempo_bpm: Annotated[float, Field(ge=20.0, le=400.0)] = 120.0
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class GenerateResult(BaseModel):
    model: str
    genre: str
    density: float
    bars: int
    tempo_bpm: float
    notes: list[NoteOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ApiError, "description": "missing or wrong token"},
    404: {"model": ApiError, "description": "no such shipped model, or no such genre in it"},
}
MORPH_REFUSED: dict[str, Any] = {"model": ApiError, "description": "the engine refused it"}
MIDI_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/midi": {"schema": {"type": "string", "format": "binary"}}},
          "description": "a standard MIDI file"},
}


def router(hub: Hub, token: str | None) -> APIRouter:
    started = time.monotonic()
    oneshot = OneShot()

    def check_token(request: Request) -> None:
        if not token_ok(token, request.headers, request.query_params):
            raise HTTPException(401, "missing or wrong token")

    api = APIRouter(prefix="/api")
    guarded = APIRouter(prefix="/api", dependencies=[Depends(check_token)])

    @api.get("/health")
    def health() -> Health:
        session = hub.session
        return Health(status="ok", version=musegen.__version__, protocol=PROTOCOL_VERSION,
                      clients=len(hub.clients), dropped_clients=hub.dropped,
                      engine_running=session.running, playing=session.clock.playing,
                      uptime_s=round(time.monotonic() - started, 3),
                      dropped_inputs={name: count() for name, count
                                      in hub.dropped_inputs.items()})

    @guarded.get("/models", responses={401: ERRORS[401]})
    def models() -> list[ModelInfo]:
        return [ModelInfo(**row) for row in models_json()]

    @guarded.get("/state", responses={401: ERRORS[401]})
    def state() -> State:
        return session_state(hub.session, "sync")

    @guarded.put("/morph", responses={401: ERRORS[401], 400: MORPH_REFUSED})
    def morph(body: MorphXY) -> MorphXY:
        """Move the synth's timbre now; every page follows (a `state` with reason morph)."""
        try:
            x, y = hub.session.set_morph(body.x, body.y)
        except ControlError as exc:  # the body's own checks make this unlikely, not moot
            raise HTTPException(400, str(exc)) from None
        return MorphXY(x=x, y=y)

    @guarded.post("/generate", responses=ERRORS)
    def generate(body: GenerateRequest) -> GenerateResult:
        result, r = _generate(oneshot, body)
        notes = [NoteOut(beat=n.start / PPQN, duration=(n.end - n.start) / PPQN, pitch=n.pitch,
                         velocity=n.velocity, channel=n.channel) for n in result.score.notes]
        return GenerateResult(model=result.model, genre=result.genre, density=result.density,
                              bars=r.bars, tempo_bpm=r.tempo_bpm, notes=notes)

    @guarded.post("/generate/midi", response_class=Response,
                  responses={**ERRORS, **MIDI_RESPONSE})
    def generate_midi(body: GenerateRequest) -> Response:
        result, _ = _generate(oneshot, body)
        name = f"musegen-{result.model}-{result.genre}.mid"
        return Response(midi_bytes(result.score), media_type="audio/midi",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    out = APIRouter()  # (routes are copied on include: after they are all declared)
    out.include_router(api)
    out.include_router(guarded)
    return out


def _generate(oneshot: OneShot, body: GenerateRequest) -> tuple[Any, OneShotRequest]:
    r = OneShotRequest(body.model, body.genre, body.density, body.temperature, body.top_k,
                       body.top_p, body.bars, body.tempo_bpm, body.seed)
    try:
        return oneshot.generate(r), r
    except UnknownModel as exc:
        raise HTTPException(404, str(exc)) from None
