"""The pedal as an appliance: its systemd unit, and the sd_notify messages the unit expects.

The unit restarts the pedal whatever ends it (`Restart=always`) and also when it hangs:
`WatchdogSec=` makes systemd kill a service that stops sending `WATCHDOG=1`, and
`Watchdog` sends it only while the engine's dispatch loop is still turning, so a hung
engine is restarted, not only a dead one. Configuration is read from /etc/musegen; the
only place written is the data directory (recordings), so a read-only root works
(docs/pedal.md has the overlay set-up). sd_notify is the documented datagram protocol on
$NOTIFY_SOCKET; no libsystemd is needed.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path

from musegen.engine import LiveSession

WATCHDOG_S = 10  # the unit's WatchdogSec
DEFAULT_CONFIG = Path("/etc/musegen/pedal.toml")
DEFAULT_DATA = Path("/var/lib/musegen")


def unit_text(config: Path = DEFAULT_CONFIG, data_dir: Path = DEFAULT_DATA,
              executable: str | None = None, user: str = "musegen") -> str:
    """The systemd unit of `musegen pedal` (Type=notify: started once it says READY)."""
    exe = executable or sys.executable
    state = (f"StateDirectory={data_dir.name}\n" if data_dir.parent == Path("/var/lib")
             else "")  # systemd makes it, owned by the user
    return f"""[Unit]
Description=musegen pedal: a generative co-player in a box
Wants=sound.target
After=sound.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exe} -m bridges pedal --config {config} --data-dir {data_dir}
Restart=always
RestartSec=100ms
WatchdogSec={WATCHDOG_S}
User={user}
SupplementaryGroups=audio gpio spi
# real-time scheduling for the audio and clock threads where the kernel allows it
LimitRTPRIO=20
LimitMEMLOCK=infinity
Nice=-10
{state}ReadWritePaths={data_dir}
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
Environment=PYTHONUNBUFFERED=1

[Install]
WantedBy=multi-user.target
"""


def notify(message: str) -> bool:
    """Send one sd_notify message; False where no service manager listens."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # @: an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
        except OSError:
            return False
    return True


class Watchdog:
    """Sends WATCHDOG=1 at half the manager's interval while the engine still turns."""

    def __init__(self, session: LiveSession) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.interval_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None
        self.session = session
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="musegen-watchdog", daemon=True)
        if self.interval_s is not None:
            self._thread.start()

    def _run(self) -> None:
        assert self.interval_s is not None
        dispatcher, last = self.session.dispatcher, -1
        while not self._stop.wait(self.interval_s):
            turning = dispatcher.turns != last
            last = dispatcher.turns
            if self.session.running and turning and notify("WATCHDOG=1"):
                self.sent += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
