"""The neural synth's own behaviour: streaming equals the offline path, polyphony and voice
stealing, bad input, the morph. Small random-weight networks (the `debug` and `small`
shapes) make these fast; the shipped synth's own tests are in test_synth_shipped.py."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
import torch

from musegen.synth import spec
from musegen.synth.dsp import noise_offset
from musegen.synth.model import PRESETS, SynthNet, note_features
from musegen.synth.morph import Morph, MorphError
from musegen.synth.render import RenderInputError, render_midi
from musegen.synth.voices import SLOTS, PolySynth


def loud_random_net(preset: str = "small", seed: int = 0) -> SynthNet:
    """Random weights scaled up so that every part of the output is far from zero, and a
    random tuning map: an equality test on a near-silent network would prove nothing."""
    torch.manual_seed(seed)
    net = SynthNet(PRESETS[preset]).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
        net.tuning.normal_(0.0, 10.0)
    return net


def offline(net: SynthNet, instrument: str, pitch: int, gate: int) -> np.ndarray:
    idx = spec.INSTRUMENT_INDEX[instrument]
    feats = torch.from_numpy(note_features(pitch, 100, gate, spec.NOTE_FRAMES))[None]
    with torch.no_grad():
        f0 = net.f0(torch.tensor([idx]), torch.tensor([pitch]))
        audio = net.render(feats, net.embed(torch.tensor([idx])), f0,
                           torch.tensor([noise_offset(pitch)]))
    return audio[0].numpy()


@pytest.mark.parametrize("channel,instrument,pitch,start", [
    (0, "piano", 60, 0), (0, "piano", 47, 1000), (9, "kit-snare", 38, 77)])
def test_block_stream_equals_the_offline_render(channel: int, instrument: str, pitch: int,
                                                start: int) -> None:
    net = loud_random_net()
    if channel == spec.DRUM_CHANNEL:
        net.tuning[spec.INSTRUMENT_INDEX[instrument]] = 0.0  # a drum plays untuned
    ref = offline(net, instrument, pitch, spec.GATE_FRAMES)
    synth = PolySynth(net, Morph(("piano",)))
    synth.note_on(start, channel, pitch, 100)
    synth.note_off(start + spec.GATE_FRAMES * spec.BLOCK, channel, pitch)
    out = synth.render(start + len(ref))
    # the stream fades a voice out over its last frames; the offline path does not
    n = (spec.NOTE_FRAMES - 8) * spec.BLOCK
    assert np.abs(ref).max() > 0.5
    assert not np.any(out[:start])
    assert np.abs(out[start : start + n] - ref[:n]).max() < 1e-4


def note_plan(seed: int, count: int = 30) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(t), int(rng.integers(40, 80))) for t in sorted(rng.integers(0, 40_000, count))]


def test_events_handed_over_just_in_time_sound_as_if_queued_up_front() -> None:
    """What live playing does (each note arrives shortly before its block) equals what a
    render does (every note queued first): onsets land on their sample either way."""
    net = loud_random_net("debug")
    plan = note_plan(1)
    queued = PolySynth(net)
    for t, p in plan:
        queued.note_on(t, 0, p, 90)
        queued.note_off(t + 5000, 0, p)
    whole = queued.render(60_000)
    live = PolySynth(net)
    out = []
    for block in range(len(whole) // spec.BLOCK + 1):
        lo, hi = block * spec.BLOCK, (block + 1) * spec.BLOCK
        for t, p in plan:
            if lo <= t < hi:
                live.note_on(t, 0, p, 90)
            if lo <= t + 5000 < hi:
                live.note_off(t + 5000, 0, p)
        out.append(live.render_block())
    assert np.array_equal(np.concatenate(out)[: len(whole)], whole)
    assert live.stats.late == 0


def test_an_event_for_a_rendered_sample_plays_at_once_and_is_counted_late() -> None:
    synth = PolySynth(loud_random_net("debug"))
    synth.render(10 * spec.BLOCK)
    synth.note_on(5, 0, 60, 100)
    assert synth.stats.late == 1
    assert np.abs(synth.render_block()).max() > 0


def test_two_hundred_notes_at_once_steal_voices_without_a_click_or_a_crash() -> None:
    net = loud_random_net("debug")
    synth = PolySynth(net)
    for i in range(200):
        synth.note_on(0, i % 9 if i % 9 != 9 else 0, 20 + i % 90, 100)
    audio = synth.render(48_000)
    assert np.isfinite(audio).all()
    assert synth.sounding() <= SLOTS
    assert synth.stats.stolen > 0
    assert synth.stats.notes + synth.stats.ignored <= 200


def test_a_steal_fades_the_old_voice_over_one_block() -> None:
    net = loud_random_net("debug")
    synth = PolySynth(net, slots=1)
    synth.note_on(0, 0, 60, 100)
    before = synth.render(20 * spec.BLOCK)
    synth.note_on(synth.position, 0, 72, 100)
    fading = synth.render_block()
    # the fade starts from where the old voice was: no jump at the block's first sample
    step = abs(float(fading[0]) - float(before[-1]))
    assert step <= np.abs(np.diff(before[-4 * spec.BLOCK :])).max() * 1.5
    assert synth.stats.stolen == 1
    assert np.abs(synth.render(4 * spec.BLOCK)).max() > 0  # the new note plays


def test_notes_outside_every_range_and_zero_length_notes_render() -> None:
    net = loud_random_net("debug")
    synth = PolySynth(net)
    for pitch in (0, 1, 126, 127):
        synth.note_on(0, 0, pitch, 127)
        synth.note_off(0, 0, pitch)  # zero length
    synth.note_on(100, 9, 13, 100)  # a drum note of no class we render
    audio = synth.render(48_000)
    assert np.isfinite(audio).all()
    assert synth.stats.ignored == 1
    assert synth.sounding() == 0  # every voice ended after its release


def test_voices_end_after_their_release() -> None:
    synth = PolySynth(loud_random_net("debug"))
    synth.note_on(0, 0, 60, 100)
    synth.note_off(10 * spec.BLOCK, 0, 60)
    synth.render((10 + spec.NOTE_FRAMES) * spec.BLOCK)
    assert synth.sounding() == 0


def test_morph_positions_blend_the_corner_instruments() -> None:
    table = np.eye(16, 4, dtype=np.float32)
    table[spec.INSTRUMENT_INDEX["piano"]] = [1, 0, 0, 0]
    table[spec.INSTRUMENT_INDEX["strings"]] = [0, 1, 0, 0]
    table[spec.INSTRUMENT_INDEX["flute"]] = [0, 0, 1, 0]
    table[spec.INSTRUMENT_INDEX["lead"]] = [0, 0, 0, 1]
    m = Morph.default()
    assert np.allclose(m.embedding(table), [1, 0, 0, 0])
    assert np.allclose(m.moved(1, 1).embedding(table), [0, 0, 0, 1])
    assert np.allclose(m.moved(0.5, 0.5).embedding(table), [0.25] * 4)
    assert np.allclose(Morph(("piano", "flute"), 0.25).embedding(table), [0.75, 0, 0.25, 0])
    with pytest.raises(MorphError, match="unknown instrument"):
        Morph(("kazoo",))
    with pytest.raises(MorphError, match=r"0\.\.1"):
        Morph.parse("2,0")


def test_a_midi_file_renders_drums_to_the_kit_and_the_rest_to_the_morph(tmp_path: Path) -> None:
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for note, channel in ((36, 9), (60, 0), (38, 9), (64, 0)):
        track.append(mido.Message("note_on", channel=channel, note=note, velocity=100))
        track.append(mido.Message("note_off", channel=channel, note=note, time=240))
    path = tmp_path / "four.mid"
    mid.save(path)
    done = render_midi(loud_random_net("debug"), path)
    assert done.stats.notes == 4
    # four quarter-second notes at 120 BPM, then the release tail
    assert len(done.audio) >= 48_000
    first = int(np.flatnonzero(np.abs(done.audio) > 1e-4)[0])
    assert first < spec.BLOCK  # the first note starts at sample 0
    assert np.abs(done.audio[6000:12000]).max() > 1e-3  # the second, a quarter second on


def test_a_corrupt_midi_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd not really")
    with pytest.raises(RenderInputError, match=r"bad\.mid"):
        render_midi(loud_random_net("debug"), bad)


def test_fluidsynth_renders_the_same_notes_twice_and_holds_out_the_plan(tmp_path: Path) -> None:
    from musegen.synth.dataset import SOUND_FONT, _render_instrument, note_plan

    kick = spec.DRUMS[0]
    first = _render_instrument(0, kick, SOUND_FONT)
    again = _render_instrument(0, kick, SOUND_FONT)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a, b)
    audio, _, _, velocity, held = first
    assert audio.shape == (len(note_plan(kick)), spec.NOTE_SAMPLES)
    assert np.abs(audio).max(axis=1).min() > 1e-3  # every note sounds
    assert held.tolist() == [v == spec.HELD_OUT_VELOCITY for v in velocity]
    piano = spec.MELODIC[0]
    held_pitches = {p for p in piano.pitches if spec.is_held_out(piano, p, 127)}
    assert held_pitches == set(range(piano.low + 2, piano.high + 1, 5))
