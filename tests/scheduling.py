"""What the machine's scheduler allows and what a process's threads run under (Linux)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

SCHED_FIFO = 1
POLICY_FIELD = 41  # of /proc/PID/task/TID/stat, counted from 1 (proc(5))


def allowed_fifo() -> bool:
    """Whether this machine lets a thread take SCHED_FIFO, asked from a thread of its own."""
    answer: list[bool] = []

    def ask() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join()
    return answer[0]


def fifo_threads(pid: int) -> int:
    """How many of process `pid`'s threads run under SCHED_FIFO."""
    count = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)"
        except OSError:  # the thread ended meanwhile
            continue
        count += int(fields[POLICY_FIELD - 3]) == SCHED_FIFO
    return count
