"""The synth's model card, written from the figures in its synth.json (`musegen audio eval
--save` fills the quality table; the speed section quotes `musegen bench --json`)."""

from __future__ import annotations

from typing import Any

from musegen.synth import spec
from musegen.synth.checkpoint import SynthMeta

_SYSTEMS = (("model", "this synth"), ("sine", "sine + the note's own envelope"),
            ("nearest_resampled", "nearest training note, resampled"))


def quality_table(quality: dict[str, Any]) -> str:
    lines = ["| system | kind | notes | MR-STFT | loudness L1 (dB) | "
             "pitch error (cents, median / p90) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for key, label in _SYSTEMS:
        for kind in ("melodic", "drums"):
            f = quality[key][kind]
            cents = (f"{f['pitch_cents_median']:.1f} / {f['pitch_cents_p90']:.1f}"
                     if "pitch_cents_median" in f else "-")
            lines.append(f"| {label} | {kind} | {f['notes']} | {f['mrstft']:.3f} | "
                         f"{f['loudness_l1_db']:.2f} | {cents} |")
    return "\n".join(lines)


def verdict(quality: dict[str, Any]) -> str:
    """Which baseline the synth beats on which figure, in words, from the table itself."""
    lines = []
    for kind in ("melodic", "drums"):
        model = quality["model"][kind]
        for key, label in _SYSTEMS[1:]:
            base = quality[key][kind]
            won = [name for name, fig in (("MR-STFT", "mrstft"), ("loudness", "loudness_l1_db"))
                   if model[fig] < base[fig]]
            lost = [name for name, fig in (("MR-STFT", "mrstft"), ("loudness", "loudness_l1_db"))
                    if model[fig] >= base[fig]]
            text = f"- {kind}, against the {label}: better on {', '.join(won) or 'nothing'}"
            if lost:
                text += f"; worse on {', '.join(lost)}"
            lines.append(text + ".")
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def speed_section(speed: dict[str, Any] | None) -> str:
    if not speed:
        return "Not measured yet: run `musegen bench --json --synth NAME`."
    pi = speed["pi4_estimate"]
    return "\n".join([
        f"`{speed['command']}` on this project's 2-core VM, one thread, "
        f"{speed['voices']} voices sounding, block {speed['block']} samples "
        f"({speed['block_ms']} ms) at {speed['sample_rate']} Hz:",
        "",
        "| figure | value |", "| --- | ---: |",
        f"| real-time factor | {speed['realtime_factor']}x |",
        f"| block p50 / p99 | {speed['block_ms_p50']} / {speed['block_ms_p99']} ms |",
        f"| baseline: each block through the offline path (no conv queues), p50 | "
        f"{speed['no_streaming_block_ms_p50']} ms ({speed['speedup_vs_no_streaming']}x "
        "slower) |",
        f"| Raspberry Pi 4 estimate (LINPACK ratio {pi['ratio']}) | "
        f"{pi['realtime_factor']}x, block p99 {pi['block_ms_p99']} ms |",
        "",
        f"Targets: at least 20x real time ({_met(speed['realtime_factor'] >= 20)}, "
        f"{speed['realtime_factor']}x); block p99 under a quarter of the block, "
        f"{speed['block_ms'] / 4:.2f} ms ({_met(speed['block_ms_p99'] < speed['block_ms'] / 4)}"
        f", {speed['block_ms_p99']} ms).",
        "",
        "The Pi 4 estimate scales by numpy's LINPACK solve here against 812 MFLOPS for the "
        "same benchmark on a standard Pi 4 (sci-pi.org.uk). The synth's block is compiled "
        "loops and one FFT, not BLAS, so this is a rough guide, not a measurement; "
        "docs/synth.md says more.",
    ])


def synth_card(meta: SynthMeta) -> str:
    cfg, m, t = meta.config, meta.metrics, meta.training
    melodic = ", ".join(i.name for i in spec.MELODIC)
    quality = m.get("quality")
    return f"""# {meta.name} {meta.version}

A neural synth: notes in, sound out, in real time. A WaveNet-style stack (gated, dilated,
causal 1-D convolutions with residual and skip paths; {len(cfg.dilations)} layers,
{cfg.channels} channels, dilations {", ".join(map(str, cfg.dilations))}) runs once per
{spec.BLOCK}-sample block at {spec.SAMPLE_RATE} Hz. It is conditioned on a timbre embedding
({cfg.embedding} dimensions, one per instrument; the live morph blends them), the pitch, the
velocity, the gate and how long ago the key went down and up. It drives a harmonic-plus-noise
synthesiser: {cfg.harmonics} harmonics through wavetables, {cfg.noise_bands} bands of looped
noise. {t.get("params", "?")} parameters.

## Data
Single notes rendered with FluidSynth {t.get("fluidsynth", "2.3")} from **FluidR3_GM**
(Debian's fluid-soundfont-gm; Frank Wen, MIT licence): {melodic}, and the nine GM drum
pieces the drum models play. Pitches over each instrument's range, velocities
{", ".join(map(str, spec.VELOCITIES))}; each note held {spec.GATE_FRAMES} blocks (0.6 s),
then released. `musegen audio render-data` renders them (cached, deterministic).
Held out, never trained on: every {spec.HELD_OUT_PITCH_EVERY}th pitch of each range and
velocity {spec.HELD_OUT_VELOCITY} everywhere ({m.get("held_out_notes", "?")} notes).

## Training
`musegen audio train --preset {t.get("preset", "small")} --steps {t.get("steps", "?")} --seed
{t.get("seed", 0)} --out models/{meta.name}`: multi-resolution STFT loss (FFT sizes 2048 to
64, linear and log magnitude), Adam, one-cycle learning rate {t.get("lr", "?")}, batch
{t.get("batch", "?")} whole notes, instrument groups drawn evenly (the kit is one group).
{m.get("train_seconds", 0) / 60:.0f} minutes on this project's 2-core CPU. Held-out MR-STFT
at the end: {m.get("held_out_mrstft", float("nan")):.3f}.

## Quality on the held-out notes
`musegen audio eval --synth {meta.name}`; both baselines measured in the same run.
MR-STFT: the training loss's distance (lower is better). Loudness: A-weighted, per 2048
samples, where the reference is within 60 dB of its peak. Pitch: f0 of the held part from
the spectral peaks of the first two harmonics.

{quality_table(quality) if quality else "Not evaluated yet."}

{verdict(quality) if quality else ""}

Why the resampled neighbour can stay closer in MR-STFT: it is the reference's own recorded
sample, shifted by a semitone or played at the next velocity, so its partials and the fine
structure of its noise match the reference; this synth makes its noise afresh and puts its
partials at exact harmonics (a piano's are stretched), and the log-magnitude half of the
distance punishes both. A sampler needs every note recorded; this synth plays any pitch,
velocity and blend of timbres from 0.9 MB of weights.

## Speed
{speed_section(m.get("speed"))}

## Limits
- Trained on one sound font: it plays FluidR3's instruments, not yours.
- Notes held longer than 0.6 s hold the timbre of the notes it saw; releases end after
  {spec.NOTE_FRAMES - spec.GATE_FRAMES} blocks (0.43 s), faded, as in its data.
- Pitch is the note's, tuned by a map measured on the training notes (the sound font's
  samples are off equal temperament by up to 30 cents); no vibrato or bends.
"""
