"""The audio bridge without a sound card: the ring between the synthesis thread and the
device, the seconds -> samples line, and `musegen live --audio` where there is no device
(one line, and it plays on) or the request is wrong (one error line).

The JACK end of it (sound that comes out, on time, without underruns) is
tests/test_audio_jack.py.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from bridges.audio.ring import Ring
from bridges.audio.timeline import BACK_SHARE, SampleClock
from tests.audio_rig import synth  # noqa: F401  (a fixture, found by name)

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
NO_DEVICE_LINE = "musegen: no audio output here ("
NO_DEVICE_END = "): playing MIDI/web only"


# ---------------------------------------------------------------------------- the ring
def test_the_ring_wraps_around_and_keeps_the_order() -> None:
    ring = Ring(8)
    out = np.empty(5, np.float32)
    assert ring.write(np.arange(5, dtype=np.float32)) == 5
    assert ring.read_into(out) == 5 and list(out) == [0, 1, 2, 3, 4]
    assert ring.write(np.arange(10, 16, dtype=np.float32)) == 6  # slots 5..7, then 0..2
    assert ring.available() == 6 and ring.space() == 2
    out6 = np.empty(6, np.float32)
    assert ring.read_into(out6) == 6 and list(out6) == [10, 11, 12, 13, 14, 15]
    assert ring.underruns == 0 and ring.written == ring.read == 11


def test_the_ring_takes_what_fits_and_counts_short_reads() -> None:
    ring = Ring(4)
    assert ring.write(np.ones(6, np.float32)) == 4  # full: the rest is the writer's problem
    out = np.full(6, 7.0, np.float32)
    assert ring.read_into(out) == 4
    assert list(out) == [1, 1, 1, 1, 0, 0]  # zeros past the end, never stale samples
    assert (ring.underruns, ring.missing) == (1, 2)
    assert ring.read_into(out) == 0 and (ring.underruns, ring.missing) == (2, 8)
    ring.count_underruns = False  # the writer has finished: an empty ring is the end
    ring.read_into(out)
    assert (ring.underruns, ring.missing) == (2, 8)
    with pytest.raises(ValueError, match="power of two"):
        Ring(6)


def test_the_ring_carries_a_stream_between_two_threads_intact() -> None:
    """A real producer and consumer, odd chunk sizes, no locks: every sample arrives once,
    in order; the reader's short reads are counted, never torn."""
    ring, total = Ring(256), 50_000
    received: list[np.ndarray] = []

    def produce() -> None:
        rng, sent = random.Random(1), 0
        while sent < total:
            n = min(rng.randint(1, 300), total - sent)
            chunk = np.arange(sent, sent + n, dtype=np.float32)
            done = 0
            while done < n:
                done += ring.write(chunk[done:])
            sent += n

    writer = threading.Thread(target=produce)
    writer.start()
    rng, got = random.Random(2), 0
    while got < total:
        out = np.empty(rng.randint(1, 200), np.float32)
        n = ring.read_into(out)
        received.append(out[:n].copy())
        got += n
    writer.join()
    stream = np.concatenate(received)
    assert np.array_equal(stream, np.arange(total, dtype=np.float32))


# ---------------------------------------------------------------------------- the line
def test_the_line_maps_seconds_to_the_samples_the_callbacks_read() -> None:
    clock = SampleClock(RATE)
    assert clock.sample_at(1.0) is None  # no callback yet
    t0 = 1000.0
    for k in range(50):  # a callback every 256 samples, exactly on time
        clock.anchor(5000 + 256 * k, t0 + 256 * k / RATE)
    assert clock.sample_at(t0) == 5000
    assert clock.sample_at(t0 + 1.0) == 5000 + RATE


def test_late_callbacks_barely_move_the_line() -> None:
    """Callbacks held up by up to 2 ms (never early): the line stays on the on-time ones."""
    clock, rng, t0 = SampleClock(RATE), random.Random(3), 50.0
    for k in range(2000):
        late = rng.random() ** 3 * 0.002  # mostly a little, sometimes 2 ms
        clock.anchor(256 * k, t0 + 256 * k / RATE + late)
    mapped = clock.sample_at(t0)  # sample 0 was read at t0
    assert mapped is not None and abs(mapped) < 24, mapped  # half a millisecond


def test_the_line_follows_a_drifting_device_and_never_steps_back() -> None:
    """A device 0.14 % slow against the timebase (the JACK rig's dummy driver), then 20000
    samples of underrun: the line follows both, and the sample it gives for each callback's
    time only ever grows, by at least (1 - BACK_SHARE) of the time that passed."""
    clock, t, sample, slow = SampleClock(RATE), 10.0, 0, 1.0 - 0.0014
    previous = None
    errors = []
    for k in range(3000):
        if k == 1500:
            t += 20000 / RATE  # the device played zeros the synth did not count
        clock.anchor(sample, t)
        mapped = clock.sample_at(t)
        assert mapped is not None
        if previous is not None:
            assert mapped - previous[0] >= (1 - BACK_SHARE) * RATE * (t - previous[1]) - 1
        previous = (mapped, t)
        errors.append(mapped - sample)
        sample += 256
        t += 256 / (RATE * slow)
    assert max(abs(e) for e in errors[200:1500]) < 8  # drift followed
    assert errors[1500] > 10000  # the underrun is followed slowly, not stepped back
    assert max(abs(e) for e in errors[2000:]) < 8


# ---------------------------------------------------------------------------- the command
def _live(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridges", "live", "--backend", "none",
                           "--no-web", "--no-record", *args],
                          cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)


def _no_jack() -> dict[str, str]:
    """An environment where PortAudio's JACK host finds no server and starts none."""
    return {**os.environ, "JACK_DEFAULT_SERVER": "musegen-no-such-server",
            "JACK_NO_START_SERVER": "1"}


def _portaudio_outputs(env: dict[str, str]) -> int:
    asked = subprocess.run([sys.executable, "-c", "import sounddevice as sd; print(sum("
                            "d['max_output_channels'] > 0 for d in sd.query_devices()))"],
                           env=env, capture_output=True, text=True, timeout=60)
    return int(asked.stdout.strip() or 0)


@pytest.mark.parametrize("where", ["no device", "a device that is not there"])
def test_without_an_audio_device_it_says_so_in_one_line_and_plays_on(
        synth: str, where: str) -> None:  # noqa: F811
    env, device = _no_jack(), []
    if where == "a device that is not there":
        device = ["--audio-device", "no-such-sound-card"]
    elif _portaudio_outputs(env):
        pytest.skip("PortAudio finds an output device on this machine even without JACK")
    done = _live("--audio", *device, "--synth", synth, "--seconds", "2", env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    said = [line for line in lines if line.startswith(NO_DEVICE_LINE)]
    assert len(said) == 1 and said[0].endswith(NO_DEVICE_END), lines
    if device:
        assert "no-such-sound-card" in said[0]
    assert any(line.startswith("musegen: playing drums=") for line in lines), lines
    assert not any(line.startswith("musegen: audio out") for line in lines), lines


def test_a_wrong_synth_or_morph_is_one_error_line(synth: str) -> None:  # noqa: F811
    cases = [
        (["--synth", "no-such-synth"], "no synth named 'no-such-synth'"),
        (["--synth", synth, "--morph", "2,0"], "morph x and y must be in 0..1"),
        (["--synth", synth, "--morph", "left"], "--morph wants x,y"),
    ]
    for args, message in cases:
        done = _live("--audio", *args, "--seconds", "0", env=_no_jack())
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
