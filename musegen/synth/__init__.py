"""The neural synth: notes in, sound out, in real time on one CPU core.

A WaveNet-style stack of gated, dilated, causal convolutions runs at the frame rate (one
frame per 256-sample block at 48 kHz) and drives a harmonic-plus-noise synthesiser (DDSP's
split) that writes the block's samples. See docs/synth.md for why this design.

- spec: sample rate, block, the instruments and the notes rendered for training;
- dataset: `musegen audio render-data` (FluidSynth + the GM sound font), cached;
- model: config + nn.Module (the offline, training path);
- dsp: wavetable harmonics and looped band noise, shared by training and streaming;
- stream: the same network as a block-by-block step with cached conv queues;
- voices: polyphony, voice stealing, drums on channel 10, the timbre morph;
- train, quality, render, checkpoint: the rest of the life of a synth.
"""
