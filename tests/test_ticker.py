"""The bridges' background loop (bridges/midi/ticker.py): real threads, real scheduling."""

from __future__ import annotations

import os

import pytest

from bridges.midi.ticker import Ticker
from tests.jack_rig import wait_until
from tests.scheduling import allowed_fifo


def _scheduler_seen_by(ticker_kwargs: dict[str, int]) -> tuple[bool, int]:
    """Run a Ticker until its work has seen its own thread's scheduling policy."""
    seen: list[int] = []
    ticker = Ticker(lambda: seen.append(os.sched_getscheduler(0)), 0.001, "sched-test",
                    **ticker_kwargs)
    ticker.start()
    try:
        assert wait_until(lambda: bool(seen), 5.0)
    finally:
        ticker.stop()
    return ticker.realtime, seen[0]


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux scheduling calls")
def test_a_ticker_asks_for_real_time_scheduling_for_its_own_thread_only() -> None:
    """rt_priority > 0: the loop's thread runs under SCHED_FIFO where the system allows it
    (`realtime` says whether it did), and this thread keeps its own policy. A priority the
    system refuses leaves the loop running under normal scheduling."""
    before = os.sched_getscheduler(0)
    assert _scheduler_seen_by({}) == (False, os.SCHED_OTHER)
    realtime, policy = _scheduler_seen_by({"rt_priority": 10})
    assert policy == (os.SCHED_FIFO if realtime else os.SCHED_OTHER)
    assert realtime == allowed_fifo()
    assert _scheduler_seen_by({"rt_priority": 1000}) == (False, os.SCHED_OTHER)  # EINVAL
    assert os.sched_getscheduler(0) == before
