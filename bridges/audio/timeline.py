"""Seconds on the session's timebase -> samples on the synth's timeline, from the callbacks.

Every audio callback is one reading: "synth sample `r` (the ring's read counter; the ring
carries nothing but the synth's output, so its counter is the synth's sample index) is read
by the device at timebase time `now`", so the line `sample = offset + rate * t` has
`offset = r - rate * now`. Readings scatter one way only: a callback that the GIL or the
scheduler holds up runs late, never early, and a late reading is low. So the line follows
the readings' upper envelope: up fast (UP of the way), down slowly (DOWN of the way, which
still follows a slow drift within a few samples), and never down by more than BACK_SHARE of
the samples the timebase moved on since the previous reading. The mapped sample of "now"
therefore only ever moves forward: an event mapped after another never lands before it.

What comes in as a fall of the readings, followed over a few dozen callbacks: the device's
crystal drifting from the timebase (the JACK rig's dummy driver runs about 0.14 % slow and
steps back a millisecond or two at a late cycle) and underruns (zeros the device played that
the synth's timeline does not count).

Why the read time and not PortAudio's DAC time: the DAC time is on PortAudio's own clock
(JACK's frames or the system's), and relating it to the timebase would be one more clock
pair to fit; the device's latency after the read is a constant that delays every note alike,
so the line need not know it (AudioOutput reports it).
"""

from __future__ import annotations

UP = 0.5  # a high reading: the callback ran on time; most of the way at once
DOWN = 0.1  # a low reading: most likely a late callback; a little of the way
BACK_SHARE = 0.25  # the offset falls by at most this share of the samples that passed


class SampleClock:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.offset: float | None = None  # synth sample at timebase time 0; None: no reading
        self.readings = 0
        self._last = 0.0  # the timebase time of the previous reading

    def anchor(self, sample: int, now: float) -> None:
        """Synth sample `sample` is being read by the device at timebase time `now`."""
        reading = sample - self.rate * now
        self.readings += 1
        if self.offset is None:
            self.offset, self._last = reading, now
            return
        error = reading - self.offset
        if error > 0.0:
            step = error * UP
        else:
            step = max(error * DOWN, -BACK_SHARE * self.rate * max(now - self._last, 0.0))
        self.offset += step
        self._last = now

    def sample_at(self, t: float) -> int | None:
        """The synth sample the device reads at timebase time `t` (None before any reading)."""
        offset = self.offset
        if offset is None:
            return None
        return round(offset + self.rate * t)
