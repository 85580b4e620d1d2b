"""Timing analysis of a `jack_midi_dump -a` recording: the clock's ideal grid, note errors.

The ideal grid is fitted to the clock ticks the dump received (least squares of tick time
against tick index; beat = index / 24, the first tick after Start being beat 0), locally: a
beat's time comes from the line through the ticks within `LOCAL_TICKS` of it. That averages
the clock's own tick-to-tick jitter (jack_midi_clock -J) away, so a note's error is measured
against where the beat really was, not against one jittered tick; and it follows a clock whose
phase wanders, which -J also does (a random walk: tens of ms over two minutes, so one line
through the whole run puts the beat where nobody, the reference client included, hears it).
The whole-run line still gives the run's tempo and its RMS spread.

A second grid (`fitted_ticks`, reported as `fitted`) fits the clock's own noise model
instead of a fixed window: the phase walk (variance q per tick) and the white jitter
(variance r) that musegen/clock/wander.py tells apart, both measured from the run's tick
intervals, and each tick's true time smoothed from all the ticks under them. White jitter
around a steady line (q = 0) gives the line; a pure walk (r = 0, as jack_midi_clock -J sends:
each interval perturbed, and the dump reads every tick at its frame) gives the ticks
themselves, since nothing but the tick says where the walk went. That is the grid under which
the issue's reference floor (a note as each sixth tick arrives: one JACK period, 1.33 ms
p99) holds on any of these clocks.

A received note_on is matched to the sent note_on of the same key (channel, pitch) whose
ideal time is nearest, one not matched yet first; one further away than half a 16th matches
nothing. Sent notes that match nothing were dropped; a sent note matched twice was doubled.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from bench.rig.jack_tools import DumpRecord
from musegen.music import midi_spec as spec

# +-1 beat of ticks: 49 ticks average +-1 ms jitter to +-0.15 ms, yet a wandering phase moves
# little within two beats
LOCAL_TICKS = spec.CLOCK_PPQN
NOISE_LAG = 4 * spec.CLOCK_PPQN  # ticks: the lag at which a walk's variance is told from jitter


@dataclass(frozen=True, slots=True)
class Grid:
    t0: float  # seconds (dump time) of tick 0, beat 0
    tick_s: float  # seconds per tick
    ticks: int  # ticks fitted
    jitter_ms: float  # RMS of the ticks around the fitted line
    times: tuple[float, ...] = ()  # every tick, for the local fits (empty: the line only)
    local_jitter_ms: float = 0.0  # RMS of the ticks around their local lines
    fitted: tuple[float, ...] = ()  # each tick's time under the clock's noise model
    # that model's (walk variance per tick, white variance), s^2; None: too few ticks
    noise: tuple[float, float] | None = None

    @property
    def bpm(self) -> float:
        return 60.0 / (self.tick_s * spec.CLOCK_PPQN)

    def time_of(self, beat: float) -> float:
        """Where `beat` was: on the line through the ticks within LOCAL_TICKS of it."""
        k = beat * spec.CLOCK_PPQN
        centre = min(max(round(k), 0), len(self.times) - 1)
        lo, hi = max(centre - LOCAL_TICKS, 0), min(centre + LOCAL_TICKS + 1, len(self.times))
        if hi - lo < 2:
            return self.t0 + k * self.tick_s
        t0, slope = _line(range(lo, hi), self.times[lo:hi])
        return t0 + k * slope


@dataclass(frozen=True, slots=True)
class Note:
    t: float  # seconds (dump time), or the ideal beat for a sent note
    channel: int
    pitch: int


def run_ticks(records: Sequence[DumpRecord], rate: int) -> list[float]:
    """Seconds of each tick of the first run: from the first tick after Start to Stop."""
    started = False
    ticks: list[float] = []
    for r in records:
        if r.data == (spec.START,):
            started = True
        elif started and r.data == (spec.STOP,):
            break
        elif started and r.data == (spec.CLOCK,):
            ticks.append(r.frame / rate)
    return ticks


def fit_grid(ticks: Sequence[float]) -> Grid:
    """The least-squares line t = t0 + k * tick_s through the tick times (k = 0, 1, ...), and
    the ticks themselves for the local lines `Grid.time_of` uses."""
    n = len(ticks)
    if n < 2:
        raise ValueError("need at least two clock ticks to fit a grid")
    t0, slope = _line(range(n), ticks)
    rms = math.sqrt(math.fsum((t - t0 - k * slope) ** 2 for k, t in enumerate(ticks)) / n)
    noise = tick_noise(ticks) if n > 2 * NOISE_LAG else None
    grid = Grid(t0, slope, n, rms * 1000.0, tuple(ticks),
                fitted=tuple(fitted_ticks(ticks, noise)), noise=noise)
    local = math.sqrt(math.fsum((t - grid.time_of(k / spec.CLOCK_PPQN)) ** 2
                                for k, t in enumerate(ticks)) / n)
    return replace(grid, local_jitter_ms=local * 1000.0)


def tick_noise(ticks: Sequence[float]) -> tuple[float, float]:
    """(q, r): the walk's variance per tick and the white jitter's variance, from the
    deviations of the tick intervals from their mean. Their lag-1 covariance is -r. Summed
    over `NOISE_LAG` ticks their variance is NOISE_LAG q + 2 r, against q + 2 r for one: q
    from that growth, which the white part cannot fake (var(d) + 2 cov, the one-tick
    estimate wander.py uses live, is too noisy for a smoother: on 3000 ticks of white
    jitter alone it gives q a tenth of r, and the grid follows the jitter)."""
    mean = (ticks[-1] - ticks[0]) / (len(ticks) - 1)
    dev = [b - a - mean for a, b in itertools.pairwise(ticks)]
    if len(dev) < 2 * NOISE_LAG:
        raise ValueError(f"need at least {2 * NOISE_LAG + 1} ticks to fit the clock's noise")
    var = math.fsum(d * d for d in dev) / len(dev)
    cov = math.fsum(a * b for a, b in itertools.pairwise(dev)) / (len(dev) - 1)
    drift = math.fsum(dev[:NOISE_LAG])
    drifts = [drift]
    for k in range(NOISE_LAG, len(dev)):
        drift += dev[k] - dev[k - NOISE_LAG]
        drifts.append(drift)
    var_lag = math.fsum(d * d for d in drifts) / len(drifts)
    return max((var_lag - var) / (NOISE_LAG - 1), 0.0), max(-cov, 0.0)


def fitted_ticks(ticks: Sequence[float],
                 noise: tuple[float, float] | None) -> list[float]:
    """Each tick's true time, smoothed from all the ticks (a Rauch-Tung-Striebel smoother)
    under a phase that walks by q per tick, read with white jitter r (`noise`, from
    `tick_noise`; None: too few ticks to know, so the ticks as they are), and advancing by
    the mean interval. r = 0: the ticks; q = 0: the line through them."""
    if noise is None or noise[1] == 0.0:
        return list(ticks)
    q, r = noise
    n = len(ticks)
    step = (ticks[-1] - ticks[0]) / (n - 1)
    est, var = [ticks[0]] * n, [r] * n  # filtered: each tick from the ticks up to it
    ahead, ahead_var = [ticks[0]] * n, [r] * n  # predicted from the tick before
    for k in range(1, n):
        ahead[k], ahead_var[k] = est[k - 1] + step, var[k - 1] + q
        gain = ahead_var[k] / (ahead_var[k] + r)
        est[k] = ahead[k] + gain * (ticks[k] - ahead[k])
        var[k] = (1.0 - gain) * ahead_var[k]
    smooth = est[:]
    for k in range(n - 2, -1, -1):
        smooth[k] = est[k] + var[k] / ahead_var[k + 1] * (smooth[k + 1] - ahead[k + 1])
    return smooth


def walk_oracle_errors(grid: Grid, step_ticks: int = spec.CLOCK_PPQN // 4) -> list[float]:
    """What the clock itself allows: for every 16th, the error of the best guess of where it
    is heard that a follower could make once the 16th's own tick had arrived, for a clock
    whose phase is a random walk (`jack_midi_clock -J`), given the run's true mean interval.

    The guess is the mean, under that model, of the ticks `Grid.time_of` averages: those up
    to the 16th's tick as they came, the rest whole mean intervals after it (see
    musegen/clock/wander.py). A real follower knows less (the tempo is estimated, and it
    sends before the tick, not after), so this is a floor under its error on this clock
    (for white jitter around a steady line it is not: the line is the better guess there).
    """
    times = grid.times
    n = len(times)
    if n < 2 * LOCAL_TICKS + 2:
        return []
    mean_interval = (times[-1] - times[0]) / (n - 1)
    errors = []
    for k in range(LOCAL_TICKS, n - LOCAL_TICKS, step_ticks):
        known = math.fsum(times[k - LOCAL_TICKS: k + 1])
        ahead = LOCAL_TICKS * times[k] + mean_interval * LOCAL_TICKS * (LOCAL_TICKS + 1) / 2
        guess = (known + ahead) / (2 * LOCAL_TICKS + 1)
        errors.append(guess - grid.time_of(k / spec.CLOCK_PPQN))
    return errors


def _line(ks: Sequence[int], ts: Sequence[float]) -> tuple[float, float]:
    """Least-squares t = t0 + slope * k."""
    n = len(ks)
    k_mean, t_mean = math.fsum(ks) / n, math.fsum(ts) / n
    sxx = math.fsum((k - k_mean) ** 2 for k in ks)
    slope = math.fsum((k - k_mean) * (t - t_mean) for k, t in zip(ks, ts, strict=True)) / sxx
    return t_mean - slope * k_mean, slope


def note_ons(records: Iterable[DumpRecord], rate: int, channels: Iterable[int]) -> list[Note]:
    """Received note_ons (velocity > 0) on `channels`, in dump time."""
    wanted = set(channels)
    return [Note(r.frame / rate, r.data[0] & spec.CHANNEL_MASK, r.data[1]) for r in records
            if len(r.data) == 3 and r.data[0] & spec.STATUS_MASK == spec.NOTE_ON and r.data[2] > 0
            and r.data[0] & spec.CHANNEL_MASK in wanted]


def _note_change(r: DumpRecord, wanted: set[int]) -> tuple[tuple[int, int], bool] | None:
    """((channel, pitch), True for a sounding note_on) for a note message on `wanted`."""
    if len(r.data) != 3 or r.data[0] & spec.CHANNEL_MASK not in wanted:
        return None
    kind = r.data[0] & spec.STATUS_MASK
    if kind not in (spec.NOTE_ON, spec.NOTE_OFF):
        return None
    return (r.data[0] & spec.CHANNEL_MASK, r.data[1]), kind == spec.NOTE_ON and r.data[2] > 0


def _count_note(balance: dict[tuple[int, int], int], key: tuple[int, int], on: bool) -> bool:
    """Count a note_on up or a note_off down for `key`; True when that off ended it."""
    if on:
        balance[key] += 1
    elif balance[key] > 0:
        balance[key] -= 1
        return balance[key] == 0
    return False


def hanging_notes(records: Iterable[DumpRecord], channels: Iterable[int]) -> int:
    """Keys left sounding at the end: note_ons without their note_off (CC 123 not counted)."""
    wanted = set(channels)
    balance: dict[tuple[int, int], int] = defaultdict(int)
    for r in records:
        change = _note_change(r, wanted)
        if change is None:
            continue
        _count_note(balance, *change)
    return sum(balance.values())


@dataclass(frozen=True, slots=True)
class StopRelease:
    sounding: int  # keys sounding when the Stop arrived
    all_off_ms: float  # Stop to the last of their note_offs (0 when none were sounding)
    released: bool  # every one of them got its note_off


def stop_release(records: Sequence[DumpRecord], rate: int,
                 channels: Iterable[int]) -> StopRelease:
    """How long after the first Stop every key then sounding (on `channels`) was let go."""
    wanted = set(channels)
    balance: dict[tuple[int, int], int] = defaultdict(int)
    stop_frame: int | None = None
    last_off = 0
    for r in records:
        if stop_frame is None and r.data == (spec.STOP,):
            stop_frame = r.frame
            balance = defaultdict(int, {k: v for k, v in balance.items() if v > 0})
            sounding = set(balance)
            continue
        change = _note_change(r, wanted)
        if change is None:
            continue
        ended = _count_note(balance, *change)
        if ended and stop_frame is not None and change[0] in sounding:
            last_off = max(last_off, r.frame)
    if stop_frame is None:
        raise ValueError("no Stop in the recording")
    held = sum(1 for k in sounding if balance[k] > 0)
    delay = 1000.0 * (last_off - stop_frame) / rate if sounding and last_off else 0.0
    return StopRelease(len(sounding), round(max(delay, 0.0), 3), held == 0)


@dataclass
class Matched:
    errors_s: list[float]  # received minus ideal, per matched note
    dropped: int  # sent, never received
    doubled: int  # received more than once
    unmatched: int  # received, matching nothing sent
    beats: list[float] = field(default_factory=list)  # the sent beat of each error
    arrivals: list[float] = field(default_factory=list)  # when each matched note came (s)

    def after_start(self) -> list[float]:
        """The errors without the first step's notes: those sound on the very tick that
        tells a follower the song has started, so nobody can send them ahead of it."""
        return [e for e, b in zip(self.errors_s, self.beats, strict=True) if b >= 0.25]


def match_notes(sent_beats: Sequence[Note], received: Sequence[Note], grid: Grid) -> Matched:
    """Match received notes to sent ones (`Note.t` holding the beat) by key and time."""
    half_step = grid.tick_s * spec.CLOCK_PPQN / 8.0  # half a 16th
    by_key: dict[tuple[int, int], list[tuple[float, int]]] = defaultdict(list)
    for i, note in enumerate(sent_beats):
        by_key[(note.channel, note.pitch)].append((grid.time_of(note.t), i))
    hits = [0] * len(sent_beats)
    errors: list[float] = []
    beats: list[float] = []
    arrivals: list[float] = []
    unmatched = 0
    for note in received:
        near = [c for c in by_key.get((note.channel, note.pitch), [])
                if abs(note.t - c[0]) <= half_step]
        # a sent note not matched yet first: the same key sent twice at one moment (a
        # re-struck melody note quantised onto one 16th) is two notes, not one doubled
        best = min(near, key=lambda c: (hits[c[1]] > 0, abs(note.t - c[0])), default=None)
        if best is None:
            unmatched += 1
            continue
        hits[best[1]] += 1
        if hits[best[1]] == 1:
            errors.append(note.t - best[0])
            beats.append(sent_beats[best[1]].t)
            arrivals.append(note.t)
    return Matched(errors, hits.count(0), sum(1 for h in hits if h > 1), unmatched, beats,
                   arrivals)


def own_tick_errors(matched: Matched, grid: Grid) -> list[float]:
    """Each matched note's error against the tick that carried its 16th, as it arrived: the
    reading of "the grid fitted to the received clock" where every received tick is a grid
    point. It charges a follower with each tick's jitter, which `Grid.time_of` averages
    away; notes off the tick grid, or past the last tick, are left out."""
    return tick_errors(matched, grid.times)


def fitted_errors(matched: Matched, grid: Grid) -> list[float]:
    """Each matched note's error against its tick on the noise-model grid (`fitted_ticks`)."""
    return tick_errors(matched, grid.fitted)


def tick_errors(matched: Matched, times: Sequence[float]) -> list[float]:
    """Each matched note on a tick, against `times[tick]`."""
    errors = []
    for arrival, beat in zip(matched.arrivals, matched.beats, strict=True):
        k = beat * spec.CLOCK_PPQN
        if k != round(k) or not 0 <= k < len(times):
            continue
        errors.append(arrival - times[round(k)])
    return errors


def error_stats(errors_s: Sequence[float]) -> dict[str, float]:
    """Signed mean (a constant offset, what latency compensation would remove) and the
    p50, p99 and max of the absolute error, in ms."""
    if not errors_s:
        return {"notes": 0, "mean_ms": math.nan, "p50_ms": math.nan, "p99_ms": math.nan,
                "max_ms": math.nan}
    ms = sorted(abs(e) * 1000.0 for e in errors_s)
    return {
        "notes": len(ms),
        "mean_ms": round(math.fsum(errors_s) * 1000.0 / len(errors_s), 3),
        "p50_ms": round(percentile(ms, 50.0), 3),
        "p99_ms": round(percentile(ms, 99.0), 3),
        "max_ms": round(ms[-1], 3),
    }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
