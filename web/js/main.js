// The drum machine page: wires the connection, the timeline, the scheduler and the panel.
// The page is one more client of the engine: it shows and plays what the engine sends and
// sends back what the player changes; every page (and the DAW) follows the engine's clock.

import { Connection, nowSeconds } from "./connection.js";
import { Grid } from "./grid.js";
import { Knob } from "./knob.js";
import { MidiOut } from "./midi.js";
import { Pad } from "./pad.js";
import { Scheduler } from "./scheduler.js";
import { Timeline } from "./timeline.js";
import { Voices } from "./voices.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const wsScheme = location.protocol === "https:" ? "wss" : "ws";
const wsUrl = `${wsScheme}://${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ""}`;
const RESETS = new Set(["start", "stop", "locate", "clock_lost"]);

const conn = new Connection(wsUrl);
const timeline = new Timeline(conn);
const ctx = new AudioContext({ latencyHint: "interactive" });
const voices = new Voices(ctx);
const midi = new MidiOut();
const scheduler = new Scheduler(timeline, voices, midi);
const page = { hello: null, grid: null, part: null, shownBar: null, models: null };

const knobs = {
  tempo: new Knob($("tempo"), {
    min: 40, max: 240, step: 1, value: 120, format: (v) => `${v} bpm`,
    onChange: (bpm) => conn.send({ type: "tempo", bpm }),
  }),
  density: new Knob($("density"), {
    min: 0, max: 64, step: 1, value: 16, format: (v) => `${v}`,
    onChange: (density) => sendControls({ density }),
  }),
  temperature: new Knob($("temperature"), {
    min: 0.1, max: 2, step: 0.05, value: 1, format: (v) => v.toFixed(2),
    onChange: (temperature) => sendControls({ temperature }),
  }),
  swing: new Knob($("swing"), {
    min: 0, max: 1, step: 0.05, value: 0, format: (v) => `${Math.round(v * 100)}%`,
    onChange: (swing) => sendControls({ swing }),
  }),
};

// The synth's timbre: one position for the whole session, not a part's control.
const pad = new Pad($("timbre"), { onChange: (x, y) => conn.send({ type: "morph", x, y }) });

function sendControls(changes) {
  if (page.part) conn.send({ type: "controls", part: page.part, ...changes });
}

function partInfo() {
  const s = timeline.state;
  return s ? s.parts.find((p) => p.name === page.part) || null : null;
}

// -- messages from the engine -------------------------------------------------------------

conn.addEventListener("hello", ({ detail }) => {
  page.hello = detail;
  page.grid = new Grid($("grid"), {
    lanes: detail.drum_lanes, laneNames: detail.drum_lane_names, steps: detail.steps_per_bar,
    beatsPerBar: detail.steps_per_bar / 4, onToggle: toggleStep,
  });
  page.shownBar = null;
});

conn.addEventListener("state", ({ detail }) => {
  timeline.setState(detail);
  if (RESETS.has(detail.reason)) scheduler.reset();
  if (!page.part || !detail.parts.some((p) => p.name === page.part)) {
    const drums = detail.parts.find((p) => p.kind === "drums") || detail.parts[0];
    page.part = drums ? drums.name : null;
  }
  showState(detail);
});

conn.addEventListener("bar", ({ detail }) => {
  timeline.addBar(detail);
  page.shownBar = null; // redraw the grid on the next frame
});

conn.addEventListener("error", ({ detail }) => showMessage(detail.message));
conn.addEventListener("status", ({ detail }) => {
  const status = $("status");
  status.dataset.state = detail.state;
  const text = { connecting: "connecting…", connected: "connected",
    reconnecting: `offline · retrying in ${((detail.wait || 0) / 1000).toFixed(1)} s` };
  status.querySelector(".text").textContent = text[detail.state];
});

function showState(s) {
  const play = $("play");
  play.setAttribute("aria-pressed", String(s.playing));
  play.querySelector(".icon").textContent = s.playing ? "■" : "▶";
  play.querySelector(".label").textContent = s.playing ? "Stop" : "Play";
  const daw = s.clock !== "internal";
  knobs.tempo.disabled = daw;
  $("play").disabled = daw;
  $("rewind").disabled = daw;
  knobs.tempo.show(Math.round(s.tempo_bpm));
  $("clock-source").textContent = daw ? `DAW clock · ${s.tempo_bpm.toFixed(1)} bpm`
    : "internal clock";
  if (s.morph) pad.show(s.morph.x, s.morph.y);
  fillSelect($("part"), s.parts.map((p) => p.name), page.part);
  const part = partInfo();
  if (!part) return;
  const c = part.controls;
  knobs.density.setRange(part.density_range[0], part.density_range[1]);
  knobs.density.show(Math.round(c.density));
  knobs.temperature.show(c.temperature);
  knobs.swing.show(c.swing);
  fillSelect($("genre"), part.genres, c.genre);
  $("auto").setAttribute("aria-pressed", String(c.auto));
  $("mute").setAttribute("aria-pressed", String(c.mute));
  showModels(part);
}

function fillSelect(select, values, chosen) {
  const have = [...select.options].map((o) => o.value).join("\n");
  if (have !== values.join("\n")) {
    select.replaceChildren(...values.map((v) => new Option(v, v)));
  }
  if (chosen !== undefined && select.value !== chosen) select.value = chosen;
}

async function showModels(part) {
  if (page.models === null) {
    page.models = [];
    try {
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      const response = await fetch("/api/models", { headers });
      if (response.ok) page.models = await response.json();
    } catch { /* the menu then offers the playing model only */ }
  }
  const names = page.models.filter((m) => m.part === part.kind).map((m) => m.name);
  fillSelect($("model"), names.length ? names : [part.model], part.model);
}

function showMessage(text) {
  $("message").textContent = text;
  clearTimeout(showMessage.timer);
  showMessage.timer = setTimeout(() => { $("message").textContent = ""; }, 6000);
}

// -- what the player does ---------------------------------------------------------------

function toggleStep({ bar, step, pitch, on }) {
  if (!page.part) return;
  conn.send({ type: "step", part: page.part, bar, step, pitch, velocity: on ? 0 : 100 });
}

function togglePlay() {
  conn.send({ type: "transport", action: timeline.playing ? "stop" : "play" });
}

const pattern = (action) => page.part && conn.send({ type: "pattern", part: page.part, action });
const pressed = (id) => $(id).getAttribute("aria-pressed") === "true";

$("play").addEventListener("click", togglePlay);
$("rewind").addEventListener("click", () => conn.send({ type: "transport", action: "rewind" }));
$("generate").addEventListener("click", () => pattern("generate"));
$("vary").addEventListener("click", () => pattern("vary"));
$("continue").addEventListener("click", () => pattern("continue"));
$("auto").addEventListener("click", () => sendControls({ auto: !pressed("auto") }));
$("mute").addEventListener("click", () => sendControls({ mute: !pressed("mute") }));
$("genre").addEventListener("change", (e) => sendControls({ genre: e.target.value }));
$("model").addEventListener("change", (e) => {
  if (page.part) conn.send({ type: "model", part: page.part, model: e.target.value });
});
$("part").addEventListener("change", (e) => {
  page.part = e.target.value;
  page.shownBar = null;
  if (timeline.state) showState(timeline.state);
});
$("midi").addEventListener("pointerdown", listMidi, { once: true });
$("midi").addEventListener("focus", listMidi, { once: true });
$("midi").addEventListener("change", (e) => midi.select(e.target.value));

async function listMidi() {
  const outputs = await midi.outputs();
  const select = $("midi");
  select.replaceChildren(new Option("off", ""), ...outputs.map((o) => new Option(o.name, o.id)));
  if (!midi.available) showMessage("This browser has no Web MIDI.");
}

const SHORTCUTS = { " ": togglePlay, p: togglePlay, g: () => pattern("generate"),
  v: () => pattern("vary"), c: () => pattern("continue"), a: () => $("auto").click() };

document.addEventListener("keydown", (e) => {
  const tag = e.target.tagName;
  if (e.ctrlKey || e.metaKey || e.altKey || tag === "SELECT" || tag === "INPUT") return;
  if (tag === "BUTTON" && (e.key === " " || e.key === "Enter")) return; // the button's own
  const action = SHORTCUTS[e.key.toLowerCase()];
  if (action) {
    e.preventDefault();
    action();
  }
});

// -- sound needs a gesture on most browsers -----------------------------------------------

function unlockAudio() {
  if (ctx.state !== "running") ctx.resume();
}
for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, unlockAudio);
$("sound").addEventListener("click", unlockAudio);
ctx.onstatechange = () => { $("sound").hidden = ctx.state === "running"; };
$("sound").hidden = ctx.state === "running";

// -- every frame: position, playhead, the two bars on the grid -------------------------------

function frame() {
  requestAnimationFrame(frame);
  if (!page.grid || !timeline.state) return;
  const now = nowSeconds();
  const beat = timeline.beatAt(now);
  const bpb = timeline.beatsPerBar;
  const bar = Math.floor(beat / bpb + 1e-9);
  const inBar = beat - bar * bpb;
  $("position").textContent = `${bar + 1}.${Math.floor(inBar) + 1}`;
  page.grid.playhead(timeline.playing ? Math.floor(inBar * 4) : -1);
  if (page.shownBar !== bar) {
    page.shownBar = bar;
    page.grid.show(0, bar, timeline.bar(page.part, bar));
    page.grid.show(1, bar + 1, timeline.bar(page.part, bar + 1));
  }
}

// -- a read-only view for tests and the curious ---------------------------------------------

window.musegenDebug = () => ({
  connected: conn.connected,
  playing: timeline.playing,
  clientId: conn.clientId,
  part: page.part,
  offset: conn.offset,
  rtt: conn.rtt,
  beat: timeline.beatAt(nowSeconds()),
  audio: ctx.state,
  late: scheduler.late,
  scheduled: scheduler.scheduled.map((n) => ({ ...n })),
  bars: [...timeline.bars.values()].map((b) => ({
    part: b.part, bar: b.bar, reason: b.reason, density: b.controls.density,
    auto: b.controls.auto, notes: b.notes.map((n) => ({ beat: n.beat, pitch: n.pitch })),
  })),
  state: timeline.state && { ...timeline.state },
  morph: { x: pad.x, y: pad.y },
  lastError: conn.lastError,
});

conn.connect();
scheduler.start();
requestAnimationFrame(frame);
