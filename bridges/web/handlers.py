"""What each client message does to the engine, and what goes back.

Replies go to the asking client only (`ack`, `pong`, `error`); anything that changes what
everyone sees (controls, transport, tempo, model) is followed by a `state` to all clients,
so every page and the engine agree. Bars changed by an edit reach everyone through the
engine's own bar hook, a morph move through the hub's morph listener (whoever moved it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bridges.web import grid
from bridges.web.hub import Client, Hub
from bridges.web.oneshot import OneShot
from bridges.web.protocol import (
    Ack,
    Hello,
    Pattern,
    Ping,
    Pong,
    ProtocolError,
    SetControls,
    SetMorph,
    StateReason,
    Step,
    SwapModel,
    Sync,
    Tempo,
    Transport,
    encode,
)
from musegen.engine.session import EngineError
from musegen.music.controls import ControlError


async def handle(message: Any, hub: Hub, client: Client) -> None:
    """Carry out one validated message; ProtocolError for what the engine refuses."""
    try:
        detail, reason = await _apply(message, hub, client)
    except (EngineError, ControlError) as exc:  # EngineError is a ValueError: catch it first
        raise ProtocolError("engine", str(exc), of=message.type,
                            request_id=message.id) from None
    if detail is not None:
        hub.send(client, encode(Ack(id=message.id, of=message.type, detail=detail)))
    if reason is not None:
        hub.broadcast(hub.state_text(reason))


async def _apply(message: Any, hub: Hub,
                 client: Client) -> tuple[dict[str, Any] | None, StateReason | None]:
    """(ack detail or None for no ack, state reason to broadcast or None)."""
    session = hub.session
    match message:
        case Ping():
            hub.send(client, encode(Pong(id=message.id, client_time=message.client_time,
                                         server_time=time.monotonic())))
            return None, None
        case Hello():
            return {"client_id": client.id}, None
        case Sync():
            hub.send(client, hub.state_text("sync"))
            for text in hub.backlog():
                hub.send(client, text)
            return {}, None
        case Transport(action="play"):
            session.play()
        case Transport(action="stop"):
            session.stop()
        case Transport(action="rewind"):
            session.rewind()
        case Tempo():
            session.set_tempo(message.bpm)
            return {"bpm": message.bpm}, "tempo"
        case SetControls():
            return _controls(hub, message), "controls"
        case SwapModel():
            if message.model not in OneShot.shipped_names():  # a name, never a path
                raise EngineError(f"no shipped model {message.model!r}")
            # loading a model reads and builds it: not on the event loop
            await asyncio.to_thread(session.swap_model, message.part, message.model)
            return {"model": message.model}, "model"
        case Step():
            bar = grid.edit(session, message.part, message.bar, message.step, message.pitch,
                            message.velocity)
            return {"bar": bar, "step": message.step, "pitch": message.pitch}, None
        case Pattern():
            _pattern(hub, message)
            return {"action": message.action}, "controls"
        case SetMorph():
            x, y = session.set_morph(message.x, message.y)
            return {"x": x, "y": y}, None  # the hub's morph listener tells everyone
    return {}, None  # transport: its clock event already told everyone


def _controls(hub: Hub, message: SetControls) -> dict[str, Any]:
    changes = message.model_dump(exclude={"type", "version", "id", "part", "auto"},
                                 exclude_none=True)
    if message.auto is not None:
        changes["hold"] = not message.auto
    controls = hub.session.set_controls(message.part, **changes)
    return {"density": controls.density, "genre": controls.genre,
            "temperature": controls.temperature, "auto": not controls.hold}


def _pattern(hub: Hub, message: Pattern) -> None:
    session = hub.session
    if message.action == "continue":
        session.set_controls(message.part, hold=False)
        return
    if message.action == "generate":
        session.set_controls(message.part, hold=True)
    session.vary(message.part)
