"""A MIDI clock master with white jitter: each tick off its ideal time on its own, never adding up.

The latency bench's other master. `jack_midi_clock -J` perturbs every tick *interval*, so its
phase wanders as a random walk and a follower can never know where the next beat is heard
(see musegen/clock/wander.py). A DAW sending clock through a USB interface is the other case
the engine must handle: a steady tempo whose ticks each land a millisecond or two early or
late (the driver's buffer, the OS scheduler) around a line that does not move. This client
sends that: tick k at t0 + k * period + U(-jitter, +jitter), through a python-rtmidi JACK
port, so every tick also lands at the start of a JACK period (up to one more period late,
1.33 ms on the bench's server). What the dump receives is what counts: the bench reports
the ticks' RMS spread around their line.

With `--server` the ticks are timed on that server's frame counter (bridges/midi/
jack_time.py), the rig's own time base: on CLOCK_MONOTONIC the dummy driver's frames run
0.14 % slow and jump by a millisecond or two on a late cycle, so a master timed there
wanders against the frames by those jumps, which is not white jitter.

Runs as its own process, like the reference client (so it shares no GIL with the engine):

    python -m bench.live.white_clock --client musegen-white --bpm 120 --jitter-ms 1 \
        [--server NAME]

with the port "<client>:clock out". Commands on stdin, one per line: "play" sends Start and
then ticks from beat 0, "stop" sends Stop; it exits when stdin closes or on SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bridges.midi.backends import open_output
from bridges.midi.jack_time import JackFrameClock
from musegen.music import midi_spec as spec

logger = logging.getLogger(__name__)

PORT_NAME = "clock out"
# Start goes out this long before tick 0, as a DAW sends it just ahead of the first clock
START_LEAD_S = 0.002
# the last stretch before a tick is polled in naps this short (the frame clock steps a
# period, 1.33 ms, at a time, so it cannot be slept on exactly)
POLL_S = 2.5e-4


class WhiteClock:
    """Plays the clock on its own thread between `play()` and `stop()`."""

    def __init__(self, out: Any, bpm: float, jitter_s: float, seed: int = 0,
                 now: Callable[[], float] = time.monotonic, send_ahead_s: float = 0.0) -> None:
        """`now`: the clock ticks are timed on; `send_ahead_s`: how long before its time a
        tick is sent (on JACK, one period: a send lands at the start of the next one)."""
        self.period = 60.0 / (bpm * spec.CLOCK_PPQN)
        if not 0.0 <= jitter_s < self.period / 2:
            # wider, and a tick could be sent before the one ahead of it
            raise ValueError(f"jitter must be under half a tick ({self.period * 500:.2f} ms)"
                             f" at {bpm:g} BPM, not {jitter_s * 1000:g} ms")
        self.out = out
        self.jitter_s = jitter_s
        self.rng = random.Random(seed)
        self.now = now
        self.send_ahead_s = send_ahead_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def play(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="white-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(5.0)
        self._thread = None
        self.out.send_message([spec.STOP])

    def _run(self) -> None:
        self.out.send_message([spec.START])
        t0 = self.now() + START_LEAD_S
        k = 0
        while True:
            # tick k: on the ideal grid, off it by its own draw only (white, not a walk)
            due = t0 + k * self.period + self.rng.uniform(-self.jitter_s, self.jitter_s)
            if not self._wait_until(due - self.send_ahead_s):
                return
            self.out.send_message([spec.CLOCK])
            k += 1


    def _wait_until(self, t: float) -> bool:
        """Sleep, then poll, until `now()` reaches `t`; False once stopped."""
        if self._stop.wait(max(t - self.now() - 2 * POLL_S, 0.0)):
            return False
        while self.now() < t:
            if self._stop.wait(POLL_S):
                return False
        return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live.white_clock")
    parser.add_argument("--client", default="musegen-white", help="JACK client name")
    parser.add_argument("--backend", default="jack")
    parser.add_argument("--bpm", type=float, default=120.0)
    parser.add_argument("--jitter-ms", type=float, default=1.0,
                        help="each tick sent up to this far off its ideal time (uniform)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server", help="time the ticks on this JACK server's frames")
    args = parser.parse_args(argv)
    out = open_output(args.backend, args.client)
    out.open_virtual_port(PORT_NAME)
    frames = JackFrameClock(args.server, "musegen-white-time") if args.server else None
    now, ahead = (time.monotonic, 0.0) if frames is None else (frames.now, frames.period_s)
    clock = WhiteClock(out, args.bpm, args.jitter_ms / 1000.0, args.seed, now, ahead)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())

    def commands() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command == "play":
                clock.play()
            elif command == "stop":
                clock.stop()
            elif command:
                logger.warning("white_clock: unknown command %r", command)
        done.set()

    threading.Thread(target=commands, daemon=True).start()
    done.wait()
    clock.stop()
    out.delete()
    if frames is not None:
        frames.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
