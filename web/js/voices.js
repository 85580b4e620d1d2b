// Drum voices synthesised with Web Audio (nothing to download), one per GM drum note the
// engine writes, plus a small triangle synth for melodic parts. Every voice is booked at an
// exact AudioContext time and returns a handle that can cancel it before it sounds.

const NOISE_SECONDS = 1;

export class Voices {
  constructor(ctx) {
    this.ctx = ctx;
    this.out = ctx.createGain();
    this.out.gain.value = 0.8;
    const comp = ctx.createDynamicsCompressor();
    this.out.connect(comp).connect(ctx.destination);
    this.noise = this.makeNoise();
    this.enabled = true;
  }

  makeNoise() {
    const length = this.ctx.sampleRate * NOISE_SECONDS;
    const buffer = this.ctx.createBuffer(1, length, this.ctx.sampleRate);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < length; i++) data[i] = Math.random() * 2 - 1;
    return buffer;
  }

  // note: {pitch, velocity, duration (beats), channel}; when: AudioContext seconds.
  play(note, when) {
    if (!this.enabled) return null;
    const level = Math.max(0.05, note.velocity / 127);
    const sources = note.channel === 9 ? this.drum(note.pitch, level, when)
      : this.tone(note.pitch, level, when, Math.max(0.05, note.duration * 0.5));
    return {
      when,
      cancel: () => sources.forEach((s) => { try { s.stop(); } catch { /* not started */ } }),
    };
  }

  drum(pitch, level, t) {
    switch (pitch) {
      case 36: return this.kick(level, t);
      case 38: return this.snare(level, t);
      case 42: return this.hat(level, t, 0.05);
      case 46: return this.hat(level, t, 0.35);
      case 43: return this.tom(level, t, 90);
      case 47: return this.tom(level, t, 130);
      case 50: return this.tom(level, t, 180);
      case 49: return this.cymbal(level, t, 1.4, 5000);
      case 51: return this.cymbal(level, t, 0.6, 9000);
      default: return this.hat(level * 0.6, t, 0.08);
    }
  }

  envelope(level, t, decay) {
    const g = this.ctx.createGain();
    g.gain.setValueAtTime(0, t);
    g.gain.linearRampToValueAtTime(level, t + 0.002);
    g.gain.exponentialRampToValueAtTime(0.0001, t + decay);
    g.connect(this.out);
    return g;
  }

  kick(level, t) {
    const osc = this.ctx.createOscillator();
    osc.frequency.setValueAtTime(150, t);
    osc.frequency.exponentialRampToValueAtTime(45, t + 0.12);
    osc.connect(this.envelope(level, t, 0.4));
    osc.start(t);
    osc.stop(t + 0.45);
    return [osc];
  }

  noiseSource(t, decay, type, freq) {
    const src = this.ctx.createBufferSource();
    src.buffer = this.noise;
    const filter = this.ctx.createBiquadFilter();
    filter.type = type;
    filter.frequency.value = freq;
    src.connect(filter);
    src.start(t);
    src.stop(t + decay + 0.05);
    return [src, filter];
  }

  snare(level, t) {
    const [noise, filter] = this.noiseSource(t, 0.2, "highpass", 1200);
    filter.connect(this.envelope(level * 0.8, t, 0.2));
    const osc = this.ctx.createOscillator();
    osc.type = "triangle";
    osc.frequency.setValueAtTime(220, t);
    osc.frequency.exponentialRampToValueAtTime(160, t + 0.08);
    osc.connect(this.envelope(level * 0.5, t, 0.1));
    osc.start(t);
    osc.stop(t + 0.15);
    return [noise, osc];
  }

  hat(level, t, decay) {
    const [noise, filter] = this.noiseSource(t, decay, "highpass", 7000);
    filter.connect(this.envelope(level * 0.5, t, decay));
    return [noise];
  }

  tom(level, t, freq) {
    const osc = this.ctx.createOscillator();
    osc.frequency.setValueAtTime(freq * 1.6, t);
    osc.frequency.exponentialRampToValueAtTime(freq, t + 0.1);
    osc.connect(this.envelope(level * 0.8, t, 0.35));
    osc.start(t);
    osc.stop(t + 0.4);
    return [osc];
  }

  cymbal(level, t, decay, freq) {
    const [noise, filter] = this.noiseSource(t, decay, "bandpass", freq);
    filter.Q.value = 0.6;
    filter.connect(this.envelope(level * 0.45, t, decay));
    return [noise];
  }

  tone(pitch, level, t, length) {
    const osc = this.ctx.createOscillator();
    osc.type = "triangle";
    osc.frequency.value = 440 * 2 ** ((pitch - 69) / 12);
    osc.connect(this.envelope(level * 0.4, t, length + 0.1));
    osc.start(t);
    osc.stop(t + length + 0.15);
    return [osc];
  }
}
