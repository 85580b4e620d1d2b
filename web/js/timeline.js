// What the engine has told us: its clock anchor (a `state` message) and the bars queued
// ahead (`bar` messages, a later one replacing an earlier one for the same part and bar).
// Beats are the only musical time; seconds here are the server's monotonic clock, turned
// into ours with the connection's offset estimate.

const KEPT_BARS = 64;

export class Timeline {
  constructor(connection) {
    this.connection = connection;
    this.state = null;
    this.bars = new Map(); // "part:bar" -> bar message
  }

  setState(state) {
    this.state = state;
  }

  addBar(bar) {
    this.bars.set(`${bar.part}:${bar.bar}`, bar);
    if (this.bars.size > KEPT_BARS) {
      const oldest = [...this.bars.values()].reduce((a, b) => (b.bar < a.bar ? b : a));
      this.bars.delete(`${oldest.part}:${oldest.bar}`);
    }
  }

  bar(part, index) {
    return this.bars.get(`${part}:${index}`) || null;
  }

  get playing() {
    return Boolean(this.state && this.state.playing);
  }

  get beatsPerBar() {
    return this.state ? this.state.beats_per_bar : 4;
  }

  // The song position now (or at our performance time `at`, seconds).
  beatAt(at) {
    const s = this.state;
    if (!s) return 0;
    if (!s.playing || this.connection.offset === null) return s.beat;
    const server = at + this.connection.offset;
    return s.beat + ((server - s.server_time) * s.tempo_bpm) / 60;
  }

  // When `beat` sounds, in our performance seconds (null while stopped).
  timeOf(beat) {
    const s = this.state;
    if (!s || !s.playing || this.connection.offset === null) return null;
    const server = s.server_time + ((beat - s.beat) * 60) / s.tempo_bpm;
    return server - this.connection.offset;
  }

  currentBar(at) {
    return Math.floor(this.beatAt(at) / this.beatsPerBar + 1e-9);
  }

  // Bars with notes between two beats, all parts.
  barsBetween(fromBeat, toBeat) {
    const out = [];
    for (const bar of this.bars.values()) {
      const end = bar.start_beat + bar.beats_per_bar;
      if (end > fromBeat && bar.start_beat <= toBeat) out.push(bar);
    }
    return out;
  }
}
