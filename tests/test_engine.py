"""The engine core with the shipped drum model, a recording Output and a hand-driven `now`.

`play()` advances time in steps (the worker fills at each step) and dispatches every moment
at exactly its due time, so send times can be compared with the clock to float precision.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from musegen.checkpoint import LoadedModel, load_model
from musegen.clock import InternalClock, MidiClockFollower
from musegen.engine import (
    NOTE_OFF,
    NOTE_ON,
    Batch,
    Dispatcher,
    EventQueue,
    EventWaiter,
    GenerationWorker,
    Part,
    PartControls,
    ScheduledEvent,
    Sync,
    shape_onset,
)
from musegen.music.controls import ControlError
from musegen.music.midi_spec import CLOCK as TICK
from musegen.music.midi_spec import START

BPM = 120.0
SPB = 60.0 / BPM  # seconds per beat
EPS = 1e-9


@pytest.fixture(scope="module")
def drums() -> LoadedModel:
    return load_model("drums-lstm")


class FakeTime:
    """now() is a number the test sets; sleep(dt) advances it (sleep(0) by a spin quantum).

    Also the dispatcher's `Waiter` on this time: a nap is a sleep (simulated time jumps
    anyway, so a wake never cuts it short); wakes are remembered for `woken`."""

    def __init__(self, quantum: float = 1e-5) -> None:
        self.t = 0.0
        self.quantum = quantum
        self.on_sleep: Callable[[float], None] | None = None
        self.wakes = threading.Event()

    def now(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt if dt > 0 else self.quantum
        if self.on_sleep is not None and dt > 0:
            self.on_sleep(self.t)

    def wait(self, seconds: float) -> None:
        self.sleep(seconds)

    def wake(self) -> None:
        self.wakes.set()

    def woken(self) -> bool:
        if not self.wakes.is_set():
            return False
        self.wakes.clear()
        return True


@dataclass
class Sent:
    t: float  # now() when the output got it
    at: float  # when the dispatcher said it was due
    event: ScheduledEvent


@dataclass
class Recorder:
    """An Output that records what it is sent and when."""

    now: Callable[[], float]
    sent: list[Sent] = field(default_factory=list)

    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        self.sent.extend(Sent(self.now(), at, e) for e in events)

    def ons(self, since: int = 0) -> list[ScheduledEvent]:
        return [s.event for s in self.sent[since:] if s.event.kind == NOTE_ON]


@dataclass
class Rig:
    time: FakeTime
    clock: InternalClock
    queue: EventQueue
    parts: list[Part]
    worker: GenerationWorker
    dispatcher: Dispatcher
    out: Recorder

    @property
    def part(self) -> Part:
        return self.parts[0]

    def send(self, batches: Sequence[Batch]) -> None:
        for b in batches:
            self.out.send(b.events, b.time)


def make_rig(loaded: LoadedModel, *, density: float = 16.0, humanize: float = 0.0,
             lookahead: int = 1, latency_ms: float = 0.0, parts: int = 1) -> Rig:
    ft = FakeTime()
    clock = InternalClock(BPM, now=ft.now)
    queue = EventQueue()
    made = [Part(f"drums{i}", loaded, PartControls("rock", density, humanize=humanize), seed=3 + i)
            for i in range(parts)]
    worker = GenerationWorker(made, clock, queue, lookahead_bars=lookahead, now=ft.now)
    dispatcher = Dispatcher(clock, queue, latency_ms=latency_ms, now=ft.now, sleep=ft.sleep,
                            waiter=ft)
    return Rig(ft, clock, queue, made, worker, dispatcher, Recorder(ft.now))


def started(rig: Rig) -> Rig:
    rig.worker.fill_until(0.0)  # the first bars are ready before the transport runs
    rig.clock.start(t=0.0)
    return rig


def play(rig: Rig, until: float, step: float = 0.1) -> None:
    """Advance now to `until` in steps; send every moment due before it at its due time."""
    while True:
        rig.send(rig.dispatcher.handle_transport())
        rig.worker.fill_until(rig.clock.beat_at(rig.time.t))
        end = round(min(rig.time.t + step, until), 9)  # no drift from adding 0.1s up
        while (due := rig.dispatcher.next_due()) <= end and due < until:
            rig.time.t = max(rig.time.t, due)
            rig.send(rig.dispatcher.pending_until(rig.time.t))
        rig.time.t = end
        if end >= until:
            rig.send(rig.dispatcher.handle_transport())
            return


def sounding_after(sent: Sequence[Sent]) -> dict[int, ScheduledEvent]:
    """Replay what an output got: every off ends the note sounding on its key, no on lands
    on a sounding key, each note id is played at most once. Returns what still sounds."""
    sounding: dict[int, ScheduledEvent] = {}
    seen: set[int] = set()
    for s in sent:
        e = s.event
        if e.kind == NOTE_ON:
            assert e.key not in sounding, f"note_on over a sounding key at beat {e.beat}"
            assert e.note_id not in seen
            seen.add(e.note_id)
            sounding[e.key] = e
        else:
            assert e.key in sounding and sounding[e.key].note_id == e.note_id, e
            assert e.beat >= sounding.pop(e.key).beat
    return sounding


def ids(events: Sequence[ScheduledEvent], lo: float = -math.inf, hi: float = math.inf) -> set[int]:
    return {e.note_id for e in events if e.kind == NOTE_ON and lo <= e.beat < hi}


def rendered_ons(part: Part, bar: int, density: float | None = None) -> set[int]:
    return {e.note_id for r in part.rendered if r.bar == bar
            and (density is None or r.controls.density == density)
            for e in r.events if e.kind == NOTE_ON}


# -- four bars at 120 BPM ---------------------------------------------------------------------


def test_four_bars_come_out_in_order_on_time_on_grid_and_paired(drums: LoadedModel) -> None:
    rig = started(make_rig(drums, humanize=0.0))
    play(rig, until=8.0)  # 4 bars of 4/4 at 120 BPM
    rig.clock.stop(t=8.0)
    rig.send(rig.dispatcher.handle_transport())
    sent = rig.out.sent
    assert [s.t for s in sent] == sorted(s.t for s in sent)
    assert [s.event.beat for s in sent] == sorted(s.event.beat for s in sent)
    played = [s for s in sent if s.t < 8.0]
    for s in played:  # sent exactly when due: the clock's time for the beat, no latency
        assert s.t == s.at
        assert abs(s.at - s.event.beat * SPB) < EPS
    ons = rig.out.ons()
    assert all(float(e.beat * 4).is_integer() for e in ons)  # humanize 0: on the 16th grid
    assert any(float(e.beat).is_integer() for e in ons)
    assert {math.floor(e.beat / 4) for e in ons} == {0, 1, 2, 3}
    assert [r.bar for r in rig.part.rendered] == [0, 1, 2, 3, 4]  # one bar ahead, no more
    expected = set().union(*(rendered_ons(rig.part, b) for b in range(4)))
    late_downbeat = {e.note_id for r in rig.part.rendered for e in r.events
                     if e.kind == NOTE_ON and e.beat >= 16.0}  # a bar 3 hit snapped to beat 16
    assert ids(ons) == expected - late_downbeat
    assert sounding_after(sent) == {}  # every on has its later off (the last via Stop)
    assert rig.dispatcher.sounding == []


# -- live controls ----------------------------------------------------------------------------


def test_density_change_during_bar_1_takes_effect_from_bar_2(drums: LoadedModel) -> None:
    rig = started(make_rig(drums, density=4.0, humanize=1.0))
    play(rig, until=2.25)  # beat 4.5: bar 1 sounds, bar 2 is queued with density 4
    assert [r.bar for r in rig.part.rendered] == [0, 1, 2]
    rig.part.set(density=40.0)
    play(rig, until=8.0)
    made = [(r.bar, r.controls.density) for r in rig.part.rendered]
    assert made == [(0, 4.0), (1, 4.0), (2, 4.0), (2, 40.0), (3, 40.0), (4, 40.0)]
    ons = rig.out.ons()
    bar_of = {e.note_id: math.floor(e.beat / 4) for e in ons}
    assert {i for i, b in bar_of.items() if b == 1} == rendered_ons(rig.part, 1)
    sent_bar2 = {i for i, b in bar_of.items() if b == 2}
    assert sent_bar2 and sent_bar2 <= rendered_ons(rig.part, 2, 40.0)
    assert not sent_bar2 & rendered_ons(rig.part, 2, 4.0)  # the old bar 2 was taken back
    old = sum(1 for b in bar_of.values() if b in (0, 1))
    new = sum(1 for b in bar_of.values() if b in (2, 3))
    assert new > 2 * old
    assert sounding_after(rig.out.sent).keys() <= {e.key for e in rig.dispatcher.sounding}


def test_a_change_too_close_to_the_next_bar_keeps_that_bar(drums: LoadedModel) -> None:
    rig = started(make_rig(drums, density=4.0))
    play(rig, until=3.9)  # 0.1 s before bar 2: too late to make bar 2 again
    rig.part.set(density=40.0, swing=1.0)
    play(rig, until=8.0)
    made = [(r.bar, r.controls.density) for r in rig.part.rendered]
    assert made == [(0, 4.0), (1, 4.0), (2, 4.0), (3, 40.0), (4, 40.0)]
    assert ids(rig.out.ons(), 8.0, 12.0) == rendered_ons(rig.part, 2)


def test_mute_and_model_swap_apply_from_the_next_bar(drums: LoadedModel) -> None:
    rig = started(make_rig(drums, density=24.0))
    play(rig, until=2.25)  # bar 1
    rig.part.swap_model(drums, PartControls("jazz", 24.0))
    play(rig, until=4.25)  # bar 2
    rig.part.set(mute=True)
    play(rig, until=8.0)
    made = [(r.bar, r.controls.genre, r.controls.mute) for r in rig.part.rendered]
    assert made == [(0, "rock", False), (1, "rock", False), (2, "rock", False),
                    (2, "jazz", False), (3, "jazz", False), (3, "jazz", True),
                    (4, "jazz", True)]
    ons = rig.out.ons()
    assert ids(ons, 8.0, 12.0) == rendered_ons(rig.part, 2) - ids(
        [e for r in rig.part.rendered if r.controls.genre == "rock" for e in r.events])
    assert all(not r.events for r in rig.part.rendered if r.controls.mute)
    assert ids(ons, 12.0) <= rendered_ons(rig.part, 2)  # muted from bar 3; bar 2's notes end
    assert sounding_after(rig.out.sent) == {}


def test_controls_are_validated_before_they_reach_the_worker(drums: LoadedModel) -> None:
    part = Part("d", drums, PartControls("Rock", 10.0))
    assert part.controls.genre == "rock" and part.channel == 9
    for bad in ({"genre": "polka"}, {"density": 1000.0}, {"swing": 1.5}, {"humanize": -0.1}):
        with pytest.raises(ControlError):
            part.set(**bad)
    assert part.version == 0 and part.controls.density == 10.0


def test_humanize_and_swing_shape_onsets() -> None:
    assert shape_onset(130, 0.0, 0.0) == 120.0  # snapped to the nearest 16th
    assert shape_onset(130, 1.0, 0.0) == 130.0  # as generated
    assert shape_onset(130, 0.5, 0.0) == 125.0
    assert shape_onset(240, 0.0, 1.0) == 240.0  # an on-8th 16th never swings
    assert shape_onset(360, 0.0, 0.5) == 380.0  # off-16th: swing x 1/3 of 120 ticks


# -- transport --------------------------------------------------------------------------------


def test_stop_mid_bar_ends_every_sounding_note_and_continue_resumes(drums: LoadedModel) -> None:
    rig = started(make_rig(drums, density=32.0, humanize=1.0))
    play(rig, until=2.5)
    while not rig.dispatcher.sounding:  # on to a moment with notes ringing
        play(rig, until=rig.dispatcher.next_due() + 0.001)
    ringing = {e.note_id for e in rig.dispatcher.sounding}
    stop_t = rig.time.t
    rig.clock.stop(t=stop_t)
    stop_beat = rig.clock.beat_at(stop_t)
    offs = [e for b in rig.dispatcher.handle_transport() for e in b.events]
    rig.out.send(offs, stop_t)
    assert {e.note_id for e in offs} == ringing and {e.kind for e in offs} == {NOTE_OFF}
    assert rig.dispatcher.sounding == [] and sounding_after(rig.out.sent) == {}
    n = len(rig.out.sent)
    play(rig, until=stop_t + 1.0)  # stopped: time passes, nothing is sent
    assert len(rig.out.sent) == n
    t1 = stop_t + 1.0
    rig.clock.continue_(t=t1)
    play(rig, until=t1 + 2.0)
    after = rig.out.sent[n:]
    queued = [e.beat for r in rig.part.rendered for e in r.events
              if e.kind == NOTE_ON and e.beat >= stop_beat]
    assert after[0].event.kind == NOTE_ON and after[0].event.beat == min(queued)
    for s in after:
        assert s.event.beat >= stop_beat
        assert abs(s.t - (t1 + (s.event.beat - stop_beat) * SPB)) < EPS
    sounding_after(rig.out.sent)  # the cut notes' queued offs were not sent


def test_song_position_jumps_drop_stale_events(drums: LoadedModel) -> None:
    rig = started(make_rig(drums, density=24.0))
    play(rig, until=2.25)  # beat 4.5
    n = len(rig.out.sent)
    rig.clock.locate(6.5, t=2.25)  # forward, inside the queued bars
    play(rig, until=3.25)  # to beat 8.5
    ons = rig.out.ons(n)
    assert ons and min(e.beat for e in ons) >= 6.5
    assert not ids(ons) & ids([e for r in rig.part.rendered for e in r.events], 4.5, 6.5)
    for s in rig.out.sent[n:]:
        if s.event.kind == NOTE_ON:
            assert abs(s.t - (2.25 + (s.event.beat - 6.5) * SPB)) < EPS
    m, renders = len(rig.out.sent), len(rig.part.rendered)
    rig.clock.locate(1.0, t=3.25)  # back into bar 0: what is queued is for later bars
    play(rig, until=4.75)  # to beat 4.0
    ons = rig.out.ons(m)
    fresh = [r for r in list(rig.part.rendered)[renders:] if r.bar == 0]
    assert len(fresh) == 1 and ons
    assert ids(ons) <= {e.note_id for e in fresh[0].events}  # regenerated, not stale
    assert all(1.0 <= e.beat < 4.0 for e in ons)
    assert sounding_after(rig.out.sent).keys() <= {e.key for e in rig.dispatcher.sounding}


def test_clock_loss_ends_sounding_notes(drums: LoadedModel) -> None:
    ft = FakeTime()
    clock = MidiClockFollower(BPM, on_loss="stop")
    queue = EventQueue()
    part = Part("drums", drums, PartControls("funk", 32.0), seed=1)
    worker = GenerationWorker([part], clock, queue, now=ft.now)
    dispatcher = Dispatcher(clock, queue, now=ft.now, sleep=ft.sleep, waiter=ft)
    out = Recorder(ft.now)
    worker.fill_until(0.0)
    clock.feed(START, 0.0)
    k = 0
    while k < 96 or not dispatcher.sounding:  # at least a bar, then until a note rings
        ft.t = k * SPB / 24
        clock.feed(TICK, ft.t)
        worker.fill_until(clock.beat_at(ft.t))
        for b in dispatcher.handle_transport() + dispatcher.pending_until(ft.t):
            out.send(b.events, b.time)
        k += 1
    ringing = {e.note_id for e in dispatcher.sounding}
    clock.check(ft.t + 1.0)  # silence: ClockLost, then Stop
    offs = [e for b in dispatcher.handle_transport() for e in b.events]
    assert {e.note_id for e in offs} == ringing
    out.send(offs, ft.t + 1.0)
    assert dispatcher.sounding == [] and sounding_after(out.sent) == {}


def test_the_worker_wakes_for_a_deadline_before_its_next_poll(drums: LoadedModel) -> None:
    ft = FakeTime()
    part = Part("drums", drums, PartControls("funk", 8.0), seed=1)
    worker = GenerationWorker([part], InternalClock(BPM, now=ft.now), EventQueue(), now=ft.now,
                              poll_s=1.0)
    assert worker.wait_s() == 1.0
    ft.t = 10.0
    worker.deadline_hooks.append(lambda: 10.25)
    assert worker.wait_s() == pytest.approx(0.25)
    ft.t = 10.3  # a deadline just past: a pass now (a millisecond), not a spin
    assert worker.wait_s() == pytest.approx(0.001)
    worker.deadline_hooks[0] = lambda: math.inf
    assert worker.wait_s() == 1.0


def test_latency_compensation_sends_every_event_10_ms_earlier(drums: LoadedModel) -> None:
    runs = []
    for latency in (0.0, 10.0):
        rig = started(make_rig(drums, humanize=1.0, latency_ms=latency))
        play(rig, until=4.0)
        runs.append(rig.out.sent)
    plain, early = runs
    assert len(early) >= len(plain) > 0
    same = [(s.event.beat, s.event.kind, s.event.pitch) for s in plain]
    # the 10 ms run also sent what falls due in the last 10 ms before t = 4.0
    assert [(s.event.beat, s.event.kind, s.event.pitch) for s in early[: len(same)]] == same
    for a, b in zip(plain, early, strict=False):
        assert abs((a.at - b.at) - 0.010) < EPS
        if b.at >= 0.0:
            assert b.t == b.at
        else:  # due before the transport started: sent at the start, as early as possible
            assert b.t == 0.0 and b.event.beat * SPB < 0.010


def test_dispatcher_retriggers_a_sounding_key_and_ignores_orphan_offs() -> None:
    ft = FakeTime()
    clock = InternalClock(BPM, now=ft.now)
    queue = EventQueue()
    dispatcher = Dispatcher(clock, queue, now=ft.now, drop_late_s=math.inf)

    def note(on: float, off: float, nid: int) -> list[ScheduledEvent]:
        return [ScheduledEvent(on, NOTE_ON, 9, 36, 100, "d", nid),
                ScheduledEvent(off, NOTE_OFF, 9, 36, 0, "d", nid)]

    assert queue.push_bar("d", 0, note(0.0, 1.0, 1) + note(0.5, 2.0, 2) + note(2.0, 3.0, 3),
                          4.0, 0) == "ok"
    clock.start(t=0.0)
    dispatcher.handle_transport()
    sent = [(e.beat, e.kind, e.note_id) for b in dispatcher.pending_until(10.0) for e in b.events]
    assert sent == [(0.0, NOTE_ON, 1), (0.5, NOTE_OFF, 1), (0.5, NOTE_ON, 2),
                    (2.0, NOTE_OFF, 2), (2.0, NOTE_ON, 3), (3.0, NOTE_OFF, 3)]
    # with the default 50 ms limit, notes found 8 s late are dropped whole, offs included
    dispatcher = Dispatcher(clock, queue, now=ft.now)
    queue.push_bar("d", 1, note(4.0, 4.5, 4), 8.0, 0)
    assert dispatcher.pending_until(10.0) == [] and dispatcher.dropped_late == 1
    assert len(queue) == 0


def test_queue_keeps_a_jump_inside_what_is_queued_and_flushes_any_other() -> None:
    queue = EventQueue()
    flushed: list[bool] = []
    queue.on_flush = lambda: flushed.append(True)
    events = [ScheduledEvent(b, NOTE_ON, 0, 60, 90, "m", i) for i, b in enumerate([0, 1, 2, 3])]
    assert queue.push_bar("m", 0, events, 4.0, epoch=0) == "ok"
    assert queue.pop_if(0.0) == events[0]
    assert not queue.relocate(2.0) and queue.peek_beat() == 2.0 and not flushed  # forward
    assert queue.relocate(0.5) and len(queue) == 0 and flushed  # back: 1.0 was skipped
    assert queue.restart() == (1, 0.5)
    assert queue.push_bar("m", 0, events, 4.0, epoch=0) == "stale"  # rendered before the jump
    assert queue.push_bar("m", 0, events, 4.0, epoch=1) == "ok" and queue.peek_beat() == 1.0
    assert queue.relocate(9.0)  # past the queued bars: flushed too
    small = EventQueue(capacity=3)
    assert small.push_bar("m", 0, events, 4.0, epoch=0) == "full" and len(small) == 0


def test_queue_tells_only_of_a_push_that_moves_the_head_earlier() -> None:
    queue = EventQueue()
    told: list[float] = []
    queue.on_earlier_head = lambda: told.append(queue.peek_beat())
    bar = lambda b, beats: [ScheduledEvent(x, NOTE_ON, 0, 60, 90, "m", i)  # noqa: E731
                            for i, x in enumerate(beats, start=10 * b)]
    assert queue.push_bar("m", 1, bar(1, [4.0, 5.0]), 8.0, epoch=0) == "ok"  # empty: inf -> 4
    assert queue.push_bar("m", 2, bar(2, [8.0]), 12.0, epoch=0) == "ok"  # after the head
    assert queue.push_bar("d", 0, bar(3, [4.0]), 4.0, epoch=0) == "ok"  # ties the head
    assert told == [4.0]
    assert queue.replace_bar("m", 1, bar(4, [4.5]), 4.0)  # 4.0 (part d) stays the head
    assert queue.push_bar("x", 0, bar(5, [0.5]), 4.0, epoch=0) == "ok"
    assert told == [4.0, 0.5]


# -- the worker -------------------------------------------------------------------------------


def test_worker_stays_lookahead_bars_ahead_as_the_clock_advances(drums: LoadedModel) -> None:
    rig = started(make_rig(drums, lookahead=2, parts=2))
    for k in range(25):  # 0 .. 6 s in quarter-second steps: bars 0 .. 3
        play(rig, until=k * 0.25 + 0.25, step=0.25)
        playing = rig.worker.bar_at(rig.clock.beat_at(rig.time.t - 1e-6))
        for part in rig.parts:
            assert rig.worker.next_bar(part.name) == playing + 3  # through playing + 2
            assert rig.queue.horizon(part.name) == (playing + 3) * 4.0
    assert rig.worker.fill_until(rig.clock.beat_at(rig.time.t - 1e-6)) == 0  # nothing more due


def test_worker_thread_follows_the_clock_and_stops_cleanly(drums: LoadedModel) -> None:
    ft = FakeTime()
    clock = InternalClock(BPM, now=ft.now)
    queue = EventQueue()
    part = Part("drums", drums, PartControls("jazz", 12.0))
    worker = GenerationWorker([part], clock, queue, now=ft.now, poll_s=0.002)

    def wait_for(cond: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10.0
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.002)
        assert cond() and worker.error is None

    clock.start(t=0.0)
    worker.start()
    try:
        wait_for(lambda: worker.next_bar("drums") == 2)
        ft.t = 2.1  # into bar 1
        part.set(density=30.0)  # from another thread than the worker's, mid-flight
        worker.wake()
        wait_for(lambda: worker.next_bar("drums") == 3)
        assert part.rendered[-1].controls.density == 30.0
    finally:
        worker.stop()
    assert not worker.running and worker.error is None
    assert "musegen-generation" not in {t.name for t in threading.enumerate()}


def test_run_forever_sleeps_spins_and_sends_on_time(drums: LoadedModel) -> None:
    rig = started(make_rig(drums, humanize=0.0))
    stop_flag = threading.Event()

    def tick(t: float) -> None:  # each real sleep of the dispatcher: a worker pass, and cues
        rig.worker.step()
        if t >= 3.0 and rig.clock.playing:
            rig.clock.stop(t=t)
        if t >= 4.0:
            stop_flag.set()

    rig.time.on_sleep = tick
    rig.dispatcher.run_forever(rig.out, stop_flag)
    sent = rig.out.sent
    played = [s for s in sent if s.at < 3.0]
    assert played and {math.floor(s.event.beat / 4) for s in played} == {0, 1}
    for s in played:
        assert abs(s.at - s.event.beat * SPB) < EPS  # due exactly at the clock's time
        assert 0.0 <= s.t - s.at < 2e-5  # sent within one spin quantum, never early
    assert rig.dispatcher.max_late_s < 2e-5
    assert [s.t for s in sent] == sorted(s.t for s in sent)
    assert sounding_after(sent) == {} and rig.dispatcher.sounding == []


@contextmanager
def dispatching(clock: InternalClock | MidiClockFollower,
                queue: EventQueue | None = None) -> Iterator[Recorder]:
    """A downbeat queued, `run_forever` on its own thread with 2 s nap slices; -> its output."""
    queue = EventQueue() if queue is None else queue
    downbeat = ScheduledEvent(0.0, NOTE_ON, 9, 36, 100, "drums", note_id=1)
    assert queue.push_bar("drums", 0, [downbeat], 4.0, queue.restart()[0]) == "ok"
    dispatcher = Dispatcher(clock, queue, max_sleep_s=2.0)
    out = Recorder(time.monotonic)
    stop_flag = threading.Event()
    thread = threading.Thread(target=dispatcher.run_forever, args=(out, stop_flag))
    thread.start()
    try:
        yield out
    finally:
        stop_flag.set()
        if clock.playing and isinstance(clock, InternalClock):
            clock.stop()
        thread.join(5.0)
    assert not thread.is_alive()


def wait_for_ons(out: Recorder, since: float) -> list[ScheduledEvent]:
    while not out.ons() and time.monotonic() < since + 1.0:
        time.sleep(0.001)
    return out.ons()


def test_a_start_wakes_the_dispatcher_at_once_in_real_time() -> None:
    """Stopped, the dispatcher naps in slices; a Start must cut the nap short, since the first
    step's notes are due on the very moment of the Start. With a 2 s slice, waiting it out
    would send the downbeat up to 2 s late."""
    clock = InternalClock(BPM)
    with dispatching(clock) as out:
        time.sleep(0.3)  # napping now: nothing is due while stopped
        assert out.sent == []
        started = time.monotonic()
        clock.start(started)
        assert [e.beat for e in wait_for_ons(out, started)] == [0.0]
        assert out.sent[0].t - started < 0.5  # well inside the 2 s slice


def test_the_first_tick_after_a_midi_start_sends_the_downbeat_at_once() -> None:
    """After a MIDI Start the downbeat has no time until the run's first tick arrives, and a
    tick is not a transport event: the dispatcher must not wait out a nap slice for it."""
    follower = MidiClockFollower()
    with dispatching(follower) as out:
        follower.feed(START, time.monotonic())
        time.sleep(0.3)  # started, no tick yet: nothing has a time
        assert out.sent == []
        first_tick = time.monotonic()
        follower.feed(TICK, first_tick)
        assert [e.beat for e in wait_for_ons(out, first_tick)] == [0.0]
        assert out.sent[0].t - first_tick < 0.1  # a 2 s slice waited out would be >= 1.7 s


def test_on_a_stepping_clock_the_spin_naps_and_sends_at_the_first_step_past_due(
        drums: LoadedModel) -> None:
    """JACK's frame clock (bridges/midi/jack_time.py) only moves at a cycle start: the
    dispatcher's spin may nap `spin_sleep_s` between looks, and each moment goes out at the
    first step at or after its due time, never before it."""
    step = 64 / 48000  # a JACK period
    ft = FakeTime()
    stepping = lambda: math.floor(ft.t / step) * step  # noqa: E731
    clock = InternalClock(BPM, now=stepping)
    queue = EventQueue()
    part = Part("drums", drums, PartControls("rock", 16.0, humanize=0.0), seed=3)
    worker = GenerationWorker([part], clock, queue, now=stepping)
    dispatcher = Dispatcher(clock, queue, now=stepping, sleep=ft.sleep, waiter=ft,
                            spin_sleep_s=1e-4)
    out = Recorder(stepping)
    naps: list[float] = []
    stop_flag = threading.Event()

    def cue(t: float) -> None:
        naps.append(round(t - cue.last, 9))  # type: ignore[attr-defined]
        cue.last = t  # type: ignore[attr-defined]
        worker.step()
        if t >= 2.0:
            stop_flag.set()

    cue.last = 0.0  # type: ignore[attr-defined]
    worker.fill_until(0.0)
    clock.start(t=0.0)
    ft.on_sleep = cue
    dispatcher.run_forever(out, stop_flag)
    played = [s for s in out.sent if s.event.kind == NOTE_ON]
    assert len(played) >= 8
    for s in played:
        assert s.at <= s.t < s.at + step + 1e-9  # at the first step at or past due
        assert abs(s.t / step - round(s.t / step)) < 1e-6  # a step of the clock
    assert 1e-4 in naps  # the spin napped instead of spinning


def test_a_far_moment_is_slept_towards_in_a_few_naps_and_sent_on_time() -> None:
    """A moment 2 s away: naps of a quarter of the time left (about 20 wakes), not 400
    slices of 5 ms, and the note still goes out within a spin quantum of its time."""
    ft = FakeTime()
    clock = InternalClock(BPM, now=ft.now)
    queue = EventQueue()
    note = ScheduledEvent(4.0, NOTE_ON, 9, 36, 100, "drums", note_id=1)
    assert queue.push_bar("drums", 1, [note], 8.0, queue.restart()[0]) == "ok"
    dispatcher = Dispatcher(clock, queue, now=ft.now, sleep=ft.sleep, waiter=ft)
    out = Recorder(ft.now)
    naps: list[float] = []
    stop_flag = threading.Event()

    def cue(t: float) -> None:
        naps.append(t)
        if out.sent:
            stop_flag.set()

    ft.on_sleep = cue
    clock.start(t=0.0)
    dispatcher.run_forever(out, stop_flag)
    assert [s.event for s in out.sent[:1]] == [note]
    assert 0.0 <= out.sent[0].t - 4.0 * SPB < 2e-5
    assert len(naps) < 30, len(naps)


def test_a_push_before_the_head_wakes_a_long_nap_in_real_time() -> None:
    """Napping towards a note 4 s away (naps of up to 1 s), the dispatcher must see a note
    pushed for 0.1 s from now (a regenerated bar, a step edit) and send it on time."""
    clock = InternalClock(BPM)
    queue = EventQueue()
    with dispatching(clock, queue) as out:
        t0 = time.monotonic()
        clock.start(t0)
        wait_for_ons(out, t0)
        far = ScheduledEvent(8.0, NOTE_ON, 9, 38, 100, "drums", note_id=2)
        assert queue.push_bar("drums", 2, [far], 12.0, queue.restart()[0]) == "ok"
        time.sleep(0.2)  # asleep now, planning to wake no earlier than ~0.9 s from here
        beat = clock.beat_at(time.monotonic() + 0.1)
        soon = ScheduledEvent(beat, NOTE_ON, 0, 60, 90, "melody", note_id=3)
        assert queue.push_bar("melody", 0, [soon], 4.0, queue.restart()[0]) == "ok"
        time.sleep(0.4)
        sent = [s for s in out.sent if s.event == soon]
        assert sent and abs(sent[0].t - clock.time_at(beat)) < 0.05


def test_tick_anchored_dispatch_sends_as_each_tick_arrives_not_on_the_line() -> None:
    """A clock whose ticks land off its line (a jittery master): anchored, an event goes out
    when its tick arrives, plus the fraction of a tick it sits past it; on the line, where the
    fit says. A tick not in yet holds its event back at most half a tick past the line."""
    clock = MidiClockFollower(BPM)
    anchored = Dispatcher(clock, EventQueue(), sync="tick")
    line = Dispatcher(clock, EventQueue())
    tick_s = SPB / 24
    rng = random.Random(7)
    clock.feed(START, 0.0)
    arrivals = [k * tick_s + rng.uniform(-0.002, 0.002) for k in range(97)]  # ticks 0..96
    for t in arrivals:
        clock.feed(TICK, t)
    period = clock.time_at(1.0) - clock.time_at(1.0 - 1 / 24)  # the fitted tick period
    # beat 3.75 is tick 90 (a past tick: from the newest arrival back); 4 - 1/48 is half a
    # tick past tick 95; 4.0 is tick 96 itself
    for beat, ticks in ((3.75, 90.0), (4.0 - 1 / 48, 95.5), (4.0, 96.0)):
        expected = arrivals[96] + (ticks - 96) * period
        assert anchored.due_time(beat) == pytest.approx(expected, abs=1e-9)
        assert line.due_time(beat) == pytest.approx(clock.time_at(beat), abs=1e-9)
    assert abs(anchored.due_time(4.0) - line.due_time(4.0)) > 1e-4  # they differ here
    # tick 102 (beat 4.25) is not in: wait for it, but no more than half a tick past the line
    assert anchored.due_time(4.25) == pytest.approx(clock.time_at(4.25) + 0.5 * period)
    for k in range(97, 103):
        clock.feed(TICK, k * tick_s + 0.0013)  # ticks 1.3 ms late: the sends follow them
    assert anchored.due_time(4.25) == pytest.approx(102 * tick_s + 0.0013, abs=1e-9)


def test_auto_sync_sends_on_the_ticks_of_a_wandering_clock_and_on_the_line_of_a_steady_one(
) -> None:
    """`sync="auto"`: on the tick while the follower cannot yet tell (the first beats) and
    for a clock whose phase wanders; on the line once the ticks show they keep to one."""
    tick_s = SPB / 24
    rng = random.Random(3)
    clocks = {"steady": MidiClockFollower(BPM), "walk": MidiClockFollower(BPM)}
    auto = {name: Dispatcher(clock, EventQueue(), sync="auto") for name, clock in clocks.items()}
    tick = {name: Dispatcher(clock, EventQueue(), sync="tick") for name, clock in clocks.items()}
    walk_t = 0.0
    for clock in clocks.values():
        clock.feed(START, 0.0)
    for k in range(24 * 16 + 1):  # 16 beats of ticks: tick 384 is beat 16
        clocks["steady"].feed(TICK, k * tick_s + rng.uniform(-0.001, 0.001))
        clocks["walk"].feed(TICK, walk_t)
        walk_t += tick_s * (1.0 + rng.uniform(-0.05, 0.05))
        if k == 48:  # two beats in: too soon to tell, so both follow their ticks
            assert auto["steady"].anchored and auto["walk"].anchored
    assert not auto["steady"].anchored and auto["walk"].anchored
    assert auto["walk"].due_time(16.0) == pytest.approx(tick["walk"].due_time(16.0), abs=1e-9)
    steady = clocks["steady"]
    assert auto["steady"].due_time(16.0) == pytest.approx(steady.time_at(16.0), abs=1e-9)
    assert auto["steady"].due_time(16.0) != tick["steady"].due_time(16.0)
    with pytest.raises(ValueError, match="sync must be one of"):
        Dispatcher(steady, EventQueue(), sync="beat")  # type: ignore[arg-type]


class ParkedTime(FakeTime):
    """FakeTime whose sleep blocks until `release` is set: the dispatch thread stays asleep
    while the test feeds ticks from its own thread."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = threading.Event()
        self.release = threading.Event()

    def sleep(self, dt: float) -> None:
        self.parked.set()
        self.release.wait(5.0)
        super().sleep(dt)


@dataclass
class ThreadRecorder(Recorder):
    """A Recorder that also notes which thread sent each event."""

    threads: list[int] = field(default_factory=list)

    def send(self, events: Sequence[ScheduledEvent], at: float) -> None:
        self.threads.extend(threading.get_ident() for _ in events)
        super().send(events, at)


@pytest.mark.parametrize("sync", ["tick", "line"])
def test_an_anchored_dispatcher_sends_a_ticks_notes_from_the_thread_that_feeds_the_tick(
        sync: Sync) -> None:
    """Waking the dispatch thread costs a hand-off that on JACK can carry a note into the next
    period: a note due on its tick's arrival goes out inside the input thread's `feed`, while
    the dispatch thread sleeps. On the line nothing is sent from there: the line sends ahead,
    from the dispatch thread."""
    tick_s = SPB / 24
    follower = MidiClockFollower(BPM)
    queue = EventQueue()
    note = ScheduledEvent(0.25, NOTE_ON, 9, 36, 100, "drums", note_id=1)  # tick 6
    later = ScheduledEvent(0.5, NOTE_ON, 9, 38, 100, "drums", note_id=2)  # tick 12
    assert queue.push_bar("drums", 0, [note, later], 4.0, queue.restart()[0]) == "ok"
    pt = ParkedTime()
    dispatcher = Dispatcher(follower, queue, now=pt.now, sleep=pt.sleep, waiter=pt, sync=sync)
    out = ThreadRecorder(pt.now)
    stop_flag = threading.Event()
    follower.feed(START, 0.0)
    thread = threading.Thread(target=dispatcher.run_forever, args=(out, stop_flag))
    thread.start()
    try:
        assert pt.parked.wait(5.0)
        for k in range(7):
            pt.t = k * tick_s
            follower.feed(TICK, pt.t)
        if sync == "tick":  # sent as tick 6 came in, by the feeding thread
            assert out.ons() == [note] and out.threads == [threading.get_ident()]
            assert out.sent[0].t == pytest.approx(6 * tick_s)
        else:
            assert out.sent == []
            pt.release.set()  # the dispatch thread sends it once it wakes
            deadline = time.monotonic() + 5.0
            while not out.sent and time.monotonic() < deadline:
                time.sleep(0.001)
            assert out.ons()[:1] == [note] and out.threads[:1] == [thread.ident]
    finally:
        stop_flag.set()
        pt.release.set()
        thread.join(5.0)
    assert not thread.is_alive()
    sent = len(out.sent)  # the last is the all-notes-off: nothing may follow it
    for k in range(7, 13):
        follower.feed(TICK, k * tick_s)
    assert len(out.sent) == sent
    if sync == "tick":  # its tick came only after the end
        assert later not in out.ons()


def test_a_tick_cuts_an_anchored_dispatchers_nap_short() -> None:
    clock = MidiClockFollower(BPM)
    ft = FakeTime()
    dispatcher = Dispatcher(clock, EventQueue(), sync="tick", now=ft.now, sleep=ft.sleep,
                            waiter=ft)
    assert not ft.woken()
    clock.feed(TICK, 0.0)
    assert ft.woken()
    dispatcher.close()  # and lets go of the clock
    assert clock.on_tick is None
    assert Dispatcher(clock, EventQueue()).clock.on_tick is None  # only anchored ones wake
    Dispatcher(clock, EventQueue(), sync="auto")
    assert clock.on_tick is not None  # auto may anchor: ticks wake it too


def test_the_real_time_waiter_naps_until_woken_and_remembers_a_wake() -> None:
    waiter = EventWaiter()
    assert not waiter.woken()
    waiter.wake()
    assert waiter.woken() and not waiter.woken()  # taken once
    threading.Timer(0.05, waiter.wake).start()
    t0 = time.monotonic()
    waiter.wait(5.0)  # cut short by the wake
    assert time.monotonic() - t0 < 2.0
    assert not waiter.woken()  # the nap took it
