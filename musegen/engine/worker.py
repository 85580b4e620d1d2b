"""Keeps every part generated `lookahead_bars` ahead of the playing bar, off the dispatch thread.

While the clock is in bar c, bars up to c + lookahead_bars are queued, all parts bar by bar.
Why a whole bar ahead: a bar of the shipped LSTM takes 20-50 ms on one CPU core, and a
busy machine can stall a thread for far longer; the dispatcher only ever reads the queue.

Live changes: when a part's controls (or model) change, its queued bars that have not begun
are taken back and generated again, so a change made during bar c sounds from bar c + 1.
A bar that starts within `regen_margin_s` (or has begun) keeps the values it was made with:
regenerating it could not be ready in time. The model's stream simply continues (it heard
the taken-back bar as context), which costs nothing audible and needs no state snapshots.

Hooks, called on the generation thread: `bar_listeners` get every bar queued (a browser
shows and schedules bars ahead from them; a regenerated bar comes again and replaces the
first), and `poll_hooks` get the playing beat at each pass (player-input analysis).

`fill_until(beat)` does one synchronous pass (tests, or a caller with its own loop); `start()`
runs the same pass on a thread every `poll_s`, when woken by a flush, or by the earliest of
`deadline_hooks`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from musegen.clock import Clock
from musegen.engine.part import Part, RenderedBar
from musegen.engine.queue import EventQueue, PushResult
from musegen.generation.generator import MAX_TOKENS_PER_BAR

MAX_EVENTS_PER_BAR = 2 * MAX_TOKENS_PER_BAR  # a bar cannot hold more notes than tokens
# A pass every 30 ms: player-input policies decide a quarter bar ahead and controls wake the
# thread, so this only bounds how late a bar line or a phrase end is noticed. Each wake costs
# CPU (10 ms polls took 3.0-3.1 % of a core for drums + melody at 120 BPM, 50 ms 2.3-2.5 %).
POLL_S = 0.03
# Never wait less than this for a deadline: a deadline just past is run now, not spun on.
MIN_WAIT_S = 0.001
BAR_EPS = 1e-9  # a beat a hair before a bar line (float error: 3.9999999999) is that bar


class GenerationWorker:
    def __init__(
        self,
        parts: Sequence[Part],
        clock: Clock,
        queue: EventQueue,
        *,
        lookahead_bars: int = 1,
        now: Callable[[], float] = time.monotonic,
        regen_margin_s: float = 0.25,
        poll_s: float = POLL_S,
    ) -> None:
        if not parts:
            raise ValueError("a worker needs at least one part")
        if len({p.name for p in parts}) != len(parts):
            raise ValueError("part names must be unique")
        if len({p.beats_per_bar for p in parts}) != 1:
            raise ValueError("all parts must share one meter")
        if lookahead_bars < 0:
            raise ValueError("lookahead_bars must be >= 0")
        self.parts = tuple(parts)
        self.clock = clock
        self.queue = queue
        self.lookahead_bars = lookahead_bars
        self.regen_margin_s = regen_margin_s
        self.poll_s = poll_s
        self.beats_per_bar = parts[0].beats_per_bar
        self.dropped_bars = 0  # refused by a full queue (a bug or an absurd lookahead)
        self.error: BaseException | None = None  # what stopped the thread, if anything
        self._now = now
        self._epoch, restart = queue.restart()
        first = max(0, self.bar_at(restart)) if math.isfinite(restart) else 0
        self._next = {p.name: first for p in parts}  # next bar to generate, per part
        self._made_with = {p.name: p.version for p in parts}  # version of its last queued bar
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.bar_listeners: list[Callable[[Part, RenderedBar], None]] = []
        self.poll_hooks: list[Callable[[float], None]] = []
        # Times (on `now`'s clock) by which a pass is due, asked before each wait: e.g. when
        # a silent DAW clock must be declared lost, which must not wait for the next poll.
        self.deadline_hooks: list[Callable[[], float]] = []
        queue.on_flush = self.wake

    def bar_at(self, beat: float) -> int:
        return math.floor(beat / self.beats_per_bar + BAR_EPS)

    def next_bar(self, part: str) -> int:
        return self._next[part]

    # -- one pass -----------------------------------------------------------------------------

    def fill_until(self, beat: float) -> int:
        """Generate until every part is queued through the bar `lookahead_bars` after the one
        holding `beat`; returns the number of part-bars generated."""
        self._sync_epoch()
        for hook in self.poll_hooks:
            hook(beat)
        playing = self.bar_at(beat)
        for part in self.parts:
            if self._next[part.name] < playing:  # fell behind: the past is not worth making
                self._next[part.name] = playing
            self._take_back_stale(part, playing)
        target = playing + self.lookahead_bars
        made = 0
        while self.queue.space() >= MAX_EVENTS_PER_BAR:
            part = min(self.parts, key=self._next_of)
            bar = self._next[part.name]
            if bar > target:
                break
            result = self._push(part, part.render_bar(bar))
            if result == "stale":  # a jump flushed the queue meanwhile: start over there
                self._sync_epoch()
                continue
            made += 1
        return made

    def step(self) -> int:
        """One pass at the clock's current position."""
        beat = self.clock.beat_at(self._now())
        return self.fill_until(beat) if math.isfinite(beat) else 0

    def _next_of(self, part: Part) -> int:
        return self._next[part.name]

    def _push(self, part: Part, rendered: RenderedBar) -> PushResult:
        bar = rendered.bar
        end = (bar + 1) * self.beats_per_bar
        result = self.queue.push_bar(part.name, bar, rendered.events, end, self._epoch)
        if result == "full":
            self.dropped_bars += 1
        if result != "stale":
            self._next[part.name] = bar + 1
            self._made_with[part.name] = rendered.version
        if result == "ok":
            for listener in self.bar_listeners:
                listener(part, rendered)
        return result

    def _sync_epoch(self) -> None:
        epoch, restart = self.queue.restart()
        if epoch == self._epoch:
            return
        self._epoch = epoch
        first = max(0, self.bar_at(restart))
        for name in self._next:
            self._next[name] = first

    def _take_back_stale(self, part: Part, playing: int) -> None:
        """Regenerate `part`'s queued bars after the playing one if its controls changed."""
        name = part.name
        if part.version == self._made_with[name]:
            return
        for bar in range(playing + 1, self._next[name]):
            start = bar * self.beats_per_bar
            if self.clock.time_at(start) - self._now() < self.regen_margin_s:
                continue  # too close to regenerate in time: it keeps its old values
            if self.queue.retract(name, bar, start, self._epoch):
                self._next[name] = bar
            return

    # -- thread -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="musegen-generation", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (it finishes the bar in hand first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Run a pass now instead of at the next poll (after a jump or a control change)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # keep it for the owner: a dead thread must not be silent
                self.error = exc
                return
            self._wake.wait(self.wait_s())
            self._wake.clear()

    def wait_s(self) -> float:
        """How long the thread sleeps before its next pass (unless woken)."""
        wait = self.poll_s
        if self.deadline_hooks:
            now = self._now()
            for due in self.deadline_hooks:
                wait = min(wait, max(MIN_WAIT_S, due() - now))
        return wait
