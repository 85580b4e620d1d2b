"""Clocks driven by synthetic, seeded timestamp streams: no ports, no sleeping, no wall clock."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musegen.clock import (
    Clock,
    ClockLost,
    ClockRegained,
    Continue,
    InternalClock,
    MidiClockFollower,
    SongPosition,
    Start,
    Stop,
    TempoEvent,
    TransportEvent,
)
from musegen.music.timing import PPQN

TICK, START, CONTINUE, STOP, SPP = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
T0 = 1000.0  # a monotonic clock is never near zero; keep the arithmetic honest
SEEDS = (1, 2, 3, 4, 5)


def period(bpm: float) -> float:
    return 60.0 / (bpm * 24)


def tick_times(segments: list[tuple[int, float]], t0: float = T0) -> list[float]:
    """Ideal tick times: `n` ticks at `bpm` per segment, tick 0 at t0."""
    times = [t0]
    for n, bpm in segments:
        last = times[-1]  # each segment chains on the previous one's last tick
        times.extend([last + period(bpm) * (i + 1) for i in range(n)])
    return times


def started(**kwargs: object) -> MidiClockFollower:
    f = MidiClockFollower(**kwargs)  # type: ignore[arg-type]
    f.feed(START, T0 - 0.005)
    return f


def feed_ticks(
    f: MidiClockFollower, times: list[float], jitter: float = 0.0, seed: int = 0
) -> None:
    rng = random.Random(seed)
    for t in times:
        f.feed(TICK, t + rng.uniform(-jitter, jitter))


def ms_off(f: Clock, t: float, ideal_beat: float) -> float:
    """Position error at `t` expressed as time, in ms."""
    return abs(f.beat_at(t) - ideal_beat) * 60_000.0 / f.tempo_bpm


# -- MidiClockFollower: tempo and phase ---------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_steady_120_with_jitter(seed: int) -> None:
    f = started()
    times = tick_times([(300, 120.0)])
    rng = random.Random(seed)
    worst = 0.0
    for i, t in enumerate(times):
        if i == 48:  # two beats in
            assert f.tempo_bpm == pytest.approx(120.0, rel=0.005)
        if i >= 48:  # between the last tick and this one, before this one arrives
            for frac in (0.25, 0.5, 0.75, 0.99):
                tq = times[i - 1] + frac * period(120.0)
                worst = max(worst, ms_off(f, tq, (i - 1 + frac) / 24))
        f.feed(TICK, t + rng.uniform(-0.0015, 0.0015))
    assert worst < 1.0
    assert f.tempo_changes == 0  # jitter alone never looks like a tempo change


@pytest.mark.parametrize("seed", SEEDS)
def test_step_120_to_140_followed_within_a_beat(seed: int) -> None:
    f = started()
    times = tick_times([(96, 120.0), (48, 140.0)])
    feed_ticks(f, times[: 97 + 24], jitter=0.0015, seed=seed)  # 24 ticks after the change
    assert f.tempo_bpm == pytest.approx(140.0, rel=0.01)
    assert f.tempo_changes >= 1
    feed_ticks(f, times[97 + 24 :], jitter=0.0015, seed=seed + 100)
    assert f.tempo_bpm == pytest.approx(140.0, rel=0.005)
    assert ms_off(f, times[-1] + period(140.0) / 2, (len(times) - 0.5) / 24) < 1.5


def wandering_ticks(n: int, bpm: float, seed: int, spread: float = 0.1) -> list[float]:
    """What `jack_midi_clock -J 10` sends: each interval off by up to +-10 %, so the phase is
    a random walk (no steady line to fit)."""
    rng = random.Random(seed)
    times = [T0]
    for _ in range(n - 1):
        times.append(times[-1] + period(bpm) * (1.0 + rng.uniform(-spread, spread)))
    return times


def heard_beat(times: list[float], k: int, half: int = 24) -> float:
    """Where tick k's beat is heard: the mean of the ticks within a beat either side (the
    least-squares line's value at its centre; what the latency bench measures against)."""
    return math.fsum(times[k - half : k + half + 1]) / (2 * half + 1)


def p99(values: list[float]) -> float:
    return sorted(values)[int(0.99 * len(values))]


def rms(values: list[float]) -> float:
    return math.sqrt(math.fsum(v * v for v in values) / len(values))


JACK_PERIOD_S = 64 / 48000  # python-rtmidi stamps JACK input at period starts


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("bpm", "stamp_s"), [(120.0, 0.0), (174.0, JACK_PERIOD_S)])
def test_wandering_clock_is_predicted_better_than_its_own_ticks(
    seed: int, bpm: float, stamp_s: float
) -> None:
    """Before each tick arrives, the follower's time for it is nearer where its beat is
    heard than the tick itself will be; the walk is not mistaken for tempo changes. Also
    with the ticks read on a 1.33 ms grid, as on JACK: white jitter on top of the walk."""
    times = wandering_ticks(2400, bpm, seed)
    f = started()
    predicted, arrived = [], []
    for k, t in enumerate(times[:-24]):
        if k >= 200:
            heard = heard_beat(times, k)
            predicted.append(abs(f.time_at(k / 24) - heard))
            arrived.append(abs(t - heard))
        f.feed(TICK, round(t / stamp_s) * stamp_s if stamp_s else t)
    assert f.tempo_changes <= 10  # the line fit alone took 350 to 530 in such runs
    # in theory 0.71 (the ticks still to come are all that is unknown); 0.74 to 0.85 over
    # ten seeds, the period being estimated (and the same read on JACK's grid at 174 BPM)
    assert rms(predicted) < 0.9 * rms(arrived)
    assert p99(predicted) < p99(arrived)
    mean_interval = (times[-1] - times[-97]) / 96
    assert f.tempo_bpm == pytest.approx(60.0 / (24 * mean_interval), rel=0.02)


@pytest.mark.parametrize("seed", SEEDS)
def test_step_120_to_140_on_a_wandering_clock_is_still_followed(seed: int) -> None:
    """The walk must not hide a real change: a 120 -> 140 step on a -J 10-like clock is
    detected within a beat, and the tempo is then as near 140 as one beat of such ticks
    allows (their mean interval is itself 1.2 % uncertain)."""
    rng = random.Random(seed)
    times = [T0]
    for k in range(288 + 96):
        bpm = 120.0 if k < 288 else 140.0
        times.append(times[-1] + period(bpm) * (1.0 + rng.uniform(-0.1, 0.1)))
    f = started()
    feed_ticks(f, times[: 289 + 24])
    assert f.tempo_changes >= 1
    assert f.tempo_bpm == pytest.approx(140.0, rel=0.035)
    feed_ticks(f, times[289 + 24 :])
    assert f.tempo_bpm == pytest.approx(140.0, rel=0.015)
    assert f.tempo_changes <= 3


@pytest.mark.parametrize("seed", SEEDS)
def test_walk_share_tells_a_wandering_clock_from_white_jitter(seed: int) -> None:
    from musegen.clock import TickLineFit

    walk, white = TickLineFit(period(120.0)), TickLineFit(period(120.0))
    rng = random.Random(seed)
    for k, t in enumerate(wandering_ticks(600, 120.0, seed)):
        walk.add(t)
        white.add(T0 + k * period(120.0) + rng.uniform(-0.0015, 0.0015))
    assert walk.walk.share > 0.7
    assert white.walk.share < 0.3
    assert white.line[1] == pytest.approx(white.t_fit, abs=0.3 * 0.0015)


def jack_stamped(times: list[float]) -> list[float]:
    """As the engine reads ticks on JACK: each at the start of the 64-frame period after
    the frame it came on (a fixed pattern at a steady tempo, not independent noise)."""
    return [math.ceil(round(t * 48000) / 64) * JACK_PERIOD_S for t in times]


def steady_from(f: MidiClockFollower, times: list[float]) -> list[bool]:
    """`steady_phase` after each tick."""
    out = []
    for t in times:
        f.feed(TICK, t)
        out.append(f.steady_phase)
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("bpm", [120.0, 174.0])
def test_steady_phase_tells_a_wandering_clock_from_jitter_around_a_line(
        seed: int, bpm: float) -> None:
    """A walk (-J 10) is never called steady; white jitter of +-2 ms and a steady clock read
    on JACK's periods are, from at most nine beats in, and stay so. In the first four
    beats no clock is called steady: too few ticks to tell."""
    rng = random.Random(seed)
    walk = jack_stamped(wandering_ticks(2000, bpm, seed, spread=0.05))
    white = jack_stamped([T0 + k * period(bpm) + rng.uniform(-0.002, 0.002)
                          for k in range(2000)])
    steady = jack_stamped([T0 + k * period(bpm) for k in range(2000)])
    assert not any(steady_from(started(), walk))
    for times in (white, steady):
        states = steady_from(started(), times)
        assert not any(states[: 4 * 24]), states.index(True)
        assert all(states[9 * 24 :]), states.index(False, 9 * 24)
    assert InternalClock(bpm).steady_phase  # no ticks from outside: its own line


def test_beat_and_time_extrapolate_on_one_line() -> None:
    f = started()
    times = tick_times([(47, 100.0)])
    feed_ticks(f, times)
    assert f.tempo_bpm == pytest.approx(100.0, rel=1e-9)
    ahead = times[-1] + 0.3
    assert f.beat_at(ahead) == pytest.approx(47 / 24 + 0.3 * 100 / 60, abs=1e-9)
    assert f.time_at(3.0) == pytest.approx(T0 + 3.0 * 0.6, abs=1e-9)
    assert f.time_at(f.beat_at(ahead)) == pytest.approx(ahead, abs=1e-9)


def test_one_late_tick_does_not_bend_the_line() -> None:
    f = started()
    times = tick_times([(200, 120.0)])
    times[150] += 0.012  # a delayed packet
    feed_ticks(f, times)
    assert f.tempo_bpm == pytest.approx(120.0, rel=1e-6)
    assert ms_off(f, times[-1], 200 / 24) < 0.01


def test_tempo_change_events_announce_real_changes_only() -> None:
    f = started()
    feed_ticks(f, tick_times([(96, 120.0), (48, 140.0)]), jitter=0.001, seed=7)
    bpms = [e.bpm for e in f.drain_events() if isinstance(e, TempoEvent)]
    assert bpms and bpms[-1] == pytest.approx(140.0, rel=0.01)
    assert len(bpms) < 10


# -- MidiClockFollower: transport and positions -------------------------------------------


def test_start_stop_continue_positions_are_exact() -> None:
    f = MidiClockFollower()
    assert not f.playing and f.beat_at(T0) == 0.0
    times = tick_times([(200, 120.0)])
    f.feed(START, T0 - 0.01)
    assert f.playing and f.beat_at(T0 - 0.001) == 0.0  # waiting for the first tick
    assert f.time_at(1.0) == math.inf
    feed_ticks(f, times[:49])  # ticks 0..48
    assert f.beat_at(times[48]) == pytest.approx(2.0, abs=1e-9)
    f.feed(STOP, times[48] + 0.005)
    assert not f.playing
    assert f.beat_at(times[60]) == pytest.approx(49 / 24)  # the next tick's position
    assert f.time_at(3.0) == math.inf
    feed_ticks(f, times[49:60])  # ticks while stopped: tempo only
    assert f.beat_at(times[60]) == pytest.approx(49 / 24)
    f.feed(CONTINUE, times[60] - 0.005)
    feed_ticks(f, times[60:61])
    assert f.beat_at(times[60]) == pytest.approx(49 / 24, abs=1e-9)
    feed_ticks(f, times[61:85])
    assert f.beat_at(times[84]) == pytest.approx(49 / 24 + 1.0, abs=1e-9)
    kinds = [type(e) for e in f.drain_events() if not isinstance(e, TempoEvent)]
    assert kinds == [Start, Stop, Continue]


def test_song_position_then_continue_lands_on_the_pointer() -> None:
    f = MidiClockFollower()
    times = tick_times([(60, 120.0)])
    feed_ticks(f, times[:30])  # clock running while stopped
    f.feed(SPP, times[30] - 0.01, bytes([16, 0]))  # 16 sixteenths = 4 quarters
    assert f.beat_at(times[30]) == 4.0
    f.feed(CONTINUE, times[30] - 0.005)
    feed_ticks(f, times[30:31])
    assert f.beat_at(times[30]) == pytest.approx(4.0, abs=1e-9)
    assert f.position_ticks(times[30]) == 4 * PPQN
    feed_ticks(f, times[31:55])
    assert f.beat_at(times[54]) == pytest.approx(5.0, abs=1e-9)
    f.feed(STOP, times[55] - 0.001)
    feed_ticks(f, times[55:56])
    f.feed(SPP, times[55] + 0.001, bytes([0x00, 0x01]))  # 128 sixteenths = 32 quarters
    assert f.beat_at(times[56]) == 32.0
    f.feed(START, times[56] - 0.005)  # start ignores the pointer: from the top
    feed_ticks(f, times[56:57])
    assert f.beat_at(times[56]) == pytest.approx(0.0, abs=1e-9)
    events = [e for e in f.drain_events() if isinstance(e, SongPosition)]
    assert [e.beat for e in events] == [4.0, 32.0]


def test_garbage_is_counted_not_raised() -> None:
    f = MidiClockFollower()
    f.feed(0x90, T0, b"\x3c\x64")
    f.feed(0xFE, T0)  # active sensing: not ours
    f.feed(SPP, T0, b"\x10")
    f.feed(SPP, T0, b"\x80\x00")
    f.feed(TICK, math.nan)
    assert (f.ignored, f.malformed) == (2, 3)
    assert f.drain_events() == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-5, max_value=300),
            st.one_of(st.floats(), st.floats(min_value=0, max_value=1e4)),
            st.binary(max_size=4),
        ),
        max_size=60,
    ),
    st.sampled_from(["stop", "hold"]),
)
def test_random_bytes_never_raise(msgs: list[tuple[int, float, bytes]], on_loss: str) -> None:
    f = MidiClockFollower(on_loss=on_loss)  # type: ignore[arg-type]
    for status, t, data in msgs:
        f.feed(status, t, data)
        f.check(t)
        f.beat_at(t)
        f.time_at(1.0)
        f.position_ticks(t)
    assert f.ignored + f.malformed <= len(msgs)
    assert f.tempo_bpm > 0


# -- MidiClockFollower: clock loss --------------------------------------------------------


def test_clock_loss_stop_mode_emits_stop() -> None:
    f = started(on_loss="stop")
    times = tick_times([(48, 120.0)])
    feed_ticks(f, times)
    p = period(120.0)
    f.check(times[-1] + 3.5 * p)
    assert f.playing and f.locked
    f.check(times[-1] + 4.5 * p)
    assert not f.playing and not f.locked
    events = [e for e in f.drain_events() if not isinstance(e, TempoEvent)]
    assert [type(e) for e in events] == [Start, ClockLost, Stop]
    assert isinstance(events[-1], Stop) and events[-1].beat == pytest.approx(49 / 24)
    feed_ticks(f, [times[-1] + k * p for k in range(20, 30)])  # ticks back: still stopped
    assert not f.playing and f.locked


def test_overdue_at_is_when_check_declares_the_loss() -> None:
    f = started(on_loss="stop")
    assert f.overdue_at() == math.inf  # no period to time out against yet
    times = tick_times([(48, 120.0)])
    feed_ticks(f, times)
    due = f.overdue_at()
    assert due == pytest.approx(times[-1] + 4 * period(120.0), abs=1e-4)
    f.check(due - 1e-3)
    assert f.playing
    f.check(due + 1e-3)
    assert not f.playing and f.overdue_at() == math.inf  # lost: nothing more to wait for


@pytest.mark.parametrize("phase", [0.0, 0.45, -0.45])
def test_clock_loss_hold_mode_free_runs_and_relocks_forward(phase: float) -> None:
    f = started(on_loss="hold")
    p = period(120.0)
    times = tick_times([(95, 120.0)])  # ticks 0..95, the last at beat 3.958
    feed_ticks(f, times)
    f.check(times[-1] + 5 * p)
    assert f.playing and not f.locked
    assert f.beat_at(times[-1] + 10 * p) == pytest.approx((95 + 10) / 24, abs=1e-9)
    back = [times[-1] + (k + phase) * p for k in range(40, 100)]  # the master kept going
    seen, prev = [f.beat_at(times[-1])], times[-1]
    for t in back:  # positions in time order: quarter-ticks between ticks, then each tick
        seen.extend(f.beat_at(prev + (t - prev) * q / 4) for q in range(1, 4))
        seen.append(f.beat_at(t - 1e-6))  # just before the tick: the free-run's furthest
        f.feed(TICK, t)
        seen.append(f.beat_at(t))
        prev = t
    assert all(b2 >= b1 - 1e-12 for b1, b2 in itertools.pairwise(seen))
    assert f.locked
    assert f.beat_at(back[-1]) == pytest.approx((95 + 99) / 24, abs=1e-6)
    kinds = [type(e) for e in f.drain_events() if not isinstance(e, TempoEvent)]
    assert kinds == [Start, ClockLost, ClockRegained]


def test_gap_noticed_by_feed_without_check() -> None:
    f = started(on_loss="hold")
    p = period(120.0)
    times = tick_times([(48, 120.0)])
    feed_ticks(f, times)
    feed_ticks(f, [times[-1] + k * p for k in range(12, 40)])  # 11 ticks never arrived
    assert f.beat_at(times[-1] + 39 * p) == pytest.approx((48 + 39) / 24, abs=1e-6)
    kinds = {type(e) for e in f.drain_events()}
    assert {ClockLost, ClockRegained} <= kinds


def test_start_after_silent_stop_is_not_a_loss() -> None:
    f = MidiClockFollower(on_loss="stop")
    times = tick_times([(30, 120.0)])
    feed_ticks(f, times)  # then the master stops sending clock while stopped
    later = times[-1] + 60.0
    f.feed(START, later)
    f.check(later + 0.01)  # within the timeout after Start, before the first tick
    feed_ticks(f, [later + 0.02 + k * period(120.0) for k in range(24)])
    assert f.playing
    assert f.beat_at(later + 0.02 + 23 * period(120.0)) == pytest.approx(23 / 24, abs=1e-9)
    assert not any(isinstance(e, Stop | ClockLost) for e in f.drain_events())


# -- InternalClock -----------------------------------------------------------------------


class FakeTime:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_internal_clock_tempo_change_is_continuous() -> None:
    now = FakeTime()
    c = InternalClock(120.0, now=now)
    events: list[TransportEvent] = []
    c.add_listener(events.append)
    c.start()
    now.t += 10.0
    assert c.beat_at(now.t) == pytest.approx(20.0)
    before = c.beat_at(now.t)
    c.set_tempo(90.0)
    assert c.beat_at(now.t) == pytest.approx(before, abs=1e-12)
    assert c.beat_at(now.t + 2.0) == pytest.approx(before + 3.0)
    for t in (now.t - 3.0, now.t, now.t + 0.123, now.t + 1e4):
        assert c.time_at(c.beat_at(t)) == pytest.approx(t, abs=1e-9)
    assert c.position_ticks(now.t) == 20 * PPQN
    assert [type(e) for e in events] == [Start, TempoEvent]


def test_internal_clock_transport() -> None:
    now = FakeTime()
    c = InternalClock(120.0, now=now)
    assert isinstance(c, Clock) and not c.playing
    c.start()
    now.t += 1.5
    c.stop()
    assert c.beat_at(now.t + 100) == pytest.approx(3.0) and c.time_at(4.0) == math.inf
    now.t += 5.0
    c.continue_()
    assert c.time_at(4.0) == pytest.approx(now.t + 0.5)
    c.locate(16.0)
    assert c.beat_at(now.t) == 16.0 and c.beat_at(now.t + 0.5) == pytest.approx(17.0)
    kinds = [type(e) for e in c.drain_events()]
    assert kinds == [Start, Stop, Continue, SongPosition]
    with pytest.raises(ValueError):
        c.set_tempo(0.0)


# -- what the engine asks any clock ------------------------------------------------------


def test_the_clock_interface_tells_an_internal_clock_from_a_midi_follower() -> None:
    """The engine asks the interface, never the class: where time comes from, who owns the
    transport, what a MIDI input feeds, and whether (and when) the clock can go silent."""
    internal = InternalClock(120.0, now=FakeTime())
    assert internal.kind == "internal" and internal.owns_transport
    assert internal.tick_follower is None
    assert not internal.may_go_silent and internal.overdue_at() == math.inf
    internal.check(T0 + 1e6)  # a clock of its own never goes silent
    assert internal.drain_events() == []
    assert internal.steady_phase

    follower = MidiClockFollower(120.0, on_loss="hold")
    assert follower.kind == "midi" and not follower.owns_transport
    assert follower.tick_follower is follower
    assert follower.may_go_silent and follower.overdue_at() == math.inf  # not armed yet
    period = 60.0 / (120.0 * 24)
    for k in range(4):
        follower.feed(TICK, T0 + k * period)
    assert follower.overdue_at() == pytest.approx(T0 + 3 * period + 4 * period)
    follower.check(T0 + 20 * period)
    assert any(isinstance(e, ClockLost) for e in follower.drain_events())
