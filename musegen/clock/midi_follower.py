"""Follow an external MIDI clock: 0xF8 ticks (24 ppqn) and the realtime transport bytes.

Feed it the bytes with their arrival timestamps; it owns no port and reads no clock. The
tempo and phase come from `TickLineFit` (a sliding least-squares line with tempo-change
detection and an outlier guard, see musegen/clock/tempo_fit.py for the why), so `beat_at`
and `time_at` extrapolate between ticks and ahead of them for the scheduler.

Position follows the MIDI rules: Start plays from 0 and the first tick after it *is* beat 0;
Continue resumes where Stop left off (the count of ticks played); a song position pointer
(in MIDI beats, 16ths = 6 clocks) sets where the next start-of-run tick lands. Ticks while
stopped still track the tempo (most masters send clock all the time).

Clock loss: `check(t)`, called by the engine, and `feed` itself when a tick arrives after a
long gap, declare the clock lost once no tick came for `timeout_intervals` periods. Then
`on_loss="stop"` stops the transport (a Stop event), `on_loss="hold"` keeps free-running at
the last tempo (the fitted line simply continues) and, when ticks return, re-locks by
counting the ticks the master must have sent meanwhile, never moving the position backwards.

`feed` is the per-tick hot path: no logging, no allocation beyond an event on a transport
change, O(window) float work. Garbage is counted (`ignored`, `malformed`), never raised.
"""

from __future__ import annotations

import math
from typing import Literal

from musegen.clock.base import (
    Clock,
    ClockKind,
    ClockLost,
    ClockRegained,
    Continue,
    SongPosition,
    Start,
    Stop,
    TempoEvent,
    valid_time,
)
from musegen.clock.internal import check_bpm
from musegen.clock.tempo_fit import TickLineFit
from musegen.music.midi_spec import (
    CLOCK,
    CLOCK_PPQN,
    CLOCKS_PER_MIDI_BEAT,
    CONTINUE,
    SONG_POSITION,
    START,
    STATUS_BIT,
    STOP,
)

TEMPO_EVENT_MIN_TICKS = 6  # fewer ticks give too noisy a tempo to announce
ON_TICK_EPS = 1e-6  # ticks: a beat this close to a tick is on it (a 16th is 6.0, not 5.99..)

OnLoss = Literal["stop", "hold"]


def bpm_period(bpm: float) -> float:
    """Seconds between MIDI clock ticks at `bpm`."""
    return 60.0 / (bpm * CLOCK_PPQN)


class MidiClockFollower(Clock):
    def __init__(
        self,
        initial_bpm: float = 120.0,
        *,
        window: int = 96,
        timeout_intervals: float = 4.0,
        on_loss: OnLoss = "stop",
        tempo_event_threshold: float = 0.005,
    ) -> None:
        super().__init__()
        if on_loss not in ("stop", "hold"):
            raise ValueError(f"on_loss must be 'stop' or 'hold', not {on_loss!r}")
        self._fit = TickLineFit(bpm_period(check_bpm(initial_bpm)), window)
        self.timeout_intervals = timeout_intervals
        self.on_loss: OnLoss = on_loss
        self.tempo_event_threshold = tempo_event_threshold
        self.ignored = 0  # bytes that are not clock/transport messages
        self.malformed = 0  # bad song position data, unusable timestamps
        self._playing = False
        self._position = 0.0  # while stopped: the held position, where the next run starts
        self._run_beat0 = 0.0  # beat of the first tick of the current run
        self._run_k0: int | None = None  # tick index of that first tick, None until it comes
        self._floor = -math.inf  # beat_at never goes below this from `_floor_t` on
        self._floor_t = math.inf
        self._lost = False
        self._transport_t = -math.inf  # when the last start/continue/jump arrived
        self._reported_bpm = float(initial_bpm)

    # -- Clock ------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def tempo_bpm(self) -> float:
        return 60.0 / (self._fit.period * CLOCK_PPQN)

    @property
    def kind(self) -> ClockKind:
        return "midi"

    @property
    def tick_follower(self) -> MidiClockFollower:
        return self

    @property
    def may_go_silent(self) -> bool:
        return True

    @property
    def locked(self) -> bool:
        """Ticks are arriving (at least one seen, and not declared lost since)."""
        return self._fit.count > 0 and not self._lost

    @property
    def tempo_changes(self) -> int:
        """Tempo steps the estimator detected (each shrank its window)."""
        return self._fit.changes

    def beat_at(self, t: float) -> float:
        if not self._playing:
            return self._position
        if self._run_k0 is None:  # started, waiting for the first tick
            return self._run_beat0
        beat = self._line_beat(self._run_k0, t)
        if t >= self._floor_t and beat < self._floor:
            beat = self._floor
        return max(beat, self._run_beat0)

    def time_at(self, beat: float) -> float:
        if not self._playing or self._run_k0 is None:
            return math.inf
        index, t_fit, period = self._fit.line  # one consistent line (read from any thread)
        ticks = (beat - self._run_beat0) * CLOCK_PPQN - (index - self._run_k0)
        return t_fit + ticks * period

    @property
    def walk_share(self) -> float:
        """The walk's share (0..1) of the tick-interval noise (musegen/clock/wander.py)."""
        return self._fit.walk.share

    @property
    def steady_phase(self) -> bool:
        """The ticks' drift over a beat says they keep to a line (musegen/clock/wander.py);
        False while too few have come to tell, and for a phase that wanders."""
        return self._fit.walk.steady

    def tick_anchored_time_at(self, beat: float) -> float:
        """When `beat` is due counted from the *arrival* of the tick at or before it, not from
        the fitted line: inf while that tick has not arrived.

        The line places a beat where it is heard, for a steady clock and for one whose
        phase wanders alike (see tempo_fit.py and wander.py), and it knows when the next tick
        is due, so it can send ahead. Anchoring on arrival instead puts each note a fixed
        delay after its own tick, wherever that tick lands: for a rig that wants exactly that.
        """
        if not self._playing or self._run_k0 is None:
            return math.inf
        (index, t_last), period = self._fit.arrival, self._fit.line[2]
        ticks = (beat - self._run_beat0) * CLOCK_PPQN - (index - self._run_k0)
        if ticks >= 1.0 - ON_TICK_EPS:  # its tick (index + 1 or later) is still to come
            return math.inf
        if abs(ticks) < ON_TICK_EPS:  # on this tick, but for the rounding of beat arithmetic
            ticks = 0.0
        return t_last + ticks * period

    # -- input --------------------------------------------------------------------------------

    def feed(self, status: int, t: float, data: bytes = b"") -> None:
        """One realtime/common message byte `status` (with its data) that arrived at `t`."""
        if not valid_time(t):
            self.malformed += 1
        elif status == CLOCK:
            self._tick(t)
        elif status == START:
            self._start(t)
        elif status == CONTINUE:
            self._continue(t)
        elif status == STOP:
            self._stop(t)
        elif status == SONG_POSITION:
            self._song_position(t, data)
        else:
            self.ignored += 1

    def check(self, t: float) -> None:
        """Declare the clock lost if no tick came for `timeout_intervals` periods by `t`."""
        if valid_time(t) and self._overdue(t):
            self._declare_loss(t)

    def overdue_at(self) -> float:
        """When `check` will declare the clock lost if no tick comes first (inf: not armed).

        Counted from the last tick or a later start/continue, since a master may send no
        clock while stopped and needs a moment after Start.
        """
        fit = self._fit
        if self._lost or fit.count < 2:  # one tick gives no period to time out against
            return math.inf
        return self._silent_since() + self.timeout_intervals * fit.period

    # -- ticks --------------------------------------------------------------------------------

    def _tick(self, t: float) -> None:
        fit = self._fit
        if self._lost or self._gap(t):
            self._relock(t)
        else:  # a tick dropped inside the timeout still counts as one: MIDI has no redundancy
            # (the late-looking tick gets weight 0 and the floor holds the position meanwhile)
            if self._playing and self._run_k0 is not None:
                self._raise_floor(t)
            fit.add(t)
        if self._playing and self._run_k0 is None:
            self._run_k0 = fit.index
        if self.on_tick is not None:
            self.on_tick()
        if fit.count >= TEMPO_EVENT_MIN_TICKS:
            self._maybe_report_tempo(t)

    def _gap(self, t: float) -> bool:
        """Too long since the last tick for the line to span it: the fit must restart."""
        fit = self._fit
        return fit.count >= 2 and t - fit.t_last > self.timeout_intervals * fit.period

    def _overdue(self, t: float) -> bool:
        """Silent too long (see `overdue_at`)."""
        return t > self.overdue_at()

    def _silent_since(self) -> float:
        return max(self._fit.t_last, self._transport_t)

    def _relock(self, t: float) -> None:
        """Ticks are back after a gap: count the ones the master sent while we heard none."""
        fit = self._fit
        was_lost = self._lost
        if not was_lost and self._overdue(t):  # the loss is noticed here, not by check()
            self._declare_loss(self.overdue_at())
            was_lost = True
        if self._playing and self._run_k0 is not None:
            self._raise_floor(t)
        steps = max(1, round((t - fit.t_fit) / fit.period))
        fit.restart(fit.index + steps, t)
        self._lost = False
        if was_lost:
            self._emit(ClockRegained(t, self.beat_at(t)))

    def _declare_loss(self, t: float) -> None:
        self._lost = True
        self._emit(ClockLost(t, self.beat_at(t), self.on_loss))
        if self.on_loss == "stop":
            self._stop(t)

    def _raise_floor(self, t: float) -> None:
        """Before the line moves, remember where it stood at `t`: positions never go back."""
        assert self._run_k0 is not None
        self._floor = max(self._floor, self._line_beat(self._run_k0, t))
        self._floor_t = t

    def _line_beat(self, run_k0: int, t: float) -> float:
        index, t_fit, period = self._fit.line
        ticks = index - run_k0 + (t - t_fit) / period
        return self._run_beat0 + ticks / CLOCK_PPQN

    def _maybe_report_tempo(self, t: float) -> None:
        bpm = self.tempo_bpm
        if abs(bpm - self._reported_bpm) > self.tempo_event_threshold * self._reported_bpm:
            self._reported_bpm = bpm
            self._emit(TempoEvent(t, bpm))

    # -- transport ----------------------------------------------------------------------------

    def _start(self, t: float) -> None:
        self._begin_run(t, 0.0)
        self._emit(Start(t))

    def _continue(self, t: float) -> None:
        if self._playing:  # a repeated Continue must not rewind the run
            return
        self._begin_run(t, self._position)
        self._emit(Continue(t, self._position))

    def _stop(self, t: float) -> None:
        if not self._playing:
            return
        if self._run_k0 is not None:  # ticks played in this run, each 1/24 beat
            played = self._fit.index - self._run_k0 + 1
            self._position = self._run_beat0 + played / CLOCK_PPQN
        else:
            self._position = self._run_beat0
        self._playing = False
        self._emit(Stop(t, self._position))

    def _song_position(self, t: float, data: bytes) -> None:
        if len(data) != 2 or data[0] >= STATUS_BIT or data[1] >= STATUS_BIT:
            self.malformed += 1
            return
        midi_beats = data[0] | (data[1] << 7)
        beat = midi_beats * CLOCKS_PER_MIDI_BEAT / CLOCK_PPQN
        if self._playing:  # a jump while running: the next tick lands on `beat`
            self._begin_run(t, beat)
        else:
            self._position = beat
        self._emit(SongPosition(t, beat))

    def _begin_run(self, t: float, beat: float) -> None:
        self._transport_t = t
        self._position = beat
        self._run_beat0 = beat
        self._run_k0 = None
        self._playing = True
        self._floor, self._floor_t = -math.inf, math.inf
