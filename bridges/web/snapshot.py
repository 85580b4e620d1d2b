"""Engine values -> protocol messages: a session's state, and a rendered bar as notes."""

from __future__ import annotations

from bridges.web.protocol import Bar, Controls, MorphXY, NoteOut, PartInfo, State, StateReason
from musegen.engine.events import NOTE_OFF, NOTE_ON
from musegen.engine.part import PartControls, RenderedBar
from musegen.engine.session import LiveSession, SessionState

DEFAULT_DURATION = 0.125  # beats, for a note whose off is missing (never expected)


def controls_out(c: PartControls) -> Controls:
    return Controls(genre=c.genre, density=c.density, temperature=c.temperature, mute=c.mute,
                    humanize=c.humanize, swing=c.swing, auto=not c.hold)


def state_message(state: SessionState, reason: StateReason) -> State:
    parts = [PartInfo(name=p.name, model=p.model, kind=p.part, channel=p.channel,  # type: ignore[arg-type]
                      controls=controls_out(p.controls), genres=list(p.genres),
                      density_range=p.density_range)
             for p in state.parts]
    return State(reason=reason, server_time=state.wall_time, playing=state.playing,
                 tempo_bpm=state.tempo_bpm, beat=state.beat,
                 beats_per_bar=state.beats_per_bar,
                 clock="midi" if state.clock == "midi" else "internal", parts=parts,
                 morph=MorphXY(x=state.morph[0], y=state.morph[1]))


def session_state(session: LiveSession, reason: StateReason) -> State:
    return state_message(session.state(), reason)


def notes_of(rendered: RenderedBar) -> list[NoteOut]:
    """The bar's note_on/note_off pairs as notes with durations, in onset order."""
    ends = {e.note_id: e.beat for e in rendered.events if e.kind == NOTE_OFF}
    return [NoteOut(beat=e.beat, duration=max(0.0, ends.get(e.note_id, e.beat + DEFAULT_DURATION)
                                              - e.beat),
                    pitch=e.pitch, velocity=e.velocity, channel=e.channel)
            for e in rendered.events if e.kind == NOTE_ON]


def bar_message(part: str, beats_per_bar: float, rendered: RenderedBar, sent_at: float,
                reason: str) -> Bar:
    return Bar(part=part, bar=rendered.bar, start_beat=rendered.bar * beats_per_bar,
               beats_per_bar=beats_per_bar, reason=reason,  # type: ignore[arg-type]
               sent_at=sent_at, controls=controls_out(rendered.controls),
               notes=notes_of(rendered))
