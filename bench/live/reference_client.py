"""The latency benchmark's floor: a python-rtmidi JACK client that answers the clock at once.

It sends a note_on the moment every sixth clock tick (every 16th, counting from the first
tick after Start) reaches its rtmidi callback, and the note_off three ticks later; it
predicts nothing. Its timing error, measured like the engine's, is what the rig itself costs:
the JACK period, python-rtmidi's callback and output ringbuffer, the GIL, the machine's load.
An engine that schedules ahead from the fitted clock can get close to it, not below it.

Runs as its own process (so it neither shares the engine's GIL nor counts in its CPU):

    python -m bench.live.reference_client --client musegen-ref

with ports "<client>:ref in" and "<client>:ref out"; it runs until stdin closes or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from bridges.midi.backends import open_input, open_output
from musegen.music import midi_spec as spec

logger = logging.getLogger(__name__)

TICKS_PER_STEP = spec.CLOCK_PPQN // 4  # a 16th
REF_CHANNEL = 15
REF_PITCH = 60


class Responder:
    """The callback: counts ticks from Start and sends on the 16ths. State lives here only."""

    def __init__(self, out: Any, channel: int = REF_CHANNEL, pitch: int = REF_PITCH) -> None:
        self.out = out
        self.on = [spec.NOTE_ON | channel, pitch, 100]
        self.off = [spec.NOTE_OFF | channel, pitch, 0]
        self.tick = -1  # index of the next tick in this run; -1 while stopped
        self.sounding = False

    def __call__(self, event: tuple[Sequence[int], float], data: object = None) -> None:
        message = event[0]
        if len(message) != 1:
            return
        status = message[0]
        if status == spec.CLOCK and self.tick >= 0:
            phase = self.tick % TICKS_PER_STEP
            if phase == 0:
                self.out.send_message(self.on)
                self.sounding = True
            elif phase == TICKS_PER_STEP // 2 and self.sounding:
                self.out.send_message(self.off)
                self.sounding = False
            self.tick += 1
        elif status == spec.START:
            self.tick = 0  # the first tick after Start is beat 0
        elif status == spec.STOP:
            self.tick = -1
            if self.sounding:
                self.out.send_message(self.off)
                self.sounding = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live.reference_client")
    parser.add_argument("--client", default="musegen-ref", help="JACK client name")
    parser.add_argument("--backend", default="jack")
    args = parser.parse_args(argv)
    midi_in = open_input(args.backend, args.client)
    midi_out = open_output(args.backend, args.client)
    midi_out.open_virtual_port("ref out")
    responder = Responder(midi_out)
    midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
    midi_in.set_callback(responder)
    midi_in.open_virtual_port("ref in")
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())

    def until_stdin_closes() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    done.wait()
    # The callback runs in JACK's process cycle and takes the GIL there. Closing a client
    # while holding the GIL, with a callback in flight waiting for it, deadlocks with the
    # server (about 5 s, stalling every client): end the callback, let an in-flight one
    # finish (sleep releases the GIL), then close.
    midi_in.cancel_callback()
    time.sleep(0.05)
    midi_in.delete()
    midi_out.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
