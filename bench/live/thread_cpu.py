"""CPU time per Python thread, so a benchmark can say which loop costs what.

Read from each thread's own CPU clock (`pthread_getcpuclockid`). Threads that are not Python
threads (libjack's process threads inside python-rtmidi, for one) are not listed: they are
what is left of the process's total after the listed ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds used so far by each live Python thread, by name (same names add up)."""
    used: dict[str, float] = {}
    for thread in threading.enumerate():
        ident = thread.ident
        if ident is None or not thread.is_alive():
            continue
        try:
            seconds = time.clock_gettime(time.pthread_getcpuclockid(ident))
        except (OSError, ProcessLookupError):  # it ended between the check and the read
            continue
        used[thread.name] = used.get(thread.name, 0.0) + seconds
    return used


def cpu_pct_by_thread(before: dict[str, float], after: dict[str, float],
                      wall_s: float) -> dict[str, float]:
    """% of one core per thread between two `thread_cpu_s()` readings `wall_s` apart (a
    thread started in between counts from zero; one that ended in between is missing)."""
    return {name: 100.0 * (after[name] - before.get(name, 0.0)) / wall_s
            for name in sorted(after)}


@dataclass(frozen=True)
class CpuUse:
    process_pct: float  # the whole process, % of one core
    threads: dict[str, float]  # per Python thread, by name, % of one core

    def without(self, names: Sequence[str]) -> float:
        """The process's % less the named threads' (a bench's own, say)."""
        return self.process_pct - sum(self.threads.get(n, 0.0) for n in names)


class CpuWindow:
    """Process and per-thread CPU from construction to `end()`."""

    def __init__(self) -> None:
        self._process0 = time.process_time()
        self._threads0 = thread_cpu_s()
        self._wall0 = time.monotonic()

    def end(self) -> CpuUse:
        wall = time.monotonic() - self._wall0
        return CpuUse(100.0 * (time.process_time() - self._process0) / wall,
                      cpu_pct_by_thread(self._threads0, thread_cpu_s(), wall))
