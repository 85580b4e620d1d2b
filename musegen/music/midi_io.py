"""Read MIDI files into Scores (engine ticks) and write Scores back, refusing absurd input.

Reading never lets a library exception escape: anything wrong with a file becomes a
`MidiFileError` whose message is the reason, so a data run can skip the file and say why.
"""

from __future__ import annotations

import os
from pathlib import Path

import mido

from musegen.music.score import MeterChange, Note, Score, TempoChange
from musegen.music.timing import PPQN, TimeSignature, rescale_ticks

# Limits past which a file is treated as broken rather than as music.
MAX_DELTA_QUARTERS = 4096  # one gap of ~34 min at 120 BPM between two events of a track
MAX_DURATION_HOURS = 6.0
MAX_FILE_BYTES = 64 * 1024 * 1024


class MidiFileError(ValueError):
    """A MIDI file that cannot be used; str(err) is the human-readable reason."""


def load_score(path: str | os.PathLike[str]) -> Score:
    """Parse a MIDI file into a Score at the engine's PPQN, or raise MidiFileError."""
    path = Path(path)
    midi = _read_midi(path)
    tpq = midi.ticks_per_beat
    if tpq <= 0:
        raise MidiFileError(f"unusable time division {tpq} (SMPTE or zero)")
    notes: list[Note] = []
    tempos: list[TempoChange] = []
    meters: list[MeterChange] = []
    names: list[str] = []
    for index, track in enumerate(midi.tracks):
        if len(track) == 0:
            raise MidiFileError(f"zero-length track {index}")
        names.append(_parse_track(track, index, tpq, notes, tempos, meters))
    if not notes:
        raise MidiFileError("no notes")
    score = Score(notes, tempos, meters, names, source=str(path))
    hours = score.duration_seconds / 3600
    if hours > MAX_DURATION_HOURS:
        raise MidiFileError(f"absurd duration: {hours:.1f} hours")
    return score


def _read_midi(path: Path) -> mido.MidiFile:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MidiFileError(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise MidiFileError("empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise MidiFileError(f"file too large ({size} bytes)")
    try:
        return mido.MidiFile(path, clip=True)
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError, ...
        raise MidiFileError(f"corrupt MIDI: {type(exc).__name__}: {exc}") from None


def _parse_track(
    track: mido.MidiTrack,
    index: int,
    tpq: int,
    notes: list[Note],
    tempos: list[TempoChange],
    meters: list[MeterChange],
) -> str:
    """Append the track's notes and meta events; return its name."""
    name = ""
    tick = 0
    # (channel, pitch) -> [(start tick, velocity)] of notes still sounding
    open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
    max_delta = MAX_DELTA_QUARTERS * tpq
    for msg in track:
        if msg.time > max_delta:
            raise MidiFileError(f"absurd delta time {msg.time} ticks in track {index}")
        tick += msg.time
        at = rescale_ticks(tick, tpq, PPQN)
        kind = msg.type
        if kind == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((at, msg.velocity))
        elif kind == "note_off" or (kind == "note_on" and msg.velocity == 0):
            started = open_notes.get((msg.channel, msg.note))
            if started:
                start, velocity = started.pop(0)
                end = max(at, start + 1)
                notes.append(Note(start, end, msg.note, velocity, msg.channel, index))
        elif kind == "set_tempo":
            if msg.tempo <= 0:
                raise MidiFileError(f"tempo 0 at tick {tick} in track {index}")
            tempos.append(TempoChange(at, msg.tempo))
        elif kind == "time_signature":
            meters.append(MeterChange(at, _meter(msg, index)))
        elif kind == "track_name" and not name:
            name = msg.name
    end = rescale_ticks(tick, tpq, PPQN)
    for (channel, pitch), starts in open_notes.items():  # notes never released end with the track
        for start, velocity in starts:
            notes.append(Note(start, max(end, start + 1), pitch, velocity, channel, index))
    return name


def _meter(msg: mido.MetaMessage, index: int) -> TimeSignature:
    try:
        return TimeSignature(msg.numerator, msg.denominator)
    except ValueError as exc:
        raise MidiFileError(f"{exc} in track {index}") from None


def save_score(score: Score, path: str | os.PathLike[str]) -> None:
    """Write a Score as type-1 MIDI at the engine PPQN: a tempo/meter track, then one per track."""
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQN)
    meta: list[tuple[int, mido.MetaMessage]] = [
        (t.tick, mido.MetaMessage("set_tempo", tempo=t.us_per_quarter)) for t in score.tempos
    ]
    meta += [
        (m.tick, mido.MetaMessage(
            "time_signature", numerator=m.signature.numerator, denominator=m.signature.denominator
        ))
        for m in score.meters
    ]
    midi.tracks.append(_to_track(meta, "musegen"))
    for track_index in sorted({n.track for n in score.notes}):
        events: list[tuple[int, mido.Message]] = []
        for n in score.notes:
            if n.track != track_index:
                continue
            # (tick, order) sorting puts note-offs before note-ons at the same tick.
            events.append((n.end, mido.Message("note_off", channel=n.channel, note=n.pitch)))
            events.append((n.start, mido.Message(
                "note_on", channel=n.channel, note=n.pitch, velocity=max(1, min(127, n.velocity))
            )))
        name = score.track_names[track_index] if track_index < len(score.track_names) else ""
        midi.tracks.append(_to_track(events, name))
    tmp = Path(path).with_suffix(Path(path).suffix + ".tmp")
    midi.save(tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _to_track(
    events: list[tuple[int, mido.Message | mido.MetaMessage]], name: str
) -> mido.MidiTrack:
    track = mido.MidiTrack()
    if name:
        track.append(mido.MetaMessage("track_name", name=name))
    order = {"note_off": 0, "set_tempo": 0, "time_signature": 0, "note_on": 1}
    last = 0
    for tick, msg in sorted(events, key=lambda e: (e[0], order.get(e[1].type, 1))):
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track
