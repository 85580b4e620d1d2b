"""The MIDI clock master (musegen.clock.clock_master) on simulated time: what it sends for
each transport move of the session's clock, when each tick is due, and that musegen's own
MIDI clock follower, fed what the master sends at those times, is where the master is."""

from __future__ import annotations

import pytest

from musegen.clock import InternalClock, MidiClockFollower
from musegen.clock.clock_master import ClockMaster, Message
from musegen.music.midi_spec import CLOCK, CONTINUE, SONG_POSITION, START, STOP


class Rig:
    """An internal clock on a time the test sets, its master, and what the master sent."""

    def __init__(self, bpm: float = 120.0) -> None:
        self.t = 0.0
        self.clock = InternalClock(bpm, now=lambda: self.t)
        self.master = ClockMaster(self.clock)
        self.sent: list[tuple[float, Message]] = []
        self.clock.add_listener(
            lambda e: self.sent.extend((self.t, m) for m in self.master.transport(e)))

    def run_until(self, t: float) -> None:
        """Send every tick due before `t`, each at its due time."""
        while (due := self.master.next_tick_time()) < t:
            self.t = due
            self.sent.append((due, self.master.tick()))
        self.t = t

    def ticks(self) -> list[float]:
        return [t for t, m in self.sent if m == (CLOCK,)]


def test_start_then_a_tick_on_every_24th_of_a_beat_following_a_tempo_change() -> None:
    rig = Rig(120.0)
    rig.clock.start()
    rig.run_until(1.0)  # two beats at 120 BPM
    assert rig.sent[0] == (0.0, (START,))
    assert rig.ticks() == pytest.approx([n * 0.5 / 24 for n in range(48)])
    rig.clock.set_tempo(60.0)  # at t = 1.0, beat 2.0: ticks spread out from the next one
    rig.run_until(2.0)
    assert rig.ticks()[48:] == pytest.approx([1.0 + n / 24 for n in range(24)])
    assert rig.master.position == 72
    assert not any(m in ((STOP,), (CONTINUE,)) for _, m in rig.sent)


def test_stop_and_continue_in_place_need_no_song_position() -> None:
    rig = Rig()
    rig.clock.start()
    rig.run_until(0.26)  # 13 ticks sent (0 .. 12), the clock between ticks 12 and 13
    rig.clock.stop()
    assert rig.master.next_tick_time() == float("inf")
    rig.t = 5.0
    rig.clock.continue_()
    rig.run_until(5.05)
    kinds = [m for _, m in rig.sent if m != (CLOCK,)]
    assert kinds == [(START,), (STOP,), (CONTINUE,)]
    # the follower counted 13 ticks: tick 13 is beat 13/24, due when the clock gets there
    assert rig.ticks()[13] == pytest.approx(5.0 + (13 / 24 - rig.clock.beat_at(5.0)) * 0.5)


def test_a_locate_sends_a_song_position_in_16ths_rounded_up() -> None:
    rig = Rig()
    rig.clock.start()
    rig.run_until(0.5)
    rig.clock.locate(2.1)  # while playing: stop, pointer, continue
    assert [m for _, m in rig.sent if m != (CLOCK,)][1:] == [
        (STOP,), (SONG_POSITION, 9, 0), (CONTINUE,)]  # 2.1 beats -> the 9th 16th, 2.25
    assert rig.master.position == 54
    assert rig.master.next_tick_time() == pytest.approx(rig.clock.time_at(2.25))
    rig.clock.stop()
    rig.clock.locate(300.0)  # stopped: the pointer alone; 1200 16ths = 9 * 128 + 48
    assert rig.sent[-1][1] == (SONG_POSITION, 1200 & 0x7F, 1200 >> 7)
    rig.clock.continue_()
    assert rig.sent[-1][1] == (CONTINUE,)  # the pointer already put the follower there


def test_musegens_own_follower_fed_the_master_is_on_the_masters_beat() -> None:
    """The round trip a second musegen on `--clock midi` makes, without the port."""
    rig = Rig(100.0)
    follower = MidiClockFollower(120.0)
    rig.clock.start()
    rig.run_until(3.0)
    rig.clock.set_tempo(140.0)
    rig.run_until(6.0)
    rig.clock.stop()
    rig.clock.locate(16.0)
    rig.t = 7.0
    rig.clock.continue_()
    rig.run_until(9.0)
    for t, message in rig.sent:
        follower.feed(message[0], t, bytes(message[1:]))
    assert follower.playing
    assert follower.beat_at(9.0) == pytest.approx(rig.clock.beat_at(9.0), abs=0.01)
    assert follower.tempo_bpm == pytest.approx(140.0, rel=1e-3)
