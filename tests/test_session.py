"""LiveSession: the controls every front door uses, player input, the session recording.

Most tests drive the session's worker and dispatcher by hand on an injected `now` (as in
test_engine), so what is asserted is exact; one runs the real threads for a second.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import mido
import pytest

from bridges.web.snapshot import state_message
from musegen.clock import ClockLost, InternalClock, MidiClockFollower
from musegen.engine import (
    NOTE_ON,
    CCMap,
    EngineError,
    LiveSession,
    SessionRecorder,
)
from musegen.music.controls import ControlError
from musegen.music.midi_spec import CLOCK as TICK
from musegen.music.midi_spec import START
from tests.test_engine import BPM, FakeTime, Recorder, sounding_after

KICK, SNARE = 36, 38


def make_session(models: dict[str, str], ft: FakeTime, *, recorder_path: Path | None = None,
                 prepare: Callable[[LiveSession], None] | None = None,
                 **kw: object) -> tuple[LiveSession, Recorder]:
    clock = InternalClock(BPM, now=ft.now)
    recorder = SessionRecorder(recorder_path, clock, now=ft.now) if recorder_path else None
    session = LiveSession.from_models(models, clock, now=ft.now, sleep=ft.sleep, waiter=ft,
                                      recorder=recorder, **kw)  # type: ignore[arg-type]
    for part in session.parts.values():
        part.set(humanize=0.0)
    if prepare is not None:
        prepare(session)
    out = Recorder(ft.now)
    session.add_output(out)
    session.worker.fill_until(0.0)
    clock.start(t=0.0)
    return session, out


def play(session: LiveSession, ft: FakeTime, until: float, step: float = 0.05) -> None:
    """Advance the fake time to `until`, sending each moment at its due time."""
    fan, d = session._fanout, session.dispatcher
    while True:
        for b in d.handle_transport():
            fan.send(b.events, b.time)
        session.worker.fill_until(session.clock.beat_at(ft.t))
        end = round(min(ft.t + step, until), 9)
        while (due := d.next_due()) <= end and due < until:
            ft.t = max(ft.t, due)
            for b in d.pending_until(ft.t):
                fan.send(b.events, b.time)
        ft.t = end
        if end >= until:
            return


def beats(out: Recorder, part: str, lo: float = -math.inf, hi: float = math.inf) -> list[float]:
    return [s.event.beat for s in out.sent
            if s.event.kind == NOTE_ON and s.event.part == part and lo <= s.event.beat < hi]


# -- drum machine: hold, step edits, vary --------------------------------------------------------


def test_a_step_edit_on_a_held_loop_is_heard_in_that_bar_and_the_loop_after_it() -> None:
    ft = FakeTime()
    session, out = make_session({"drums": "drums-lstm"}, ft)
    session.set_controls("drums", hold=True)
    play(session, ft, until=1.0)  # beat 2 of bar 0; bar 1 is queued (a repeat of bar 0)
    bar1 = next(r for r in session.part("drums").rendered if r.bar == 1)
    had_snare_on_step_2 = any(e.pitch == SNARE and e.kind == NOTE_ON and e.beat == 4.5
                              for e in bar1.events)
    velocity = 0 if had_snare_on_step_2 else 100
    edited = session.edit_step("drums", 1, 2, SNARE, velocity)
    assert edited is not None
    play(session, ft, until=6.0)  # through bar 2
    snare_on_step = [b for b in beats(out, "drums") if b in (4.5, 8.5)]
    sent_snares = {s.event.beat for s in out.sent
                   if s.event.kind == NOTE_ON and s.event.pitch == SNARE}
    if velocity:
        assert {4.5, 8.5} <= sent_snares, snare_on_step
    else:
        assert not {4.5, 8.5} & sent_snares
    # the loop: bar 2 sounds exactly like the edited bar 1, a bar later
    ons = [(s.event.beat, s.event.pitch) for s in out.sent if s.event.kind == NOTE_ON]
    assert [(b + 4, p) for b, p in ons if 4 <= b < 8] == [(b, p) for b, p in ons if 8 <= b < 12]
    assert session.edit_step("drums", 0, 0, KICK, 90) is None  # bar 0 has sounded: refused
    with pytest.raises(ControlError, match="step 16"):
        session.edit_step("drums", 3, 16, KICK, 90)


def test_vary_while_holding_makes_one_new_bar_and_loops_it() -> None:
    ft = FakeTime()
    session, out = make_session({"drums": "drums-lstm"}, ft, density=20.0)
    session.set_controls("drums", hold=True)
    play(session, ft, until=1.0)
    session.vary("drums")
    play(session, ft, until=8.0)  # bars 0..3
    by_bar = [sorted((round(s.event.beat % 4, 6), s.event.pitch) for s in out.sent
                     if s.event.kind == NOTE_ON and bar * 4 <= s.event.beat < bar * 4 + 4)
              for bar in range(4)]
    assert by_bar[1] != by_bar[0]  # the next bar is the varied one
    assert by_bar[2] == by_bar[1] and by_bar[3] == by_bar[1]  # then held again


# -- controls and transport --------------------------------------------------------------------


def test_unknown_part_and_bad_values_are_clear_errors() -> None:
    ft = FakeTime()
    session, _ = make_session({"drums": "drums-lstm"}, ft)
    with pytest.raises(EngineError, match="parts: drums"):
        session.set_controls("bass", density=3.0)
    with pytest.raises(ControlError, match="unknown genre"):
        session.set_controls("drums", genre="polka")
    with pytest.raises(ControlError, match="unknown control"):
        session.set_controls("drums", loudness=3)
    with pytest.raises(EngineError, match="melody model"):
        session.swap_model("drums", "melody-lstm")
    with pytest.raises(EngineError, match="no model"):
        session.swap_model("drums", "no-such-model")


def test_model_swap_keeps_the_clock_and_plays_the_new_model_from_the_next_bar() -> None:
    ft = FakeTime()
    session, out = make_session({"drums": "drums-lstm"}, ft)
    play(session, ft, until=2.5)  # bar 1 playing, bar 2 queued
    session.swap_model("drums", "drums-transformer")
    play(session, ft, until=8.0)
    assert session.clock.playing and session.state().beat == pytest.approx(16.0)
    made = [(r.bar, r.controls.genre) for r in session.part("drums").rendered]
    assert session.part("drums").model_name == "drums-transformer"
    assert {b for b, _ in made} >= {0, 1, 2, 3, 4}
    assert beats(out, "drums", 8.0, 16.0)  # the new model plays on
    assert sounding_after(out.sent) == {} or all(
        e.beat >= 15.0 for e in sounding_after(out.sent).values())


def test_transport_belongs_to_the_daw_when_following_midi_clock() -> None:
    ft = FakeTime()
    session = LiveSession.from_models({"drums": "drums-lstm"}, MidiClockFollower(),
                                      now=ft.now)
    for action in (session.play, session.stop, lambda: session.set_tempo(100.0)):
        with pytest.raises(EngineError, match="DAW"):
            action()
    assert session.state().clock == "midi"


# -- CC mapping and MIDI learn ---------------------------------------------------------------


def test_cc_mapping_default_and_learned_survive_a_save(tmp_path: Path) -> None:
    ft = FakeTime()
    session, _ = make_session({"drums": "drums-lstm"}, ft, cc_map=CCMap.defaults("drums"))
    lo, hi = session.part("drums").meta.density_range
    assert session.cc_in(ft.t, 0, 20, 127) == ("drums", "density")
    top = session.part("drums").controls.density
    session.cc_in(ft.t, 0, 20, 0)
    bottom = session.part("drums").controls.density
    assert lo <= bottom < top <= hi
    assert session.cc_in(ft.t, 0, 74, 10) is None  # unmapped: ignored
    session.cc_map.arm("drums", "temperature")
    assert session.cc_in(ft.t, 3, 74, 127) == ("drums", "temperature")
    assert session.cc_map.learned.is_set()
    assert session.part("drums").controls.temperature == pytest.approx(2.0)
    path = tmp_path / "live.json"
    session.cc_map.save(path)
    again = CCMap.load(path)
    assert [(b.channel, b.cc, b.control) for b in again.bindings][-1] == (3, 74, "temperature")
    assert again.handle(4, 74) is None  # learned on channel 4 (3 from zero) only
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ControlError, match="not a musegen CC map"):
        CCMap.load(tmp_path / "bad.json")


# -- player input -----------------------------------------------------------------------------


def test_call_and_response_answers_the_phrase_in_the_next_bar_only() -> None:
    ft = FakeTime()
    session, out = make_session({"melody": "melody-lstm"}, ft, density=8.0,
                                prepare=lambda s: s.enable_call_and_response("melody"))
    play(session, ft, until=2.0)  # bar 0 in silence: the part waits for a call
    assert beats(out, "melody") == []
    for i, pitch in enumerate((60, 62, 64, 67)):  # a phrase in bar 1, beats 4.0 .. 6.0
        ft.t = 2.0 + i * 0.25
        session.note_in(ft.t, 0, pitch, 90)
        ft.t += 0.2
        session.note_in(ft.t, 0, pitch, 0)
    play(session, ft, until=8.0)  # through bar 3
    answered = beats(out, "melody")
    assert answered, "no answer"
    assert all(8.0 <= b < 12.0 for b in answered), answered  # bar 2, one bar like the call
    assert session.call_response is not None and session.call_response.answers == [(2, 1)]


def test_accompaniment_drums_get_busier_when_the_player_does() -> None:
    ft = FakeTime()
    session, _ = make_session({"drums": "drums-lstm"}, ft,
                              prepare=lambda s: s.enable_accompaniment("drums"))
    drums = session.part("drums")
    lo, hi = drums.meta.density_range
    play(session, ft, until=2.0)
    for i in range(16):  # bar 1: sixteenths
        ft.t = 2.0 + i * 0.125
        session.note_in(ft.t, 0, 60, 100)
        session.note_in(ft.t + 0.05, 0, 60, 0)
    play(session, ft, until=4.0)
    session.note_in(4.1, 0, 60, 100)  # bar 2: one note
    session.note_in(4.3, 0, 60, 0)
    play(session, ft, until=8.0)
    assert session.accompaniment is not None
    busy, sparse = session.accompaniment.decisions[1], session.accompaniment.decisions[2]
    assert busy == pytest.approx(hi) and sparse < lo + (hi - lo) * 0.2
    made = {r.bar: r.controls.density for r in drums.rendered}  # the last render per bar
    assert made[2] == pytest.approx(drums.meta.density_control.validate(busy))
    assert made[3] == pytest.approx(sparse)


# -- the session recording ---------------------------------------------------------------------


def test_recording_holds_sent_and_played_notes_at_their_times(tmp_path: Path) -> None:
    ft = FakeTime()
    path = tmp_path / "take.mid"
    session, out = make_session({"drums": "drums-lstm"}, ft, recorder_path=path)
    play(session, ft, until=2.0)
    session.note_in(2.5, 0, 64, 80)
    session.note_in(2.75, 0, 64, 0)
    play(session, ft, until=4.0)
    assert session.recorder is not None and session.recorder.flush()
    midi = mido.MidiFile(path)
    assert midi.ticks_per_beat == 480 and len(midi.tracks) == 3
    sent_ons = [s.at for s in out.sent if s.event.kind == NOTE_ON]
    t, times = 0, []
    for msg in midi.tracks[1]:
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            times.append(t / 960)  # 120 BPM: 960 ticks a second
    assert times == pytest.approx(sent_ons, abs=1 / 960)
    t, player = 0, []
    for msg in midi.tracks[2]:
        t += msg.time
        if msg.type in ("note_on", "note_off"):
            player.append((msg.type, msg.note, t))
    assert player == [("note_on", 64, 2400), ("note_off", 64, 2640)]


def test_kill_9_leaves_a_valid_recording_of_all_but_the_last_bar(tmp_path: Path) -> None:
    path = tmp_path / "crash.mid"
    script = textwrap.dedent(f"""
        import time
        from musegen.clock import InternalClock
        from musegen.engine import LiveSession, SessionRecorder
        clock = InternalClock(480.0)  # a bar every half second
        rec = SessionRecorder({str(path)!r}, clock)
        s = LiveSession.from_models({{"drums": "drums-lstm"}}, clock, recorder=rec,
                                    density=24.0)
        s.start(); clock.start()
        print("playing", flush=True)
        time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "playing"
    started = time.monotonic()
    time.sleep(3.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    played_s = time.monotonic() - started
    midi = mido.MidiFile(path)  # parses: never half written
    ons = [m for m in midi.tracks[1] if m.type == "note_on" and m.velocity > 0]
    assert ons
    recorded_s = sum(m.time for m in midi.tracks[1]) / (480 * 8)  # 480 BPM: 3840 ticks/s
    assert recorded_s >= played_s - 0.5 - 0.6, (recorded_s, played_s)  # a bar, plus slack
    assert not path.with_name(path.name + ".tmp").exists() or path.exists()


def test_threads_play_pair_every_note_and_stop_cleanly() -> None:
    clock = InternalClock(240.0)
    session = LiveSession.from_models({"drums": "drums-lstm", "melody": "melody-lstm"}, clock)
    out = Recorder(time.monotonic)
    session.add_output(out)
    session.start()
    session.play()
    time.sleep(1.5)
    session.stop()
    time.sleep(0.1)
    session.close()
    parts = {s.event.part for s in out.sent if s.event.kind == NOTE_ON}
    assert parts == {"drums", "melody"}
    assert sounding_after(out.sent) == {}
    assert session.output_errors == 0 and session.worker.error is None


def test_a_silent_daw_clock_is_declared_lost_at_its_deadline_not_at_the_next_poll() -> None:
    clock = MidiClockFollower(on_loss="stop")
    session = LiveSession.from_models({"drums": "drums-lstm"}, clock)
    # A 2 s poll: the pass at 2 s (ticking) arms the deadline, and only the deadline can wake
    # the thread in time once the clock falls silent at 2.5 s (the next poll: 4 s)
    session.worker.poll_s = 2.0
    lost: list[float] = []
    clock.add_listener(lambda e: lost.append(time.monotonic()) if isinstance(e, ClockLost)
                       else None)
    session.start()
    try:
        period = 60.0 / (120.0 * 24)
        clock.feed(START, time.monotonic())
        for _ in range(120):  # 2.5 s of clock at 120 BPM, then silence
            time.sleep(period)
            clock.feed(TICK, time.monotonic())
        last = time.monotonic()
        deadline = clock.overdue_at()
        assert deadline == pytest.approx(last + 4 * period, abs=0.01)
        time.sleep(0.6)
    finally:
        session.close()
    assert lost, "the silence was not noticed"
    assert lost[0] - deadline < 0.2, lost[0] - deadline
    assert not clock.playing and session.worker.error is None


def test_a_step_edit_survives_a_control_change_that_regenerates_its_bar() -> None:
    ft = FakeTime()
    session, out = make_session({"drums": "drums-lstm"}, ft, density=4.0)
    play(session, ft, until=0.5)  # bar 1 is queued, two beats away
    assert session.edit_step("drums", 1, 3, SNARE, 110) is not None
    session.set_controls("drums", density=40.0)  # bar 1 is taken back and made again
    play(session, ft, until=4.0)
    remade = [r for r in session.part("drums").rendered if r.bar == 1]
    assert len(remade) == 2 and remade[-1].controls.density == 40.0
    snare = [s for s in out.sent if s.event.kind == NOTE_ON and s.event.pitch == SNARE
             and s.event.beat == 4.75]
    assert len(snare) == 1 and snare[0].event.velocity == 110


def test_a_step_edit_for_a_bar_not_made_yet_is_kept_and_lands_in_it() -> None:
    ft = FakeTime()
    session, out = make_session({"drums": "drums-lstm"}, ft, density=4.0)
    play(session, ft, until=0.5)  # playing bar 0; bar 1 is queued, bar 2 not made yet
    assert not any(r.bar >= 2 for r in session.part("drums").rendered)
    assert session.defer_step("drums", 2, 3, SNARE, 110)
    assert not session.defer_step("drums", 1, 3, SNARE, 110), "bar 1 is made: edit it"
    assert not session.defer_step("drums", 0, 3, SNARE, 110), "bar 0 is sounding"
    assert not session.defer_step("drums", 3, 3, SNARE, 110), "too far ahead to keep"
    with pytest.raises(ControlError, match="step 16"):
        session.defer_step("drums", 2, 16, SNARE, 110)
    play(session, ft, until=6.0)  # through bar 2 (beats 8..12)
    snare = [s for s in out.sent if s.event.kind == NOTE_ON and s.event.pitch == SNARE
             and s.event.beat == 8.75]
    assert len(snare) == 1 and snare[0].event.velocity == 110


def test_a_session_on_its_own_clock_still_tells_the_web_page_the_system_time() -> None:
    """A session on JACK's frames (here: a fake clock far from the system's) reports its own
    time and, for the page's clock sync, the monotonic time of the same moment."""
    ft = FakeTime()
    ft.t = 5.0  # frames since the JACK server started: nothing like time.monotonic()
    session, _ = make_session({"drums": "drums-lstm"}, ft)
    before = time.monotonic()
    state = session.state()
    assert state.time == 5.0
    assert before <= state.wall_time <= time.monotonic()
    assert state_message(state, "hello").server_time == state.wall_time
    session.close()
