"""Tempo and phase of a jittery tick stream: a sliding least-squares line with change detection.

Model: tick k arrives at t_k = a + P * k + noise, where P is the tick period (60 / (24 * bpm)
for MIDI clock) and the noise is the sender's and the OS's jitter (a DAW: 1-2 ms per tick;
`jack-midi-clock -J` adds more). Why a line fit and not the last interval or an EMA of
intervals: one interval at 120 BPM is 20.8 ms, so 1.5 ms of jitter is a 7 % tempo error;
differencing doubles the noise, and an EMA of intervals lags a step and says nothing about
phase. The least-squares slope over n ticks has a standard error of
sigma / sqrt(n (n^2 - 1) / 12) (0.02 % of the period for n = 96 and 1 ms jitter) and its
intercept gives the *phase*, where the newest tick "really" was, to about 2 sigma / sqrt(n),
so positions between ticks and ahead of them come from one straight line (the phase is
refined for clocks that wander, see below). The window is
4 beats (96 ticks): with 1.5 ms uniform jitter that keeps the extrapolated position within
0.6 ms of the true one, where 48 ticks allow 1 ms.

Quick to follow real changes: every tick is first compared with its prediction, and a
two-sided CUSUM of the normalised residuals (drift `drift` sigma, alarm at `alarm`) collects
evidence that ticks come consistently early or late. Jitter gives residuals of random sign
that the drift term drains; a tempo step gives residuals of one sign growing by
P_old - P_new per tick. On an alarm the window shrinks to the ticks since that CUSUM left
zero (plus the tick before, whose interval is already the new tempo) and then grows back by
one a tick. A 120 -> 140 BPM step (3 ms per tick) alarms after 2-3 ticks and the estimate is
within 0.5 % a beat later; a tempo ramp alarms every few ticks, so the line never lags it by
more than a few ms. Sigma comes from successive residual *differences*, which a slowly
growing bias cancels out of, so the noise estimate cannot learn a drift and hide it.

Outlier guard: a tick more than `k_outlier` sigma off (a delayed USB packet, a scheduler
hiccup) gets weight 0, so it neither bends the tempo nor moves the phase, and its residual
is clipped in the CUSUM so one late tick cannot raise an alarm; if it was the start of a
real change, the alarm restores its weight.

A clock whose phase wanders (each interval perturbed, so the errors add up: `jack_midi_clock
-J`) has no steady line: the long fit lags the wander, and its residuals look like one tempo
change after another (350 to 530 alarms in two minutes at -J 10). So the line gives the
*tempo* (its slope, moved towards the mean interval by how much the clock wanders), while the
*phase* comes from wander.py: each tick is compared with a Kalman-filtered phase plus a
period (for a walk the residuals are then independent again: 0 to 3 alarms; for a steady
clock the filter is a ~32-tick average on the line), and the published phase is where the
beat is heard, the mean of the ticks within a beat of it (`walk_beat_phase`).

Cost: `add()` is O(window) in plain Python floats over preallocated lists (one pass of at
most 96 steps for the line and one of 24 for the beat: median 24 us, p99 43 us here, no
allocation beyond the float objects), because it runs once per tick in the MIDI input path.
"""

from __future__ import annotations

import math

from musegen.clock.wander import WalkFilter, WalkShare, walk_beat_phase

MIN_PERIOD = 60.0 / (24 * 1000.0)  # 1000 BPM at 24 ppqn
MAX_PERIOD = 60.0 / (24 * 1.0)  # 1 BPM
ARM_AFTER = 8  # ticks in the window before its predictions are trusted at all
SIGMA_ALPHA = 1.0 / 64.0  # running variance weight: about 2.5 beats of memory, steady thresholds
SIGMA_WARMUP = 16  # noise samples (a plain mean) before the CUSUM may raise an alarm
WALK_PERIOD_AFTER = 24  # intervals since a tempo change before their mean places beats


class TickLineFit:
    """Sliding weighted least-squares fit of tick time against tick index."""

    def __init__(
        self,
        period: float,
        window: int = 96,
        *,
        drift: float = 1.25,
        alarm: float = 5.0,
        k_outlier: float = 4.0,
        sigma0: float = 1e-3,
        sigma_floor: float = 2.5e-4,
    ) -> None:
        if window < ARM_AFTER:
            raise ValueError(f"window must be at least {ARM_AFTER} ticks")
        self.window = window
        self.period = period
        self.index = 0  # index of the newest tick
        self.t_last = 0.0  # raw arrival time of the newest tick
        self.t_fit = 0.0  # the least-squares line's time of the newest tick
        self.phase = 0.0  # fitted time of the newest tick: the line's, or the walk's
        self.count = 0  # ticks in the current fit window
        # (index, phase, period) published as one tuple after each update: the dispatcher and
        # the worker read it from other threads, and a tuple swap is atomic where three
        # separate fields, updated one by one, could be read half old and half new.
        self.line = (self.index, self.phase, self.period)
        # (index, t_last) of the newest tick, published the same way, for tick-anchored sends
        self.arrival = (self.index, self.t_last)
        self.changes = 0  # tempo changes detected (for diagnostics and tests)
        self.walk = WalkShare()  # how much of the jitter is a wandering phase (wander.py)
        self.walk_phase = WalkFilter()  # where the newest tick is if the phase wanders
        self._drift = drift
        self._alarm = alarm
        self._k_outlier = k_outlier
        self._var = sigma0 * sigma0
        self._sigma_floor = sigma_floor
        self._times = [0.0] * window
        self._weights = [0.0] * window
        self._head = 0
        self._r_prev = math.nan  # no previous residual since the last reset
        self._var_samples = 0
        self._cusum = [0.0, 0.0]  # evidence that ticks come late / early
        self._cusum_len = [0, 0]  # ticks since each sum left zero (where a change began)

    @property
    def sigma(self) -> float:
        return max(math.sqrt(self._var), self._sigma_floor)

    def predict(self, index: int) -> float:
        """Expected arrival of tick `index`: whole periods from where the newest tick really
        was (the phase filter's estimate; see wander.py)."""
        return self.walk_phase.phase + (index - self.index) * self.beat_period

    @property
    def beat_period(self) -> float:
        """The period beats are placed with: the line's slope, moved towards the mean
        interval by the walk share (a walk's intervals are independent, so their mean is
        its best tempo; see wander.py)."""
        walk = self.walk
        if walk.intervals < WALK_PERIOD_AFTER:
            return self.period
        return self.period + walk.share * (walk.interval - self.period)

    def restart(self, index: int, t: float) -> None:
        """Forget the window (after a gap): one tick at `index`, keeping the last period."""
        self.index = index
        self.t_last = self.t_fit = self.phase = t
        self._head = 0
        self._times[0] = t
        self._weights[0] = 1.0
        self.count = 1
        self.walk.forget_last()
        self.walk_phase.reset(t)
        self._reset_cusum()
        self.line = (self.index, self.phase, self.beat_period)
        self.arrival = (self.index, self.t_last)

    def add(self, t: float) -> None:
        """The next tick (index + 1) arrived at `t`."""
        if self.count == 0:
            self.restart(0, t)
            return
        t = max(t, self.t_last)  # timestamps never run backwards; keep the count anyway
        residual = t - self.predict(self.index + 1)
        weight = 1.0
        changed = 0
        if self.count >= ARM_AFTER:
            z = residual / self.sigma
            weight = 0.0 if abs(z) > self._k_outlier else 1.0
            changed = self._detect_change(z, residual)
        self._head = (self._head + 1) % self.window
        self._times[self._head] = t
        self._weights[self._head] = weight
        self.index += 1
        self._note_interval(t, weight, changed)
        self.t_last = t
        self.count = min(self.count + 1, self.window)
        if changed:
            self._shrink(changed)
        self._fit()
        self._place_phase()
        self.line = (self.index, self.phase, self.beat_period)
        self.arrival = (self.index, self.t_last)

    def _note_interval(self, t: float, weight: float, changed: int) -> None:
        """Feed the newest tick to the phase filter and its interval to the walk share (not
        across an outlier or a change). Runs before `t_last` moves on to `t`."""
        walk = self.walk
        previous_trusted = self._weights[(self._head - 1) % self.window] != 0.0
        if weight == 0.0 or changed or not previous_trusted:
            walk.forget_last()
        else:
            walk.add(t - self.t_last, self.period)
        if weight != 0.0:
            self.walk_phase.update(t, self.beat_period, walk.walk_var, walk.white_var)
        else:
            self.walk_phase.skip(self.beat_period, walk.walk_var)

    def _place_phase(self) -> None:
        """Where the newest tick's beat is heard, such that the next one is a period later."""
        if self._weights[self._head] == 0.0:  # an outlier: the phase goes on one period
            self.phase += self.beat_period
            return
        self.phase = walk_beat_phase(self._times, self._weights, self._head, self.count,
                                     self.beat_period, self.walk_phase.phase)

    def _detect_change(self, z: float, residual: float) -> int:
        """Two-sided CUSUM of the residuals; on an alarm, the ticks since the change began.

        Clipping z at the outlier bound lets one late tick add at most k_outlier - drift,
        below the alarm level, while two ticks of a real step already cross it.
        """
        self._update_sigma(residual)
        if self._var_samples < SIGMA_WARMUP:  # sigma0 is a guess: alarms would be noise
            return 0
        z = max(-self._k_outlier, min(self._k_outlier, z))
        for side, push in ((0, z), (1, -z)):
            level = max(0.0, self._cusum[side] + push - self._drift)
            self._cusum[side] = level
            self._cusum_len[side] = self._cusum_len[side] + 1 if level > 0.0 else 0
            if level > self._alarm:
                return self._cusum_len[side]
        return 0

    def _update_sigma(self, residual: float) -> None:
        """Sigma from successive differences: a slowly growing bias (the line lagging a tempo
        ramp) cancels out, so the noise estimate cannot learn the drift and hide it. A plain
        mean over the first samples replaces the guess sigma0 quickly; then a running mean."""
        diff, self._r_prev = residual - self._r_prev, residual
        if math.isnan(diff):
            return
        self._var_samples += 1
        limit = 2.0 * (self._k_outlier * self.sigma) ** 2
        if self._var_samples == 1:
            limit = math.inf  # the first sample must be able to correct a wrong sigma0
        alpha = max(SIGMA_ALPHA, 1.0 / self._var_samples)
        self._var += alpha * (min(diff * diff, limit) / 2.0 - self._var)

    def _shrink(self, ticks: int) -> None:
        """Keep only the ticks since the change began (plus the one before), all trusted."""
        keep = min(ticks + 1, self.count)
        for j in range(keep):
            self._weights[(self._head - j) % self.window] = 1.0
        self.count = keep
        self.changes += 1
        self.walk.new_tempo()
        self.walk_phase.reset(self.t_last)
        self._reset_cusum()

    def _reset_cusum(self) -> None:
        self._cusum[0] = self._cusum[1] = 0.0
        self._cusum_len[0] = self._cusum_len[1] = 0
        self._r_prev = math.nan

    def _fit(self) -> None:
        """Weighted least squares over the window; x = -j for the j-th newest tick.

        Times are taken relative to the newest tick, so the sums stay small and well
        conditioned however long the session has run.
        """
        sw = sx = sy = sxx = sxy = 0.0
        times, weights, head, size = self._times, self._weights, self._head, self.window
        for j in range(self.count):
            i = (head - j) % size
            w = weights[i]
            wx = -w * j
            y = times[i] - self.t_last
            sw += w
            sx += wx
            sy += w * y
            sxx -= wx * j
            sxy += wx * y
        if sw < 2.0:
            self.t_fit = self.t_last
            return
        xm, ym = sx / sw, sy / sw
        sxx -= sx * xm  # centred sums: x spans <= window ticks and y is relative to the
        sxy -= sx * ym  # newest tick, so this one-pass form loses no useful precision
        slope = sxy / sxx if sxx > 0.0 else 0.0
        if not MIN_PERIOD <= slope <= MAX_PERIOD:  # degenerate timestamps: keep the tempo
            self.t_fit = self.t_last
            return
        self.period = slope
        self.t_fit = self.t_last + ym - slope * xm
