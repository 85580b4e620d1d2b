"""A clock whose phase wanders: how much it wanders, where its ticks are, where its beat is.

Master jitter comes in two kinds:
- *white*: ticks scatter around a steady line (a DAW's clock through USB or a driver, 1-2 ms;
  python-rtmidi stamping JACK input at period starts, up to 1.33 ms). The beat is on the line.
- *a walk*: each tick *interval* is perturbed, so the errors add up and the phase wanders
  (`jack_midi_clock -J`, a master following a drifting source). There is no steady line:
  over two minutes at -J 10 the phase strays tens of ms from any line; a long fit lags the
  wander and takes it for one tempo change after another.

They differ in the intervals d_k = t_k - t_(k-1): with q the walk's variance per tick and r
the white variance, var(d) = q + 2 r and the lag-1 covariance is -r (a late tick lengthens
one interval and shortens the next). `WalkShare` keeps running means of both, so q and r,
and the walk's share of the interval noise, q / (q + 2 r) (0: white, 1: a pure walk).

Whether the phase keeps to a line at all (`WalkShare.steady`) is asked of a longer lag: the
sum of `WANDER_TICKS` deviations, D, is the phase's drift over a beat. Its variance is L q + 2 r
for a walk, so it grows with L, and stays near the one-tick variance q + 2 r for any jitter
that keeps to a line. The lag-1 covariance alone cannot tell: stamping on JACK's 64-frame
periods is a fixed pattern, not independent noise, and a steady 174 BPM clock read a walk
share of 0.43 on the bench, where -J 10 read 0.47 to 0.89. D's variance over the one-tick
variance was 1.5 for that stamping in simulation, at most 1.3 for white jitter of +-2 ms, and
4.7 to 24 for -J 10 (200 runs of 600 ticks each).

`WalkFilter` is the matching Kalman filter for where the newest tick really is: the previous
estimate plus a period, pulled towards each reading by the gain q and r give (1 for a pure
walk: the tick itself; small for white jitter: an average over many ticks).

Where is the beat? A listener (and the latency bench, see bench/live/bench_analysis.py)
hears it where the ticks within a beat either side of it (`BEAT_HALF`) average. Knowing the
ticks so far, the best guess of that average is the mean of the known ones as they came and,
for those still to come, the filtered newest tick plus whole periods (a walk is as likely to
go either way): `walk_beat_phase`. For a steady clock that is the line, for a walk it leans
on the newest ticks. Measured offline against the bench's grid, on -J 10 tick streams
(intervals +-10 %) stamped at 1.33 ms period starts as on the rig: p99 4.8 ms at 120 BPM and
3.5 ms at 174, where each tick's own arrival is 6.0 and 4.1 ms off and the old 96-tick line
7.8 and 5.2 ms; on white jitter (+-1.5 ms) 0.53 ms, the line 0.36 ms.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

BEAT_HALF = 24  # ticks either side of a beat that its heard position averages (one beat)
SHARE_ALPHA = 1.0 / 64.0  # running-mean weight: about 2.5 beats of memory
SHARE_WARMUP = 16  # interval pairs (a plain mean) before the share is trusted
# The phase filter always assumes some walk, 1/1024 of the white variance: then its gain never
# falls under about 1/32, so an error in the period it is given fades within ~32 ticks
# instead of adding up (with white jitter alone the filter is then a ~32-tick average).
MIN_WALK_TO_WHITE = 1.0 / 1024.0
# A walk's tempo is its mean interval: the intervals are independent, so their plain mean is
# the best estimate (a least-squares slope weights the ends and does worse), and over 256
# ticks (2.7 bars) it is good to 0.4 % at -J 10. Restarted on a tempo change.
INTERVAL_MEMORY = 256
WANDER_TICKS = 24  # a beat: the lag at which a walk's drift is told from jitter
# A beat's drift variance over the one-tick variance: above WANDER_ABOVE the phase wanders,
# below STEADY_BELOW it keeps to a line, in between it stays as it was (the estimate is noisy:
# beats overlap, so even 256 ticks hold only about ten independent drifts)
WANDER_ABOVE = 4.0
STEADY_BELOW = 2.0
DRIFT_ALPHA = 1.0 / 256.0  # running-mean weight of the drift: beats overlap, so a long memory
STEADY_AFTER = 4 * WANDER_TICKS  # drifts seen before a clock may be called steady (5 beats in)


class WalkShare:
    """Running share (0..1) of the tick-interval noise that is a random walk of phase."""

    def __init__(self) -> None:
        self.share = 0.0
        self.interval = 0.0  # running mean of the intervals since the last tempo change
        self.intervals = 0
        self._var = 0.0  # mean of d^2
        self._cov = 0.0  # mean of d * previous d
        self._prev = math.nan
        self._samples = 0
        self._recent: deque[float] = deque(maxlen=WANDER_TICKS)  # deviations from the mean
        self._drift = 0.0  # their sum: the phase's drift over the last beat
        self._drift_var = 0.0  # mean of drift^2
        self._step_var = 0.0  # mean of a deviation^2, over the same ticks
        self._drift_samples = 0
        # the ticks keep to a line: their phase drifts over a beat no more than a tick's
        # jitter allows (False until `STEADY_AFTER` drifts are in, and for a walk)
        self.steady = False

    @property
    def walk_var(self) -> float:
        """Variance per tick of the phase's walk (q = var + 2 cov)."""
        return max(self._var + 2.0 * self._cov, 0.0)

    @property
    def white_var(self) -> float:
        """Variance of the white jitter on each tick (r = -cov)."""
        return max(-self._cov, 0.0)

    def forget_last(self) -> None:
        """The next interval does not follow the last one (a gap, a tempo change)."""
        self._prev = math.nan
        self._recent.clear()
        self._drift = 0.0

    def new_tempo(self) -> None:
        """A tempo change: the mean interval starts again."""
        self.intervals = 0
        self.forget_last()

    def add(self, interval: float, period: float) -> None:
        """The newest interval, and the period it was expected to last."""
        self.intervals += 1
        self.interval += max(1.0 / INTERVAL_MEMORY, 1.0 / self.intervals) * (
            interval - self.interval)
        self._add_drift(interval - self.interval)
        deviation = interval - period
        prev, self._prev = self._prev, deviation
        if math.isnan(prev):
            return
        self._samples += 1
        alpha = max(SHARE_ALPHA, 1.0 / self._samples)
        self._var += alpha * (deviation * deviation - self._var)
        self._cov += alpha * (deviation * prev - self._cov)
        if self._samples >= SHARE_WARMUP and self._var > 0.0:
            self.share = min(1.0, max(0.0, 1.0 + 2.0 * self._cov / self._var))

    def _add_drift(self, deviation: float) -> None:
        recent = self._recent
        if len(recent) == WANDER_TICKS:
            self._drift -= recent[0]
        recent.append(deviation)
        self._drift += deviation
        if len(recent) < WANDER_TICKS:
            return
        self._drift_samples += 1
        alpha = max(DRIFT_ALPHA, 1.0 / self._drift_samples)
        self._drift_var += alpha * (self._drift * self._drift - self._drift_var)
        self._step_var += alpha * (deviation * deviation - self._step_var)
        if self._drift_samples < STEADY_AFTER:
            return
        if self._drift_var < STEADY_BELOW * self._step_var:
            self.steady = True
        elif self._drift_var > WANDER_ABOVE * self._step_var:
            self.steady = False


class WalkFilter:
    """Where a wandering clock's newest tick really is: a scalar Kalman filter on the phase
    (walk variance q per tick, white variance r per reading). With r = 0 it is the newest
    tick; white jitter on top (python-rtmidi stamps JACK input at period starts: up to
    1.33 ms) is averaged out as far as the walk allows."""

    def __init__(self) -> None:
        self.phase = 0.0
        self._var = math.inf  # of the phase estimate: unknown until the first reading

    def reset(self, t: float) -> None:
        self.phase = t
        self._var = math.inf

    def skip(self, period: float, q: float) -> None:
        """A tick went by unread (an outlier): the phase moves on a period, less sure."""
        self.phase += period
        self._var += q

    def update(self, t: float, period: float, q: float, r: float) -> None:
        """Tick `t` read; `q` and `r` as WalkShare measures them (both 0 until it has seen
        two intervals: the filter then takes each tick as it comes)."""
        q = max(q, r * MIN_WALK_TO_WHITE)
        prior, prior_var = self.phase + period, self._var + q
        if math.isinf(prior_var) or prior_var + r <= 0.0:
            self.phase, self._var = t, (r if r > 0.0 else math.inf)
            return
        gain = prior_var / (prior_var + r)
        self.phase = prior + gain * (t - prior)
        self._var = (1.0 - gain) * prior_var


def walk_beat_phase(times: Sequence[float], weights: Sequence[float], newest: int, known: int,
                    period: float, base: float) -> float:
    """Fitted time of the newest tick such that the *next* tick's heard position is one
    period after it (`base`: where the newest tick really is, from `WalkFilter`).

    `times` and `weights` are ring buffers whose entry `newest` is the newest tick (a trusted
    one) and the `known` entries back from it (newest included) are usable. An outlier
    (weight 0) and anything older than `known` count as one period before the tick after
    them. The next tick's beat averages ticks next - BEAT_HALF .. next + BEAT_HALF:
    BEAT_HALF of them known (newest, newest - 1, ...), BEAT_HALF + 1 to come.
    """
    size = len(times)
    value = times[newest]
    total = 0.0
    for j in range(BEAT_HALF):
        i = (newest - j) % size
        value = times[i] if j < known and weights[i] != 0.0 else value - period
        total += value
    ahead = BEAT_HALF + 1  # ticks to come in the average: base + i * period, i = 1..ahead
    total += ahead * base + period * ahead * (ahead + 1) / 2.0
    return total / (2 * BEAT_HALF + 1) - period
