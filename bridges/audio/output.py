"""The sound card's end: a PortAudio output stream (python-sounddevice) fed from a `Ring`.

The callback runs on the audio system's own thread (JACK's process thread, ALSA's), so it
only takes one timing reading (`SampleClock.anchor`), copies the next samples out of the
ring (zeros and a counted underrun when the synthesis thread fell behind) and duplicates
them to a second channel. No logging, no locks, nothing allocated but the arrays
sounddevice itself wraps the buffers in.

sounddevice is imported lazily, by `find_device`: importing it starts PortAudio, which on
Linux opens a JACK client whenever a JACK server runs, and only `--audio` should do that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bridges.audio.ring import Ring
from bridges.audio.timeline import SampleClock
from musegen.synth.spec import BLOCK, SAMPLE_RATE

logger = logging.getLogger(__name__)

MAX_DAC_AHEAD_S = 1.0  # a time info further ahead than this is a host API's bogus value


class AudioUnavailable(Exception):
    """No audio output here: no PortAudio, no output device, or the device refused us."""


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    host: str  # PortAudio's host API: "JACK Audio Connection Kit", "ALSA", ...
    channels: int  # what the stream opens: 1, or 2 carrying the mono synth twice
    low_latency_s: float = 0.0  # PortAudio's default low output latency for it

    def describe(self) -> str:
        return f"{self.name} ({self.host})"


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the python package is there, libportaudio is not
        raise AudioUnavailable(f"PortAudio not found: {exc}") from None
    return sounddevice


def find_device(wanted: str | None = None) -> Device:
    """The output device `wanted` names (an index, or part of a name), else the default."""
    sd = _sounddevice()
    key: int | str | None = int(wanted) if wanted is not None and wanted.isdigit() else wanted
    try:
        info = sd.query_devices(key, kind="output")
        host = sd.query_hostapis(info["hostapi"])["name"]
    except (sd.PortAudioError, ValueError) as exc:
        what = "no output device" if wanted is None else f"device {wanted!r}"
        raise AudioUnavailable(f"{what}: {exc}") from None
    channels = 1 if info["max_output_channels"] == 1 else 2
    return Device(int(info["index"]), str(info["name"]), str(host), channels,
                  float(info["default_low_output_latency"]))


class DeviceStream:
    """A started PortAudio stream playing `ring`; each callback anchors `clock` on `now`."""

    def __init__(self, device: Device, ring: Ring, clock: SampleClock,
                 now: Callable[[], float], blocksize: int = BLOCK) -> None:
        sd = _sounddevice()
        self.device = device
        self._ring, self._clock, self._now = ring, clock, now
        self._scratch = np.zeros(max(ring.capacity, 16 * blocksize), np.float32)
        self.blocksize = blocksize
        self.xruns = 0  # callbacks PortAudio flagged as having underflowed itself
        self.dac_ahead_s = 0.0  # the most PortAudio's time info put the DAC after a callback
        try:
            self._stream = sd.OutputStream(
                samplerate=SAMPLE_RATE, blocksize=blocksize, device=device.index,
                channels=device.channels, dtype="float32", latency="low",
                callback=self._callback)
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioUnavailable(f"{device.describe()}: {exc}") from None
        self._errors: tuple[type[Exception], ...] = (sd.PortAudioError,)

    def start(self) -> None:
        try:
            self._stream.start()
        except self._errors as exc:
            self._stream.close(ignore_errors=True)
            raise AudioUnavailable(f"{self.device.describe()}: {exc}") from None

    @property
    def latency_s(self) -> float:
        """The device's latency after a callback: the most of the stream's figure, the
        device's default and what the time info showed (PortAudio on JACK gives the stream
        0, the device and the time info one period)."""
        return max(float(self._stream.latency), self.device.low_latency_s, self.dac_ahead_s)

    def close(self) -> None:
        """Stop (PortAudio plays out what it has) and close; a stream whose server went away
        is closed all the same."""
        try:
            self._stream.stop()
        except self._errors:
            logger.warning("stopping the audio stream failed", exc_info=True)
        self._stream.close(ignore_errors=True)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        self._clock.anchor(self._ring.read, self._now())
        buffer = self._scratch[:frames]
        self._ring.read_into(buffer)
        outdata[:] = buffer[:, None]  # every channel the same mono signal
        ahead = time_info.outputBufferDacTime - time_info.currentTime
        if self.dac_ahead_s < ahead < MAX_DAC_AHEAD_S:
            self.dac_ahead_s = ahead
        if status and status.output_underflow:
            self.xruns += 1
