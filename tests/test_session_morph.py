"""The session's timbre morph: one x/y position for the whole session that every front door
moves (set_morph, CC 26/27, MIDI learn) and every listener hears, on a real session."""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path

import pytest

from musegen.engine import CCMap, LiveSession
from musegen.engine.cc_map import SYNTH
from musegen.music.controls import ControlError
from tests.test_engine import FakeTime
from tests.test_session import make_session


@pytest.fixture
def session() -> LiveSession:
    made, _ = make_session({"drums": "drums-lstm"}, FakeTime(), cc_map=CCMap.defaults("drums"))
    return made


def test_the_morph_starts_at_the_first_corner_and_moves_for_every_listener(
        session: LiveSession) -> None:
    assert session.morph == (0.0, 0.0) and session.state().morph == (0.0, 0.0)
    heard: list[tuple[float, float]] = []
    session.add_morph_listener(lambda x, y: heard.append((x, y)))
    assert session.set_morph(0.3, 0.7) == (0.3, 0.7)
    session.set_morph(1, 0)  # ints are numbers too
    assert heard == [(0.3, 0.7), (1.0, 0.0)]
    assert session.morph == (1.0, 0.0) and session.state().morph == (1.0, 0.0)
    assert all(isinstance(v, float) for v in session.morph)


@pytest.mark.parametrize("x, y, axis", [
    (-0.01, 0.5, "x"), (1.01, 0.5, "x"), (0.5, 2.0, "y"), (math.nan, 0.5, "x"),
    (0.5, math.inf, "y"), (0.5, -math.inf, "y"), ("0.5", 0.5, "x"), (0.5, None, "y"),
    (True, 0.5, "x"),
])
def test_a_bad_morph_is_refused_and_changes_nothing(session: LiveSession, x: object, y: object,
                                                    axis: str) -> None:
    session.set_morph(0.25, 0.75)
    heard: list[tuple[float, float]] = []
    session.add_morph_listener(lambda x, y: heard.append((x, y)))
    with pytest.raises(ControlError, match=f"morph {axis} must be"):
        session.set_morph(x, y)  # type: ignore[arg-type]
    assert session.morph == (0.25, 0.75) and heard == []


def test_a_failing_listener_is_logged_once_and_counted_never_raised(
        session: LiveSession, caplog: pytest.LogCaptureFixture) -> None:
    heard: list[tuple[float, float]] = []

    def broken(x: float, y: float) -> None:
        raise RuntimeError("synth gone")

    session.add_morph_listener(broken)
    session.add_morph_listener(lambda x, y: heard.append((x, y)))
    with caplog.at_level(logging.ERROR):
        for i in range(5):
            session.set_morph(i / 10, 0.5)
    assert session.morph == (0.4, 0.5) and len(heard) == 5, "the others still hear every move"
    assert session.morph_errors == 5
    logged = [r for r in caplog.records if "morph listener" in r.getMessage()]
    assert len(logged) == 1 and "synth gone" in (logged[0].exc_text or "")
    session.remove_morph_listener(broken)
    session.set_morph(0.9, 0.9)
    assert session.morph_errors == 5


def test_cc_26_and_27_on_any_channel_move_one_axis_each(session: LiveSession) -> None:
    before = session.part("drums").controls
    assert session.cc_in(0.0, 0, 26, 127) == (SYNTH, "morph_x")
    assert session.morph == (1.0, 0.0)
    assert session.cc_in(0.0, 9, 27, 64) == (SYNTH, "morph_y")
    assert session.morph == (1.0, pytest.approx(64 / 127))
    session.cc_in(0.0, 15, 26, 0)
    assert session.morph == (0.0, pytest.approx(64 / 127)), "x only: y stays"
    session.cc_in(0.0, 0, 27, 200)  # a value past 7 bits is a full turn, not an error
    assert session.morph == (0.0, 1.0)
    assert session.part("drums").controls == before, "the morph is no part's control"


def test_an_empty_map_leaves_26_and_27_alone() -> None:
    session, _ = make_session({"drums": "drums-lstm"}, FakeTime())
    assert session.cc_in(0.0, 0, 26, 127) is None and session.morph == (0.0, 0.0)


def test_midi_learn_binds_a_morph_axis_to_the_synth_and_survives_a_save(
        session: LiveSession, tmp_path: Path) -> None:
    session.cc_map.arm("drums", "morph_y")  # whatever part is armed: the morph is the synth's
    assert session.cc_in(0.0, 2, 80, 127) == (SYNTH, "morph_y")
    assert session.cc_map.learned.is_set() and session.morph == (0.0, 1.0)
    session.cc_map.arm(SYNTH, "morph_x")
    assert session.cc_in(0.0, 2, 81, 0) == (SYNTH, "morph_x")
    session.cc_map.save(tmp_path / "live.json")
    again = CCMap.load(tmp_path / "live.json")
    learned = [(b.channel, b.cc, b.part, b.control) for b in again.bindings][-2:]
    assert learned == [(2, 80, SYNTH, "morph_y"), (2, 81, SYNTH, "morph_x")]
    with pytest.raises(ControlError, match="cannot map"):
        session.cc_map.arm(SYNTH, "morph_z")


def test_moves_from_many_threads_end_where_the_listener_last_heard(
        session: LiveSession) -> None:
    heard: list[tuple[float, float]] = []
    session.add_morph_listener(lambda x, y: heard.append((x, y)))

    def turn(cc: int) -> None:
        for v in range(128):
            session.cc_in(0.0, 0, cc, v)

    threads = [threading.Thread(target=turn, args=(cc,)) for cc in (26, 27)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert session.morph == (1.0, 1.0) and heard[-1] == session.morph
    assert len(heard) == 256
