"""The drum grid over the engine's bars: which step a hit shows on, and step edits.

A hit shows on the 16th its onset rounds to (a drummer's early snare still reads as the
snare on 2). The engine's `edit_step` works on the 16th window an onset falls in, so an
edit here first clears the hits that *show* on the step, then sets it: what the player sees
toggled is what changes.

Which bar an edit goes to: the bar asked for while it is still queued; once that bar has
begun sounding (or is gone) the edit goes to the next bar instead, the one that will loop
when the part holds. Just after a bar line that next bar may not be made yet: the engine
then keeps the edit and puts it in the bar when it makes it (only the 16th window itself:
a humanized hit from a neighbouring window cannot be seen before the bar exists). The
reply says which bar was edited.
"""

from __future__ import annotations

import math

from musegen.engine.events import NOTE_ON
from musegen.engine.part import RenderedBar
from musegen.engine.session import EngineError, LiveSession
from musegen.music.controls import ControlError

STEPS_PER_BEAT = 4


def steps_per_bar(beats_per_bar: float) -> int:
    return round(beats_per_bar * STEPS_PER_BEAT)


def shown_step(beat: float, bar_start: float, steps: int) -> int:
    """The grid step a hit at `beat` shows on (clamped into the bar)."""
    return min(max(math.floor((beat - bar_start) * STEPS_PER_BEAT + 0.5), 0), steps - 1)


def window_step(beat: float, bar_start: float) -> int:
    """The 16th window `edit_step` finds a hit at `beat` in."""
    return math.floor((beat - bar_start) * STEPS_PER_BEAT + 1e-9)


def _rendered(session: LiveSession, part: str, bar: int) -> RenderedBar | None:
    for rendered in reversed(tuple(session.part(part).rendered)):
        if rendered.bar == bar:
            return rendered
    return None


def target_bar(session: LiveSession, bar: int) -> int:
    """`bar`, or the next one to sound when `bar` has begun."""
    state = session.state()
    playing = session.worker.bar_at(state.beat)
    if state.playing and bar <= playing:
        return playing + 1
    return bar


def edit(session: LiveSession, part: str, bar: int, step: int, pitch: int,
         velocity: int) -> int:
    """Toggle one step as shown on the grid; returns the bar edited (EngineError when no
    queued bar can take it)."""
    target = session.part(part)
    steps = steps_per_bar(target.beats_per_bar)
    if not 0 <= step < steps:
        raise ControlError(f"step {step} outside 0..{steps - 1}")
    candidates = tuple(dict.fromkeys((target_bar(session, bar), target_bar(session, bar) + 1)))
    for candidate in candidates:
        if _edit_bar(session, part, candidate, step, pitch, velocity, steps):
            return candidate
    for candidate in candidates:  # not made yet: a bar line has just passed
        if session.defer_step(part, candidate, step, pitch, velocity):
            return candidate
        # refused because the worker made it meanwhile: it is queued now
        if _edit_bar(session, part, candidate, step, pitch, velocity, steps):
            return candidate
    raise EngineError(f"bar {bar} of {part!r} is not queued: nothing to edit")


def _edit_bar(session: LiveSession, part: str, bar: int, step: int, pitch: int, velocity: int,
              steps: int) -> bool:
    rendered = _rendered(session, part, bar)
    if rendered is None:
        return False
    start = bar * session.part(part).beats_per_bar
    # hits that show on this step but sit in a neighbouring window (humanized early/late)
    for e in rendered.events:
        if e.kind == NOTE_ON and e.pitch == pitch and shown_step(e.beat, start, steps) == step:
            window = window_step(e.beat, start)
            if window != step and 0 <= window < steps:
                session.edit_step(part, bar, window, pitch, 0)
    return session.edit_step(part, bar, step, pitch, velocity) is not None
