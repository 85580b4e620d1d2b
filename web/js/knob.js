// A knob: drag up/down (mouse or touch), wheel, or keys (arrows, Page Up/Down, Home/End).
// It is an ARIA slider, so screen readers and the keyboard get the same control. Changes
// while dragging are sent at most every 80 ms, and the last value always goes out.

import { followPointer } from "./pointer.js";
import { throttled } from "./throttle.js";

const SEND_EVERY_MS = 80;
const DRAG_PIXELS = 160; // a full sweep
const SETTLE_MS = 400; // after a turn, the engine's echo of it has surely arrived

export class Knob {
  constructor(element, { min, max, step, value, format, onChange }) {
    this.el = element;
    this.min = min;
    this.max = max;
    this.step = step;
    this.format = format || ((v) => String(v));
    this.onChange = onChange;
    this.value = value;
    this.touched = -Infinity;
    this.send = throttled(() => this.onChange(this.value), SEND_EVERY_MS);
    this.el.setAttribute("role", "slider");
    this.el.tabIndex = 0;
    this.el.addEventListener("pointerdown", (e) => this.grab(e));
    this.el.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    this.el.addEventListener("keydown", (e) => this.key(e));
    this.render();
  }

  setRange(min, max) {
    this.min = min;
    this.max = max;
    this.render();
  }

  // A value from the engine: shown, not sent back. Ignored while the player is turning the
  // knob (a state sent before our latest value arrived would otherwise undo the turn).
  show(value) {
    if (this.dragging || performance.now() - this.touched < SETTLE_MS) return;
    this.value = value;
    this.render();
  }

  set disabled(off) {
    this.el.setAttribute("aria-disabled", String(off));
  }

  get disabled() {
    return this.el.getAttribute("aria-disabled") === "true";
  }

  change(value) {
    if (this.disabled) return;
    const snapped = Math.round(value / this.step) * this.step;
    const v = Math.min(this.max, Math.max(this.min, Number(snapped.toFixed(6))));
    if (v === this.value) return;
    this.value = v;
    this.touched = performance.now();
    this.render();
    this.send();
  }

  grab(event) {
    if (this.disabled) return;
    event.preventDefault();
    this.dragging = true;
    const startY = event.clientY;
    const startValue = this.value;
    const move = (e) => {
      const span = this.max - this.min;
      this.change(startValue + ((startY - e.clientY) / DRAG_PIXELS) * span);
    };
    followPointer(this.el, event, move, () => {
      this.dragging = false;
    });
  }

  wheel(event) {
    event.preventDefault();
    this.change(this.value + (event.deltaY < 0 ? this.step : -this.step));
  }

  key(event) {
    const big = (this.max - this.min) / 10;
    const moves = {
      ArrowUp: this.step, ArrowRight: this.step, ArrowDown: -this.step, ArrowLeft: -this.step,
      PageUp: big, PageDown: -big,
    };
    if (event.key in moves) this.change(this.value + moves[event.key]);
    else if (event.key === "Home") this.change(this.min);
    else if (event.key === "End") this.change(this.max);
    else return;
    event.preventDefault();
    event.stopPropagation();
  }

  render() {
    const share = (this.value - this.min) / (this.max - this.min || 1);
    this.el.style.setProperty("--share", String(Math.min(1, Math.max(0, share))));
    this.el.setAttribute("aria-valuemin", String(this.min));
    this.el.setAttribute("aria-valuemax", String(this.max));
    this.el.setAttribute("aria-valuenow", String(this.value));
    this.el.setAttribute("aria-valuetext", this.format(this.value));
    const readout = this.el.querySelector(".readout");
    if (readout) readout.textContent = this.format(this.value);
  }
}
