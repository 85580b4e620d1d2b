"""OSC (Open Sound Control) over UDP: controls in, notes and downbeats out.

    controls = OscControls(session, port=9000)        # /musegen/... drives the session
    notes = OscNotesOut(session, "127.0.0.1", 9001)   # every note as a timestamped bundle
    ...
    controls.close(); notes.close()

OSC has no authentication: anyone who can send UDP to the port drives the engine, so the
server binds 127.0.0.1 unless told otherwise. The address table is in `addresses`.
"""

from __future__ import annotations

from bridges.osc.addresses import OscDrop, apply_message
from bridges.osc.notes import OscNotesOut, parse_target
from bridges.osc.server import OscControls

__all__ = ["OscControls", "OscDrop", "OscNotesOut", "apply_message", "parse_target"]
