"""MIDI CC -> live controls, with MIDI learn and a JSON file the mapping is saved to.

A binding maps (channel, controller) to one control of one part. The 7-bit value goes
through that control's own knob mapping (`DensityControl.from_knob`, `GenreControl.from_knob`)
so a knob sweeps exactly the model's valid range. `arm(part, control)` starts MIDI learn: the
next CC that arrives is bound to it (replacing any binding of that CC) and `learned` is set.

The timbre morph (`morph_x`, `morph_y`) belongs to the session, not to a part: its bindings
name the pseudo-part `SYNTH`, whatever part was armed.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from musegen.checkpoint import ModelMeta
from musegen.music.controls import ControlError

ANY_CHANNEL = -1
# Continuous controls and the range a knob sweeps; the rest are switches (value >= 64: on).
RANGES = {"temperature": (0.1, 2.0), "humanize": (0.0, 1.0), "swing": (0.0, 1.0),
          "morph_x": (0.0, 1.0), "morph_y": (0.0, 1.0)}
SWITCHES = ("mute", "hold")
CONTROLS = ("density", "genre", *RANGES, *SWITCHES)
MORPH_CONTROLS = {"morph_x": "x", "morph_y": "y"}  # control -> the axis it moves
SYNTH = "synth"  # the pseudo-part the session-wide morph controls bind to
# Out of the box: CC 20-25 on any channel steer the first part, 26-27 move the timbre morph
# (General Purpose / undefined controller numbers, so they clash with nothing a synth
# listens to).
DEFAULT_CCS = {20: "density", 21: "genre", 22: "temperature", 23: "swing", 24: "humanize",
               25: "mute"}
DEFAULT_MORPH_CCS = {26: "morph_x", 27: "morph_y"}


@dataclass(frozen=True, slots=True)
class CCBinding:
    channel: int  # 0..15, or ANY_CHANNEL
    cc: int
    part: str
    control: str

    def value(self, raw: int, meta: ModelMeta) -> Any:
        """The control value for a 0..127 CC value."""
        knob = min(max(raw, 0), 127) / 127.0
        if self.control == "density":
            return meta.density_control.from_knob(knob)
        if self.control == "genre":
            return meta.genre_control.from_knob(knob)
        if self.control in SWITCHES:
            return raw >= 64
        lo, hi = RANGES[self.control]
        return lo + knob * (hi - lo)


class CCMap:
    def __init__(self, bindings: list[CCBinding] | None = None) -> None:
        self.bindings: list[CCBinding] = list(bindings or [])
        self.learned = threading.Event()
        self._armed: tuple[str, str] | None = None
        self._lock = threading.Lock()

    @classmethod
    def defaults(cls, part: str) -> CCMap:
        return cls([CCBinding(ANY_CHANNEL, cc, part, c) for cc, c in DEFAULT_CCS.items()]
                   + [CCBinding(ANY_CHANNEL, cc, SYNTH, c) for cc, c in DEFAULT_MORPH_CCS.items()])

    def arm(self, part: str, control: str) -> None:
        """Bind the next CC that arrives to `control` of `part` (MIDI learn); a morph
        control binds to `SYNTH` whatever `part` says."""
        if control not in CONTROLS:
            raise ControlError(f"cannot map {control!r}; mappable: {', '.join(CONTROLS)}")
        if control in MORPH_CONTROLS:
            part = SYNTH
        with self._lock:
            self._armed = (part, control)
            self.learned.clear()

    def handle(self, channel: int, cc: int) -> CCBinding | None:
        """The binding that (channel, cc) drives now, learning it first if armed."""
        with self._lock:
            if self._armed is not None:
                part, control = self._armed
                self._armed = None
                self.bindings = [b for b in self.bindings if not _same_cc(b, channel, cc)]
                self.bindings.append(CCBinding(channel, cc, part, control))
                self.learned.set()
            for binding in self.bindings:
                if _same_cc(binding, channel, cc):
                    return binding
        return None

    # -- the config file ----------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the mapping as JSON, atomically (a crash leaves the old file intact)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"cc_map": [asdict(b) for b in self.bindings]}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CCMap:
        """Read a saved mapping; a missing file is an empty map, a broken one an error."""
        try:
            data = json.loads(Path(path).read_text())
            bindings = [CCBinding(int(b["channel"]), int(b["cc"]), str(b["part"]),
                                  str(b["control"])) for b in data["cc_map"]]
        except FileNotFoundError:
            return cls()
        except (ValueError, KeyError, TypeError) as exc:
            raise ControlError(f"{path}: not a musegen CC map ({exc})") from None
        for b in bindings:
            if b.control not in CONTROLS or not 0 <= b.cc <= 127:
                raise ControlError(f"{path}: bad binding {b}")
        return cls(bindings)


def _same_cc(binding: CCBinding, channel: int, cc: int) -> bool:
    return binding.cc == cc and binding.channel in (ANY_CHANNEL, channel)
