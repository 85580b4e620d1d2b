"""The pedal's hardware controls through gpiozero: a footswitch, knobs on an MCP3008, an LED.

- Footswitch: a tap plays or stops; a hold (`hold_s`) does the configured action: "mute"
  toggles the first part's mute, "tap_tempo" listens for taps (2 or more, each 0.2 to 2 s
  apart; it gives up TAP_WINDOW_S after the last) and sets the tempo from their median.
  Held on to `shutdown_s` (as Pisound's button), it asks for a clean shutdown: `on_shutdown`
  (the pedal stops, saves the take, then runs the configured command).
- Knobs: each MCP3008 channel in the config steers one control of the first part, or the
  timbre morph, through the same knob mapping as a MIDI CC (musegen.engine.cc_map: a knob
  sweeps exactly the model's range), from the next bar. A knob is read POLL_HZ times a
  second and acts when it moves by more than a CC step (so a noisy pot does not chatter).
- LED: on while playing, a slow blink (1 Hz) while waiting for a MIDI clock, a fast blink
  (5 Hz) on an error (the engine's dispatch stopped, an output failing), off when stopped.

On a machine without GPIO gpiozero cannot make the devices: `open_controls` says why in one
line and the pedal runs with MIDI controls only. `pin_factory` is gpiozero's: the tests pass
its MockFactory.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from bridges.pedal.config import Controls
from musegen.engine import CCBinding, LiveSession
from musegen.engine.cc_map import ANY_CHANNEL, MORPH_CONTROLS

logger = logging.getLogger(__name__)

POLL_HZ = 20.0
TAP_WINDOW_S = 2.5  # tap tempo ends this long after the last tap
TAP_MIN_S, TAP_MAX_S = 0.2, 2.0  # 300 to 30 BPM
KNOB_STEPS = 127  # a knob moves in the steps of a MIDI CC
ERROR_SHOWN_S = 2.0  # an output's failure blinks the LED this long at least


class PedalControls:
    """The footswitch, knobs and LED of `controls`, steering `session`."""

    def __init__(self, session: LiveSession, controls: Controls, *,
                 pin_factory: Any = None, now: Callable[[], float] = time.monotonic,
                 on_shutdown: Callable[[], None] | None = None) -> None:
        from gpiozero import LED, MCP3008, Button  # lazily: only the pedal needs it

        self.session = session
        self.config = controls
        self.now = now
        self.part = next(iter(session.parts))
        self.taps: list[float] = []
        self.tapping_until = -1.0
        self._held = False
        self.on_shutdown = on_shutdown
        self.shutting_down = False
        self.button = (None if controls.footswitch is None else
                       Button(controls.footswitch, hold_time=controls.hold_s,
                              pin_factory=pin_factory))
        self.led = None if controls.led is None else LED(controls.led, pin_factory=pin_factory)
        self.knobs = {name: MCP3008(channel=channel, pin_factory=pin_factory)
                      for name, channel in controls.pots.items()}
        self._last: dict[str, float] = {}
        self._errors_seen = session.output_errors
        self._error_until = -1.0
        self._started = False  # the engine ran once: its stopping after that is an error
        if self.button is not None:
            self.button.hold_repeat = controls.shutdown_s > 0  # to see a long press through
            self.button.when_held = self._on_hold
            self.button.when_released = self._on_release
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="musegen-pedal", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        for device in (self.button, self.led, *self.knobs.values()):
            if device is not None:
                device.close()

    # ------------------------------------------------------------------ the footswitch
    def _on_hold(self) -> None:
        pressed_for = self.button.active_time if self.button is not None else None
        if self.config.shutdown_s and (pressed_for or 0.0) >= self.config.shutdown_s:
            if not self.shutting_down and self.on_shutdown is not None:
                self.shutting_down = True
                self.on_shutdown()
            return
        if self._held:  # the same hold, seen again on its way to a shutdown
            return
        self._held = True
        if self.config.hold == "mute":
            muted = self.session.part(self.part).controls.mute
            self.session.set_controls(self.part, mute=not muted)
        else:
            self.taps, self.tapping_until = [], self.now() + TAP_WINDOW_S

    def _on_release(self) -> None:
        if self._held:  # the end of a hold, not a tap
            self._held = False
            return
        t = self.now()
        if t < self.tapping_until:
            self._tap(t)
        elif self.session.clock.playing:
            self.session.stop()
        else:
            self.session.play()

    def _tap(self, t: float) -> None:
        self.taps.append(t)
        self.tapping_until = t + TAP_WINDOW_S
        gaps = [b - a for a, b in zip(self.taps, self.taps[1:], strict=False)
                if TAP_MIN_S <= b - a <= TAP_MAX_S]
        if gaps:
            self.session.set_tempo(round(60.0 / statistics.median(gaps), 1))

    # ------------------------------------------------------------------ knobs and LED
    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(1.0 / POLL_HZ):
            try:
                self.read_knobs()
            except Exception:  # a knob misread must not end the pedal
                logger.exception("reading the knobs failed")
            tick += 1
            self._show(tick)

    def read_knobs(self) -> None:
        """Apply every knob that moved by more than a step (the poll thread's work)."""
        for name, knob in self.knobs.items():
            value = float(knob.value)
            if abs(value - self._last.get(name, -1.0)) * KNOB_STEPS < 1.0:
                continue
            self._last[name] = value
            self._apply(name, value)

    def _apply(self, control: str, knob: float) -> None:
        if control in MORPH_CONTROLS:
            x, y = self.session.morph
            x, y = (knob, y) if MORPH_CONTROLS[control] == "x" else (x, knob)
            self.session.set_morph(x, y)
            return
        binding = CCBinding(ANY_CHANNEL, -1, self.part, control)
        meta = self.session.part(self.part).meta
        self.session.set_controls(self.part, **{control: binding.value(round(knob * 127), meta)})

    def status(self) -> str:
        """What the LED shows: "error", "playing", "waiting" (for a clock) or "stopped"."""
        session, clock = self.session, self.session.clock
        errors = session.output_errors
        if errors > self._errors_seen:  # an output failed: shown for ERROR_SHOWN_S at least
            self._errors_seen, self._error_until = errors, self.now() + ERROR_SHOWN_S
        if self.now() < self._error_until or (self._started and not session.running):
            return "error"
        if clock.playing:
            return "playing"
        return "waiting" if clock.kind == "midi" else "stopped"

    def _show(self, tick: int) -> None:
        if self.led is None:
            return
        self._started = self._started or self.session.running
        lit = led_lit(self.status(), tick)
        if lit and not self.led.is_lit:
            self.led.on()
        elif not lit and self.led.is_lit:
            self.led.off()


def led_lit(status: str, tick: int) -> bool:
    """The LED at poll `tick` (POLL_HZ a second) for `status`."""
    if status == "playing":
        return True
    if status == "waiting":  # 1 Hz
        return tick % int(POLL_HZ) < POLL_HZ / 2
    if status == "error":  # 5 Hz
        return tick % 4 < 2
    return False


def open_controls(session: LiveSession, controls: Controls, say: Callable[[str], None],
                  pin_factory: Any = None, on_shutdown: Callable[[], None] | None = None
                  ) -> PedalControls | None:
    """The controls, or None (said in one line) where there is no GPIO."""
    try:
        with warnings.catch_warnings():  # gpiozero warns per factory it tries; one line here
            warnings.simplefilter("ignore")
            return PedalControls(session, controls, pin_factory=pin_factory,
                                 on_shutdown=on_shutdown)
    except Exception as exc:  # gpiozero raises its own kinds for a machine without GPIO
        say(f"musegen: no GPIO here ({type(exc).__name__}: {exc}): MIDI controls only")
        return None
