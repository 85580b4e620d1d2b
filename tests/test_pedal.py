"""The pedal box (bridges/pedal): its TOML config, its controls on gpiozero's own mock pin
factory (the footswitch pressed and held, a knob on a simulated MCP3008 turned), its systemd
unit checked by `systemd-analyze verify`, and `musegen pedal` run headless under a real
sd_notify socket: READY, watchdog pings from a turning engine, STOPPING."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockSPIDevice

from bridges.pedal.config import Controls, PedalConfigError, load_config, parse_config
from bridges.pedal.controls import PedalControls, led_lit
from musegen.engine import LiveSession
from tests.jack_rig import wait_until
from tests.test_engine import FakeTime
from tests.test_session import make_session, play

WAIT_S = 5.0
ROOT = Path(__file__).resolve().parent.parent




# ---------------------------------------------------------------------------- the config
def test_the_shipped_example_is_the_default_and_means_these_live_options() -> None:
    config = load_config(None)
    args = config.live_args(now=0.0)
    assert args[:2] == ["live", "--backend"] and "--audio" in args and "--no-web" in args
    record = Path(args[args.index("--record") + 1])
    assert record.parent == Path("/var/lib/musegen/sessions")  # only the data dir is written
    assert config.controls == Controls()
    assert "--config" not in args  # the default CC map (20-27)
    learned = parse_config({"midi": {"cc_map": "/etc/musegen/knobs.json"}}, "test")
    args = learned.live_args(now=0.0)
    assert args[args.index("--config") + 1] == "/etc/musegen/knobs.json"


@pytest.mark.parametrize("text, reason", [
    ("[engine]\nbpm = 'fast'", "[engine] bpm must be like 120.0"),
    ("[engine]\nclock = 'link'", "[engine] clock must be one of internal, midi"),
    ("[audio]\nmorph = [0.5, 2.0]", "[audio] morph must be like"),
    ("[audio]\nvolume = 3", "[audio] has no key 'volume'"),
    ("[pedalboard]\n", "unknown section(s) pedalboard"),
    ("[controls]\nhold = 'reboot'", "hold must be one of tap_tempo, mute"),
    ("[controls.pots]\ndensity = 9", "MCP3008 channels 0-7"),
    ("[controls]\nfootswitch = 40", "footswitch must be a BCM pin"),
    ("[engine\nbpm = 1", "not valid TOML"),
])
def test_a_bad_config_is_one_clear_error(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "pedal.toml"
    path.write_text(text)
    with pytest.raises(PedalConfigError, match=r"pedal\.toml") as error:
        load_config(path)
    assert reason in str(error.value)


# ---------------------------------------------------------------------------- the controls
class MockMCP3008(MockSPIDevice):
    """The chip's side of the MCP3008 protocol (datasheet, figure 6-1): after the start bit
    and four command bits (single-ended, channel D2-D0), a null bit and 10 result bits.
    gpiozero's real MCP3008 class talks to it over the mock factory's software SPI."""

    def __init__(self, factory: MockFactory) -> None:
        super().__init__(11, 10, 9, 8, pin_factory=factory)  # SPI0: SCLK, MOSI, MISO, CE0
        self.values = [0.0] * 8
        self._command: int | None = None

    def on_start(self) -> None:
        super().on_start()
        self._command = None

    def on_bit(self) -> None:
        if self._command is None and self.rx_buf and self.rx_buf[-1]:
            self._command = len(self.rx_buf)  # the start bit
        elif self._command is not None and len(self.rx_buf) == self._command + 4:
            d2, d1, d0 = self.rx_buf[-3:]
            self.tx_word(round(self.values[d2 * 4 + d1 * 2 + d0] * 1023), 12)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """gpiozero's mock factory, also as its default (its software SPI, under the MCP3008,
    asks the default for pins)."""
    made, before = MockFactory(), Device.pin_factory
    Device.pin_factory = made
    yield made
    made.reset()
    Device.pin_factory = before


@pytest.fixture
def session() -> LiveSession:
    made, _ = make_session({"drums": "drums-lstm"}, FakeTime())
    return made


def pedal(session: LiveSession, factory: MockFactory, **controls: Any
          ) -> tuple[PedalControls, Clock]:
    now = Clock()
    config = Controls(**{"hold_s": 0.1, **controls})
    return PedalControls(session, config, pin_factory=factory, now=now), now


def tap(controls: PedalControls) -> None:
    pin = controls.button.pin  # type: ignore[union-attr]
    pin.drive_low()  # pressed: the switch pulls the pin to ground
    pin.drive_high()


def test_a_tap_plays_and_stops_and_the_led_says_so(session: LiveSession,
                                                   factory: MockFactory) -> None:
    controls, _ = pedal(session, factory, pots={})
    try:
        assert session.clock.playing
        assert wait_until(lambda: controls.led.is_lit, WAIT_S)  # type: ignore[union-attr]
        tap(controls)
        assert not session.clock.playing
        assert wait_until(lambda: not controls.led.is_lit, WAIT_S)  # type: ignore[union-attr]
        tap(controls)
        assert session.clock.playing
    finally:
        controls.close()


def test_the_led_says_playing_stopped_waiting_and_error(session: LiveSession,
                                                       factory: MockFactory) -> None:
    assert [led_lit("playing", t) for t in range(4)] == [True] * 4
    assert [led_lit("stopped", t) for t in range(4)] == [False] * 4
    assert sum(led_lit("waiting", t) for t in range(20)) == 10  # 1 Hz at 20 polls a second
    assert [led_lit("error", t) for t in range(8)] == [True, True, False, False] * 2  # 5 Hz
    controls, now = pedal(session, factory, pots={})
    try:
        assert controls.status() == "playing"
        session.stop()
        assert controls.status() == "stopped"
        session.play()

        class Broken:
            def send(self, events: object, at: float) -> None:
                raise OSError("port gone")

        session.add_output(Broken())
        ft = FakeTime()
        ft.t = session.now()
        play(session, ft, until=ft.t + 2.0)  # notes sent: the broken output fails
        assert session.output_errors > 0
        assert controls.status() == "error"
        now.t += 3.0  # it blinks a while, then shows the state again
        assert controls.status() == "playing"
    finally:
        controls.close()


def test_a_hold_then_taps_set_the_tempo(session: LiveSession, factory: MockFactory) -> None:
    controls, now = pedal(session, factory, pots={})
    try:
        pin = controls.button.pin  # type: ignore[union-attr]
        pin.drive_low()
        time.sleep(0.3)  # held past hold_s (gpiozero times the hold on its own thread)
        pin.drive_high()
        assert session.clock.playing  # a hold is not a tap
        for _ in range(4):  # taps 0.5 s apart: 120 BPM
            now.t += 0.5
            tap(controls)
        assert session.clock.tempo_bpm == 120.0 and session.clock.playing
        now.t += 5.0  # the tap window is over: the next tap stops again
        tap(controls)
        assert not session.clock.playing
    finally:
        controls.close()


def test_a_hold_can_mute_the_part_instead(session: LiveSession, factory: MockFactory) -> None:
    controls, _ = pedal(session, factory, pots={}, hold="mute")
    try:
        pin = controls.button.pin  # type: ignore[union-attr]
        part = session.part("drums")
        for muted in (True, False):
            pin.drive_low()
            assert wait_until(lambda want=muted: part.controls.mute == want, WAIT_S)
            pin.drive_high()
    finally:
        controls.close()


def test_turning_a_knob_steers_the_control_from_the_next_bar(
        session: LiveSession, factory: MockFactory) -> None:
    chip = MockMCP3008(factory)
    controls, _ = pedal(session, factory, pots={"density": 0, "morph_x": 3})
    try:
        part = session.part("drums")
        meta = part.meta
        chip.values[0] = 0.9
        want = meta.density_control.from_knob(round(0.9 * 127) / 127)
        assert wait_until(lambda: part.controls.density == want, WAIT_S), part.controls
        assert part.version > 0  # a control change: bars from the next one are regenerated
        chip.values[3] = 0.5
        assert wait_until(lambda: abs(session.morph[0] - 0.5) < 0.002, WAIT_S), session.morph
        low = meta.density_control.from_knob(0.0)
        chip.values[0] = 0.0
        assert wait_until(lambda: part.controls.density == low, WAIT_S)
    finally:
        controls.close()
        chip.close()


# ---------------------------------------------------------------------------- the service
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bridges", "pedal", "install-service",
                           "--unit-dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "musegen-pedal.service"
    text = unit.read_text()
    for line in ("Type=notify", "Restart=always", "WatchdogSec=10",
                 "ExecStart=" + sys.executable + " -m bridges pedal --config "
                 "/etc/musegen/pedal.toml --data-dir /var/lib/musegen",
                 "ReadWritePaths=/var/lib/musegen", "ProtectSystem=strict"):
        assert line in text.splitlines(), line
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    bad = tmp_path / "bad.service"  # and it does find faults: the check can fail
    bad.write_text(text.replace("Restart=always", "Restart=sometimes"))
    verify = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True,
                            text=True, timeout=60)
    assert "restart specifier" in verify.stderr


def test_musegen_pedal_headless_says_ready_pings_the_watchdog_and_records(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "pedal.toml"
    config.write_text(f'[engine]\nbpm = 240\n[audio]\nenabled = false\n[midi]\nbackend = "none"'
                      f'\n[data]\ndir = "{data}"\n')
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(0.2)
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
    proc = subprocess.Popen([sys.executable, "-m", "bridges", "pedal", "--config", str(config),
                             "--seconds", "4"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    got: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            got.append(listener.recv(4096).decode())
        except TimeoutError:
            if proc.poll() is not None:  # gone, and nothing more in the socket
                break
    out, err = proc.communicate(timeout=30)
    listener.close()
    assert proc.returncode == 0, err
    assert "no GPIO here" in out and "musegen: pedal playing drums=drums-lstm" in out, out
    ready = next(i for i, m in enumerate(got) if m.startswith("READY=1"))
    pings = [i for i, m in enumerate(got) if m == "WATCHDOG=1"]
    assert len(pings) >= 4 and all(i > ready for i in pings), got  # every 0.2 s for ~4 s
    assert got[-1] == "STOPPING=1"
    takes = list((data / "sessions").glob("session-*.mid"))
    assert len(takes) == 1 and takes[0].stat().st_size > 100


def test_a_config_torn_by_a_power_cut_falls_back_to_the_last_good_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "pedal.toml"
    good = (f'[engine]\nbpm = 222\n[audio]\nenabled = false\n[midi]\nbackend = "none"\n'
            f'[data]\ndir = "{data}"\n')

    def pedal_run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bridges", "pedal", "--config", str(config),
                               "--data-dir", str(data), "--seconds", "0.5"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    config.write_text(good)
    first = pedal_run()
    assert first.returncode == 0, first.stderr
    assert (data / "pedal.last-good.toml").read_text() == good
    config.write_text(good[: good.index("backend") + 9])  # the write cut off mid-line
    second = pedal_run()
    assert second.returncode == 0, second.stderr
    assert "not valid TOML" in second.stdout and "playing the last good config" in second.stdout
    assert "internal clock at 222 BPM" in second.stdout, second.stdout
    config.write_text("[engine]\nbpm = 'x'\n")  # and with no last good one: a clear error
    (data / "pedal.last-good.toml").unlink()
    third = pedal_run()
    assert third.returncode == 2 and "[engine] bpm must be like" in third.stderr


def test_a_long_press_stops_saves_the_take_and_then_shuts_down(
        tmp_path: Path, factory: MockFactory) -> None:
    """`musegen pedal` in-process on the mock pins: held for shutdown_s, it stops, the take
    is written, and only then the shutdown command runs (here: touching a file)."""
    import argparse
    import threading

    from bridges.cli import add_live
    from bridges.pedal.run import run_pedal

    data, marker = tmp_path / "data", tmp_path / "powered-off"
    config = tmp_path / "pedal.toml"
    config.write_text(f'[engine]\nbpm = 240\n[audio]\nenabled = false\n[midi]\n'
                      f'backend = "none"\n[data]\ndir = "{data}"\n[controls]\nhold_s = 0.1\n'
                      f'shutdown_s = 0.5\nshutdown_command = ["touch", "{marker}"]\n'
                      f'[controls.pots]\n')
    live = argparse.ArgumentParser()
    add_live(live.add_subparsers())
    args = argparse.Namespace(config=str(config), data_dir=str(data), seconds=60.0,
                              pin_factory=factory)

    def press_long() -> None:
        time.sleep(3.0)  # playing by then
        pin = factory.pin(17)
        pin.drive_low()
        time.sleep(1.0)
        pin.drive_high()

    presser = threading.Thread(target=press_long, daemon=True)
    presser.start()
    t0 = time.monotonic()
    assert run_pedal(args, live.parse_args) == 0
    assert time.monotonic() - t0 < 30  # it ended on the press, not the 60 s
    assert marker.exists()
    takes = list((data / "sessions").glob("*.mid"))
    assert len(takes) == 1 and takes[0].stat().st_mtime <= marker.stat().st_mtime
    presser.join(5)


def test_sigterm_ends_the_pedal_but_never_powers_off(tmp_path: Path) -> None:
    """Only a long press runs the shutdown command: a service stop (SIGTERM) must not."""
    import signal

    data, marker = tmp_path / "data", tmp_path / "powered-off"
    config = tmp_path / "pedal.toml"
    config.write_text(f'[audio]\nenabled = false\n[midi]\nbackend = "none"\n[data]\n'
                      f'dir = "{data}"\n[controls]\nshutdown_command = ["touch", "{marker}"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "bridges", "pedal", "--config", str(config),
                             "--data-dir", str(data)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "pedal playing" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert not marker.exists() and "shutting down" not in out
