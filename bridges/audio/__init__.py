"""The audio bridge: the session's notes played by the neural synth on a sound card.

    output = open_audio("synth-wavenet", None, timebase.now, session.morph)
    session.add_output(output)          # an engine Output: send() only queues
    session.add_morph_listener(output.set_morph)  # knobs and the page move the timbre
    ...
    stats = output.close()              # notes faded out, thread and stream stopped

Errors: SynthNotFound for a synth that is not there, AudioUnavailable when there is no
PortAudio, no output device, or the device refuses the stream. sounddevice (PortAudio) is
imported only when a device is looked for, so importing this package opens nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from bridges.audio.output import AudioUnavailable, Device, find_device
from bridges.audio.player import AudioOutput, AudioStats
from musegen.synth.checkpoint import load_synth
from musegen.synth.morph import Morph

__all__ = ["AudioOutput", "AudioStats", "AudioUnavailable", "Device", "find_device",
           "open_audio"]


def open_audio(synth: str, device: str | None, now: Callable[[], float],
               morph: tuple[float, float] = (0.0, 0.0), rt_priority: int = 0) -> AudioOutput:
    """`synth` (a shipped name or a folder) playing on `device` (an index, part of a name,
    or None: the default output), timed on `now`, its timbre at the `morph` position; its
    synthesis thread under SCHED_FIFO at `rt_priority` where allowed (0: normal)."""
    net, meta = load_synth(synth)
    return AudioOutput(net, find_device(device), now, name=meta.name,
                       morph=Morph.default().moved(*morph), rt_priority=rt_priority)
