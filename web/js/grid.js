// The step grid: 9 drum lanes x 16 steps, twice: the bar sounding now and the next one.
// Cells are buttons (mouse, touch, Enter/Space); the arrow keys move between them (one tab
// stop for the whole grid). A hit shows on the step its onset rounds to, as the server
// reads it, so toggling what you see edits what you hear.

const SHORT = {
  kick: "KICK", snare: "SNARE", closed_hihat: "C.HAT", open_hihat: "O.HAT", low_tom: "LO T",
  mid_tom: "MID T", high_tom: "HI T", crash: "CRASH", ride: "RIDE",
};

export function stepOf(beat, barStart, steps, stepsPerBeat) {
  const step = Math.floor((beat - barStart) * stepsPerBeat + 0.5);
  return Math.min(steps - 1, Math.max(0, step));
}

export class Grid {
  constructor(container, { lanes, laneNames, steps, beatsPerBar, onToggle }) {
    this.lanes = lanes;
    this.steps = steps;
    this.stepsPerBeat = steps / beatsPerBar;
    this.onToggle = onToggle;
    this.cells = [[], []]; // [grid][lane][step]
    this.labels = [];
    this.bars = [null, null];
    this.focus = { grid: 1, lane: 0, step: 0 };
    container.replaceChildren(...[0, 1].map((g) => this.build(g, laneNames)));
    this.setFocus(this.focus, false);
  }

  build(g, laneNames) {
    const section = document.createElement("section");
    section.className = `bar-grid ${g === 0 ? "now" : "next"}`;
    const title = document.createElement("h2");
    title.className = "bar-title";
    this.labels[g] = title;
    const table = document.createElement("div");
    table.className = "cells";
    table.setAttribute("role", "grid");
    table.style.setProperty("--steps", this.steps);
    this.lanes.forEach((pitch, lane) => {
      const name = document.createElement("div");
      name.className = "lane-name";
      name.textContent = SHORT[laneNames[lane]] || laneNames[lane];
      table.append(name);
      this.cells[g][lane] = [];
      for (let step = 0; step < this.steps; step++) {
        const cell = document.createElement("button");
        cell.className = `cell${step % 4 === 0 ? " beat" : ""}`;
        cell.tabIndex = -1;
        cell.dataset.grid = g;
        cell.dataset.lane = lane;
        cell.dataset.step = step;
        cell.setAttribute("aria-label", `${laneNames[lane]} step ${step + 1}`);
        cell.setAttribute("aria-pressed", "false");
        cell.addEventListener("click", () => this.toggle(g, lane, step));
        cell.addEventListener("keydown", (e) => this.key(e));
        table.append(cell);
        this.cells[g][lane][step] = cell;
      }
    });
    section.append(title, table);
    return section;
  }

  // Show bar message `bar` (or nothing yet) as grid g, numbered `index`.
  show(g, index, bar) {
    this.bars[g] = { index, bar };
    this.labels[g].textContent = `${g === 0 ? "Now" : "Next"} · bar ${index + 1}`;
    const velocity = this.lanes.map(() => new Array(this.steps).fill(0));
    if (bar) {
      for (const note of bar.notes) {
        const lane = this.lanes.indexOf(note.pitch);
        if (lane < 0) continue;
        const step = stepOf(note.beat, bar.start_beat, this.steps, this.stepsPerBeat);
        velocity[lane][step] = Math.max(velocity[lane][step], note.velocity);
      }
    }
    velocity.forEach((row, lane) => row.forEach((v, step) => {
      const cell = this.cells[g][lane][step];
      cell.classList.toggle("on", v > 0);
      cell.style.setProperty("--vel", (v / 127).toFixed(2));
      cell.setAttribute("aria-pressed", String(v > 0));
    }));
  }

  playhead(step) {
    this.cells[0].forEach((row) => row.forEach((cell, s) => {
      cell.classList.toggle("head", s === step);
    }));
  }

  toggle(g, lane, step) {
    const shown = this.bars[g];
    if (!shown) return;
    const on = this.cells[g][lane][step].classList.contains("on");
    this.setFocus({ grid: g, lane, step }, true);
    this.onToggle({ bar: shown.index, lane, pitch: this.lanes[lane], step, on });
  }

  setFocus({ grid, lane, step }, move) {
    const old = this.cells[this.focus.grid][this.focus.lane][this.focus.step];
    old.tabIndex = -1;
    this.focus = { grid, lane, step };
    const cell = this.cells[grid][lane][step];
    cell.tabIndex = 0;
    if (move) cell.focus();
  }

  key(event) {
    let { grid, lane, step } = this.focus;
    const lanes = this.lanes.length;
    switch (event.key) {
      case "ArrowLeft": step = (step + this.steps - 1) % this.steps; break;
      case "ArrowRight": step = (step + 1) % this.steps; break;
      case "ArrowUp":
        if (lane === 0 && grid === 1) { grid = 0; lane = lanes - 1; } else lane = Math.max(0, lane - 1);
        break;
      case "ArrowDown":
        if (lane === lanes - 1 && grid === 0) { grid = 1; lane = 0; } else lane = Math.min(lanes - 1, lane + 1);
        break;
      default: return;
    }
    event.preventDefault();
    this.setFocus({ grid, lane, step }, true);
  }
}
