"""A daemon thread that calls one function every `interval_s` until stopped.

The MIDI bridge's small background loops (the input pump, the input drain, the port watcher)
are all this: `work()` runs, and if it did something (a truthy result) it runs again at once,
otherwise the thread waits `interval_s` (or what `wait_s()` says, if given), waking early on
`stop()`. A wait of at most `SHORT_WAIT_S` is a plain `time.sleep` instead: an Event's
timed wait costs about 50 us of CPU a wake here against about 30 for a sleep, which is 2 %
of a core at the input pump's 1000 wakes a second; `stop()` then takes one such wait longer.

A loop that must wake on time (the input pump: a clock tick read late costs a tick-synced
note a JACK period) may ask for real-time scheduling, `rt_priority` > 0: SCHED_FIFO at that
priority, for its thread alone. Where the system refuses (no CAP_SYS_NICE, no rtprio limit,
not Linux), the loop runs as before and `realtime` says so.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

SHORT_WAIT_S = 0.01
PR_SET_TIMERSLACK = 29  # linux/prctl.h


def set_timer_slack(ns: int) -> bool:
    """Let Linux wake the calling thread's timed sleeps at most `ns` late on purpose.

    By default it may add up to 50 us to every sleep to batch wake-ups: for a thread that
    sleeps 0.25 ms between reads, a fifth of the wait. False where there is no such call
    (not Linux), which only costs that slack."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0)) == 0


def set_realtime(priority: int) -> bool:
    """Run the calling thread under SCHED_FIFO at `priority` (Linux applies it to the thread,
    not the process). False, leaving it as it was, where that is not allowed."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, ValueError) as exc:
        logger.info("real-time priority %d refused (%s): thread %r keeps normal scheduling",
                    priority, exc, threading.current_thread().name)
        return False
    return True


class Ticker:
    def __init__(self, work: Callable[[], object], interval_s: float, name: str, *,
                 wait_s: Callable[[], float] | None = None,
                 timer_slack_ns: int | None = None, rt_priority: int = 0) -> None:
        self.work = work
        self.timer_slack_ns = timer_slack_ns  # None: the system's default
        self.rt_priority = rt_priority  # 0: normal scheduling
        self.realtime = False  # whether the thread got SCHED_FIFO
        self.interval_s = interval_s
        self.wait_s = wait_s or (lambda: self.interval_s)
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        if self.timer_slack_ns is not None:
            set_timer_slack(self.timer_slack_ns)
        if self.rt_priority > 0:
            self.realtime = set_realtime(self.rt_priority)
        while not self._stop.is_set():
            if not self.work():
                wait = self.wait_s()
                if wait <= SHORT_WAIT_S:
                    time.sleep(wait)
                else:
                    self._stop.wait(wait)
