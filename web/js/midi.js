// Optional Web MIDI output: the same notes the page plays, sent to a hardware synth with
// Web MIDI's own timestamps (performance.now() milliseconds), so they leave on time too.

export class MidiOut {
  constructor() {
    this.access = null;
    this.output = null;
  }

  get available() {
    return typeof navigator.requestMIDIAccess === "function";
  }

  // The outputs to choose from ([] when the browser has no Web MIDI or the user said no).
  async outputs() {
    if (!this.available) return [];
    try {
      this.access = this.access || (await navigator.requestMIDIAccess());
    } catch {
      return [];
    }
    return [...this.access.outputs.values()];
  }

  select(id) {
    this.output = null;
    if (this.access && id) this.output = this.access.outputs.get(id) || null;
  }

  // note: {pitch, velocity, duration (beats), channel}; perf: our seconds when it sounds.
  play(note, perf, secondsPerBeat = 0.5) {
    if (!this.output) return;
    const on = perf * 1000;
    const off = on + Math.max(10, note.duration * secondsPerBeat * 1000);
    this.output.send([0x90 | note.channel, note.pitch, note.velocity], on);
    this.output.send([0x80 | note.channel, note.pitch, 0], off);
  }
}
