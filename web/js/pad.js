// The timbre pad: a square where a dot's x/y (0..1 each, y up) is the synth's morph between
// its four corner instruments. Drag the dot (mouse or touch) or use the arrow keys when it
// is focused (Shift: fine steps). Moves while dragging go out at most every 30 ms, and the
// last one always goes out; the engine's own position is shown when nobody here is moving.

import { followPointer } from "./pointer.js";
import { throttled } from "./throttle.js";

const SEND_EVERY_MS = 30;
const SETTLE_MS = 400; // after a move, the engine's echo of it has surely arrived
const STEP = 0.05;
const FINE_STEP = 0.01;

const clamp = (v) => Math.min(1, Math.max(0, Number(v.toFixed(3))));

export class Pad {
  constructor(element, { onChange }) {
    this.el = element;
    this.dot = element.querySelector(".dot");
    this.onChange = onChange;
    this.x = 0;
    this.y = 0;
    this.dragging = false;
    this.touched = -Infinity;
    this.send = throttled(() => this.onChange(this.x, this.y), SEND_EVERY_MS);
    this.el.tabIndex = 0;
    this.el.addEventListener("pointerdown", (e) => this.grab(e));
    this.el.addEventListener("keydown", (e) => this.key(e));
    this.render();
  }

  // A position from the engine: shown, not sent back; ignored while the player moves it
  // here (a state sent before our latest move arrived would otherwise pull the dot back).
  show(x, y) {
    if (this.dragging || performance.now() - this.touched < SETTLE_MS) return;
    this.x = x;
    this.y = y;
    this.render();
  }

  change(x, y) {
    const nx = clamp(x);
    const ny = clamp(y);
    if (nx === this.x && ny === this.y) return;
    this.x = nx;
    this.y = ny;
    this.touched = performance.now();
    this.render();
    this.send();
  }

  at(event) {
    const box = this.el.getBoundingClientRect();
    this.change((event.clientX - box.left) / box.width, 1 - (event.clientY - box.top) / box.height);
  }

  grab(event) {
    event.preventDefault();
    this.dragging = true;
    this.at(event);
    followPointer(this.el, event, (e) => this.at(e), () => {
      this.dragging = false;
      this.touched = performance.now();
    });
  }

  key(event) {
    const d = event.shiftKey ? FINE_STEP : STEP;
    const moves = { ArrowLeft: [-d, 0], ArrowRight: [d, 0], ArrowUp: [0, d], ArrowDown: [0, -d] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    event.stopPropagation();
    this.change(this.x + move[0], this.y + move[1]);
  }

  render() {
    this.el.style.setProperty("--x", String(this.x));
    this.el.style.setProperty("--y", String(this.y));
    this.el.dataset.x = String(this.x);
    this.el.dataset.y = String(this.y);
    const text = `x ${this.x.toFixed(2)}, y ${this.y.toFixed(2)}`;
    // a slider to assistive tech (there is no 2-D role): the value is x, the text says both
    this.el.setAttribute("aria-valuenow", String(this.x));
    this.el.setAttribute("aria-valuetext", text);
    const readout = this.el.parentElement.querySelector(".readout");
    if (readout) readout.textContent = text;
  }
}
