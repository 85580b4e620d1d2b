// The lookahead scheduler: a timer wakes every 25 ms and books every note that sounds within
// the next 150 ms on the AudioContext clock (and on Web MIDI's timestamped output). A note
// is never played "when its message arrives": it sounds at the time its beat maps to, so
// timer jitter and message timing cannot move it. A note whose moment has passed before
// the scheduler saw it is counted as late: played at once when only just late (the
// downbeat right after Play, which the engine sounds the moment it starts), else dropped.

import { nowSeconds } from "./connection.js";

const TICK_MS = 25;
const LOOKAHEAD_S = 0.15;
const KEPT_RECORDS = 4000;
const STILL_PLAYABLE_S = 0.05;
// the perf -> context offset follows a new reading by this share per tick (25 ms), so a
// 10 ms step of the output timestamp moves booked notes by at most 0.5 ms per tick
const OFFSET_SLEW = 0.05;
const OFFSET_JUMP_S = 0.05;

export class Scheduler {
  constructor(timeline, audio, midi) {
    this.timeline = timeline;
    this.audio = audio; // { ctx, play(note, when) -> handle|null }
    this.midi = midi; // { play(note, perfSeconds) }
    this.booked = new Set();
    this.handles = [];
    this.scheduled = []; // what was booked: for the page's debug hook and tests
    this.late = 0;
    this.timer = null;
    this.offset = null; // context seconds minus performance seconds (see updateOffset)
  }

  start() {
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  // Forget what was booked ahead (a stop or a jump): booked voices not yet sounding stop.
  reset() {
    const now = this.audio.ctx.currentTime;
    for (const h of this.handles) if (h.when > now) h.cancel();
    this.handles = [];
    this.booked.clear();
  }

  // Our performance seconds -> AudioContext seconds, as heard at the output: one offset for
  // every booking, measured once per tick and slewed towards each new reading, because
  // getOutputTimestamp moves in steps of an audio callback and a fresh reading per note
  // would shift notes of one groove by those steps against each other. A jump too large to
  // be such a step (the context resumed, the device changed) is taken at once.
  updateOffset() {
    const ctx = this.audio.ctx;
    const ts = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : null;
    const measured = ts && ts.contextTime > 0 && ts.performanceTime > 0
      ? ts.contextTime - ts.performanceTime / 1000
      : ctx.currentTime - nowSeconds();
    if (this.offset === null || Math.abs(measured - this.offset) > OFFSET_JUMP_S) {
      this.offset = measured;
    } else {
      this.offset += (measured - this.offset) * OFFSET_SLEW;
    }
  }

  contextTime(perf) {
    return perf + this.offset;
  }

  tick() {
    const tl = this.timeline;
    if (!tl.playing || tl.connection.offset === null) return;
    this.updateOffset();
    const now = nowSeconds();
    const from = tl.beatAt(now - 0.05);
    const to = tl.beatAt(now + LOOKAHEAD_S);
    for (const bar of tl.barsBetween(from, to)) {
      for (const note of bar.notes) {
        if (note.beat < from || note.beat > to) continue;
        const key = `${bar.part}:${bar.bar}:${note.beat.toFixed(5)}:${note.pitch}`;
        if (this.booked.has(key)) continue;
        this.booked.add(key);
        this.book(bar, note, tl.timeOf(note.beat), now);
      }
    }
    this.prune(Math.floor(from / tl.beatsPerBar) - 2);
  }

  book(bar, note, perf, now) {
    const ctx = this.audio.ctx;
    let when = this.contextTime(perf);
    if (when < ctx.currentTime) {
      this.late += 1;
      if (when < ctx.currentTime - STILL_PLAYABLE_S) return;
      when = ctx.currentTime;
    }
    const handle = this.audio.play(note, when, bar.part);
    if (handle) this.handles.push(handle);
    this.midi.play(note, perf, 60 / this.timeline.state.tempo_bpm);
    this.scheduled.push({
      part: bar.part, bar: bar.bar, beat: note.beat, pitch: note.pitch,
      velocity: note.velocity, time: when, at: ctx.currentTime,
      wall: performance.timeOrigin + perf * 1000, lead: perf - now,
    });
    if (this.scheduled.length > KEPT_RECORDS) this.scheduled.splice(0, 1000);
  }

  prune(beforeBar) {
    const now = this.audio.ctx.currentTime;
    this.handles = this.handles.filter((h) => h.when > now - 1);
    for (const key of this.booked) {
      if (Number(key.split(":")[1]) < beforeBar) this.booked.delete(key);
    }
  }
}
