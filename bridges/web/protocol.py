"""The browser protocol, version 1: JSON text frames on `/ws`, validated both ways.

Every message is one JSON object with a `type` and the protocol `version`. Client messages
may carry an `id` that the reply (`ack`, `error`, `pong`) echoes. Times are of two kinds
only: beats (quarter notes from the song start) for everything musical, and the server's
monotonic seconds (`server_time`, `sent_at`) so a client can map beats to its own clock
from a `state` anchor. docs/protocol.md documents each message with examples.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION: Literal[1] = 1
Name = Annotated[str, Field(min_length=1, max_length=64)]
RequestId = Annotated[int, Field(ge=0, le=2**53)] | Annotated[str, Field(max_length=64)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
# Below this the sampler's logits / temperature overflow to inf and sampling fails (a
# temperature of 1e-300 would stop the engine's generation thread): 0.01 is near-greedy.
MIN_TEMPERATURE = 0.01
Temperature = Annotated[float, Field(ge=MIN_TEMPERATURE, le=10.0)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = PROTOCOL_VERSION


class _Request(_Message):
    id: RequestId | None = None


# -- client -> server -------------------------------------------------------------------------


class Hello(_Request):
    type: Literal["hello"]
    client: Annotated[str, Field(max_length=64)] = ""


class Ping(_Request):
    type: Literal["ping"]
    client_time: Finite  # the client's own clock, echoed back in the pong


class Transport(_Request):
    type: Literal["transport"]
    action: Literal["play", "stop", "rewind"]


class Tempo(_Request):
    type: Literal["tempo"]
    bpm: Annotated[float, Field(ge=20.0, le=400.0)]


class SetControls(_Request):
    """Change some of a part's controls from its next bar; absent fields keep their value.
    `auto` false holds the part on a loop that step edits change (see Step)."""

    type: Literal["controls"]
    part: Name
    genre: Name | None = None
    density: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    temperature: Temperature | None = None
    mute: bool | None = None
    humanize: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    swing: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    auto: bool | None = None


class SwapModel(_Request):
    type: Literal["model"]
    part: Name
    model: Name


class Step(_Request):
    """Set (velocity > 0) or clear one 16th step of one lane. An edit to a bar that is
    already sounding (or gone) goes to the next bar, which is the one that will loop."""

    type: Literal["step"]
    part: Name
    bar: Annotated[int, Field(ge=0, le=10**7)]
    step: Annotated[int, Field(ge=0, le=63)]
    pitch: Annotated[int, Field(ge=0, le=127)]
    velocity: Annotated[int, Field(ge=0, le=127)]


class Pattern(_Request):
    """vary: a fresh next bar; generate: a fresh bar, then hold it; continue: auto on."""

    type: Literal["pattern"]
    part: Name
    action: Literal["vary", "generate", "continue"]


class SetMorph(_Request):
    """Move the synth's timbre (x, y in 0..1) now, for the whole session (not a part)."""

    type: Literal["morph"]
    x: Unit
    y: Unit


class Sync(_Request):
    """Ask again for the state and the bars queued ahead (after a tab woke up, say)."""

    type: Literal["sync"]


ClientMessage = Annotated[
    Hello | Ping | Transport | Tempo | SetControls | SwapModel | Step | Pattern | SetMorph
    | Sync,
    Field(discriminator="type"),
]
CLIENT_TYPES = ("hello", "ping", "transport", "tempo", "controls", "model", "step",
                "pattern", "morph", "sync")
_client_adapter: TypeAdapter[Any] = TypeAdapter(ClientMessage)


# -- server -> client -------------------------------------------------------------------------


class Controls(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    genre: str
    density: float
    temperature: float
    mute: bool
    humanize: float
    swing: float
    auto: bool  # the engine writes each next bar (false: the part loops, hold)


class PartInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    model: str
    kind: Literal["drums", "melody"]
    channel: int
    controls: Controls
    genres: list[str]
    density_range: tuple[float, float]


class MorphXY(BaseModel):
    """The synth's timbre position: (0, 0), (1, 0), (0, 1), (1, 1) are its corner
    instruments (by default piano, strings, flute, lead)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    x: Unit
    y: Unit


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_message_bytes: int
    messages_per_second: float
    burst: int


class ServerHello(_Message):
    type: Literal["hello"] = "hello"
    server: str = "musegen"
    server_version: str
    client_id: int
    steps_per_bar: int
    drum_lanes: list[int]  # GM note of each grid lane, top to bottom
    drum_lane_names: list[str]
    limits: Limits


StateReason = Literal["hello", "sync", "tick", "start", "stop", "continue", "locate", "tempo",
                      "clock_lost", "clock_regained", "controls", "model", "morph"]


class State(_Message):
    """The clock anchor: at the server's monotonic `server_time` the song was at `beat`,
    moving at `tempo_bpm` while `playing`."""

    type: Literal["state"] = "state"
    reason: StateReason
    server_time: float
    playing: bool
    tempo_bpm: float
    beat: float
    beats_per_bar: float
    clock: Literal["internal", "midi"]
    parts: list[PartInfo]
    morph: MorphXY


class NoteOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    beat: float  # onset, from the song start
    duration: float  # beats
    pitch: int
    velocity: int
    channel: int


class Bar(_Message):
    """One part's bar, sent when the engine queues it (about a bar before it sounds); a bar
    sent again for the same part and index replaces the earlier one."""

    type: Literal["bar"] = "bar"
    part: str
    bar: int
    start_beat: float
    beats_per_bar: float
    reason: Literal["generated", "edited", "backlog"]
    sent_at: float  # server monotonic seconds when the engine handed the bar over
    controls: Controls
    notes: list[NoteOut]


class Pong(_Message):
    type: Literal["pong"] = "pong"
    id: RequestId | None = None
    client_time: float
    server_time: float


class Ack(_Message):
    type: Literal["ack"] = "ack"
    id: RequestId | None = None
    of: str
    detail: dict[str, Any] = Field(default_factory=dict)


ErrorCode = Literal["bad_json", "unknown_type", "invalid", "unsupported_version", "too_large",
                    "rate_limited", "binary", "engine", "busy"]


class Error(_Message):
    type: Literal["error"] = "error"
    id: RequestId | None = None
    code: ErrorCode
    message: str
    of: str | None = None  # the type of the message it answers, when known


ServerMessage = Annotated[ServerHello | State | Bar | Pong | Ack | Error,
                          Field(discriminator="type")]
server_adapter: TypeAdapter[Any] = TypeAdapter(ServerMessage)


class ProtocolError(ValueError):
    """A client message that cannot be honoured; becomes an `error` reply."""

    def __init__(self, code: ErrorCode, message: str, *, of: str | None = None,
                 request_id: int | str | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.of = of
        self.request_id = request_id

    def reply(self) -> Error:
        return Error(code=self.code, message=str(self), of=self.of, id=self.request_id)


def parse_client(text: str | bytes) -> Any:
    """One client message, or ProtocolError saying what is wrong with it."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ProtocolError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("invalid", "a message is a JSON object")
    kind = raw.get("type")
    request_id = _request_id(raw.get("id"))
    of = kind if isinstance(kind, str) and kind in CLIENT_TYPES else None
    if of is None:
        raise ProtocolError("unknown_type", f"unknown type {str(kind)[:40]!r}; known: "
                            f"{', '.join(CLIENT_TYPES)}", request_id=request_id)
    if raw.get("version", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        raise ProtocolError("unsupported_version", f"this server speaks protocol version "
                            f"{PROTOCOL_VERSION}", of=of, request_id=request_id)
    try:
        return _client_adapter.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "message"
        raise ProtocolError("invalid", f"{where}: {first['msg']}", of=of,
                            request_id=request_id) from None


def _request_id(value: object) -> int | str | None:
    """The id to echo, when it is one a reply can carry."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= 2**53:
        return value
    if isinstance(value, str) and len(value) <= 64:
        return value
    return None


def encode(message: BaseModel) -> str:
    return message.model_dump_json()
