"""The drum machine page in Debian's Chromium (headless, autoplay allowed) against a real
engine: it connects, books notes on the AudioContext clock, sends step edits and knob
turns the engine follows, its timbre pad moves the engine's morph and follows it, two pages
play the same notes at the same moments, a phone can use it, and it reconnects by itself.
One server and one browser for the module."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from bridges.web import WebServer, serve
from musegen.engine.session import LiveSession
from musegen.music.drum_map import CLASS_TO_GM_PITCH
from tests.web_helpers import grid_of, running_server

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"]
SHOTS = Path(__file__).resolve().parent.parent / "out" / "screenshots"
TEMPO = 180.0
HIGH_TOM = 6  # lane index


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    from musegen.clock import InternalClock

    with running_server(InternalClock(TEMPO)) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def open_page(browser: Browser, url: str, **context: Any) -> Page:
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.musegenDebug && musegenDebug().connected", timeout=15000)
    page.wait_for_selector(".cell")
    assert not errors, errors
    return page


def debug(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("musegenDebug()")
    return state


def wait_until(page: Page, script: str, timeout_s: float = 10.0) -> None:
    page.wait_for_function(script, timeout=timeout_s * 1000)


def engine_until(condition, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def page(server: WebServer, browser: Browser) -> Page:
    return open_page(browser, server.url, viewport={"width": 1200, "height": 860})


def test_the_page_loads_connects_and_shows_the_grid(page: Page) -> None:
    state = debug(page)
    assert state["connected"] and state["audio"] == "running"
    assert state["part"] == "drums" and state["clientId"] >= 1
    assert page.locator(".cell").count() == 2 * 9 * 16
    assert page.locator("#status").get_attribute("data-state") == "connected"
    assert page.locator("#genre option").count() == 10


def test_play_books_notes_on_the_audio_clock_ahead_of_time(page: Page,
                                                           server: WebServer) -> None:
    page.click("#play")
    wait_until(page, "musegenDebug().playing && musegenDebug().scheduled.length >= 24")
    booked = debug(page)["scheduled"]
    on_time = [n for n in booked if n["time"] > n["at"]]
    assert len(on_time) >= len(booked) - 4, "at most the downbeat right after Play is late"
    assert all(n["lead"] < 0.25 for n in booked), "booked by the lookahead, not on arrival"
    seconds_per_beat = 60.0 / TEMPO
    ordered = sorted(on_time, key=lambda n: n["beat"])
    for a, b in itertools.pairwise(ordered):
        gap = (b["beat"] - a["beat"]) * seconds_per_beat
        assert abs((b["time"] - a["time"]) - gap) < 0.005, (a, b)
    rendered = {(r.bar, e.beat, e.pitch) for r in server.hub.session.part("drums").rendered
                for e in r.events if e.kind == "note_on"}
    assert all((n["bar"], n["beat"], n["pitch"]) in rendered for n in booked), \
        "the page plays exactly what the engine made"
    page.screenshot(path=str(shot("web-drum-machine.png")))


def shot(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / name


def test_a_step_edit_on_the_page_reaches_the_engine(page: Page, server: WebServer) -> None:
    session = server.hub.session
    if page.get_attribute("#auto", "aria-pressed") == "true":
        page.click("#auto")
    assert engine_until(lambda: session.part("drums").controls.hold)
    wait_until(page, "musegenDebug().bars.some(b => b.auto === false)")
    for step, how in ((3, "click"), (11, "keyboard")):
        cell = page.locator(f'.bar-grid.next .cell[data-lane="{HIGH_TOM}"][data-step="{step}"]')
        if cell.get_attribute("aria-pressed") == "true":
            continue  # already on: the engine wrote it; try the other
        bar = int(page.evaluate("musegenDebug().beat") // 4) + 1
        if how == "click":
            cell.click()
        else:
            cell.focus()
            page.keyboard.press("Enter")

        def has_hit(step: int = step, bar: int = bar) -> bool:
            return any(grid_of(r, 4.0, CLASS_TO_GM_PITCH)[HIGH_TOM][step] > 0
                       for r in tuple(session.part("drums").rendered) if r.bar >= bar)

        assert engine_until(has_hit, 5.0), f"the {how} edit at step {step} reached the engine"
    page.click("#continue")
    assert engine_until(lambda: not session.part("drums").controls.hold)


def test_a_density_change_changes_the_next_bar(page: Page, server: WebServer) -> None:
    session = server.hub.session
    lo, hi = session.part("drums").meta.density_range  # the knob's ends are the model's
    before = [b for b in debug(page)["bars"] if b["density"] > 16]
    page.focus("#density")
    page.keyboard.press("Home")
    assert engine_until(lambda: session.part("drums").controls.density == lo)
    wait_until(page, f"musegenDebug().bars.filter(b => b.density === {lo:g}).length >= 2", 15)
    after = [b for b in debug(page)["bars"] if b["density"] == lo]
    mean = lambda bars: sum(len(b["notes"]) for b in bars) / len(bars)  # noqa: E731
    assert before and mean(after) < mean(before) / 2, (mean(after), mean(before))
    page.keyboard.press("End")
    assert engine_until(lambda: session.part("drums").controls.density == hi)
    page.evaluate("document.activeElement.blur()")
    session.set_controls("drums", density=32.0)


def test_dragging_a_knob_up_turns_the_engine_up(page: Page, server: WebServer) -> None:
    """A drag of 40 px up is a quarter of the knob's sweep (9.5 of 2..40). The knob is given
    the engine's value first and shown it: a knob just turned by the keyboard ignores the
    engine's states for 400 ms (SETTLE_MS), and a drag starts from what the knob shows."""
    session = server.hub.session
    lo, hi = session.part("drums").meta.density_range
    quarter = (hi - lo) / 4
    session.set_controls("drums", density=20.0)
    wait_until(page, "document.querySelector('#density').getAttribute('aria-valuenow') === '20'",
               3)
    box = page.locator("#density").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 5):
        page.mouse.move(x, y - 10 * i)
        time.sleep(0.01)
    page.mouse.up()
    turned = (20.0 + quarter * 3 / 4, 20.0 + quarter * 5 / 4)
    assert engine_until(lambda: turned[0] <= session.part("drums").controls.density
                        <= turned[1]), \
        session.part("drums").controls.density
    page.evaluate("document.activeElement.blur()")
    session.set_controls("drums", density=32.0)


def key(note: dict[str, Any]) -> tuple[int, float, int]:
    return note["bar"], round(note["beat"], 5), note["pitch"]


def test_two_pages_play_the_same_notes_at_the_same_moments(page: Page, browser: Browser,
                                                           server: WebServer) -> None:
    other = open_page(browser, server.url, viewport={"width": 1000, "height": 800})
    # Eight notes booked from its second bar on: the first notes may have been booked on a
    # single clock sample.
    wait_until(other, "(s => s.filter(n => n.bar > s[0].bar).length >= 8)"
                      "(musegenDebug().scheduled)", 15)
    joined = debug(other)["scheduled"]
    second = {key(n): n["wall"] for n in joined if n["bar"] > joined[0]["bar"]}
    # Each page books 150 ms ahead on its own timer: wait until the first page has booked
    # past the last note the second one had, so it holds all of them.
    last = joined[-1]
    wait_until(page, f"musegenDebug().scheduled.some(n => n.bar > {last['bar']} || "
                     f"(n.bar === {last['bar']} && n.beat > {last['beat']}))", 15)
    first = {key(n): n["wall"] for n in debug(page)["scheduled"]}
    common = set(first) & set(second)
    assert len(common) >= 8
    worst = max(abs(first[k] - second[k]) for k in common)
    assert worst < 15.0, f"two pages differ by {worst:.1f} ms on the same note"
    page.focus("#temperature")
    page.keyboard.press("Home")
    wait_until(other, "document.querySelector('#temperature').getAttribute('aria-valuenow')"
                      " === '0.1'")
    page.keyboard.press("ArrowUp")
    session = server.hub.session
    assert engine_until(lambda: session.part("drums").controls.temperature == 0.15)
    session.set_controls("drums", temperature=1.0)  # for the tests after
    other.context.close()


def test_a_phone_can_play_it(browser: Browser, server: WebServer) -> None:
    phone = open_page(browser, server.url, viewport={"width": 390, "height": 844},
                      has_touch=True, is_mobile=True, device_scale_factor=2)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = phone.locator(".cell").first.bounding_box()
    assert box is not None and box["width"] >= 14 and box["height"] >= 20
    phone.tap("#mute")
    assert engine_until(lambda: server.hub.session.part("drums").controls.mute)
    phone.tap("#mute")
    assert engine_until(lambda: not server.hub.session.part("drums").controls.mute)
    phone.screenshot(path=str(shot("web-drum-machine-phone.png")), full_page=True)
    phone.context.close()


def test_the_page_reconnects_by_itself(browser: Browser) -> None:
    from musegen.clock import InternalClock

    session = LiveSession.from_models({"drums": "drums-lstm"}, InternalClock(TEMPO))
    first = serve(session, port=0)
    port = first.port
    page = open_page(browser, first.url)
    was = debug(page)["clientId"]
    first.stop()
    wait_until(page, "!musegenDebug().connected")
    assert page.locator("#status").get_attribute("data-state") == "reconnecting"
    again = serve(session, port=port)
    try:
        wait_until(page, "musegenDebug().connected", 15)
        assert debug(page)["clientId"] == 1 and was == 1  # a new server counts afresh
        assert page.locator("#status").get_attribute("data-state") == "connected"
    finally:
        page.context.close()
        again.stop()
        session.close()


# Headless Chromium has no MIDI devices on this machine (Linux Web MIDI needs the ALSA
# sequencer, which these VMs lack), so the one stand-in here is the browser's MIDI output
# object: it records what the page sends, with Web MIDI's timestamps. Everything else is
# real: the page asks for MIDI access, lists and selects the output, and plays the engine's
# notes to it from its own scheduler.
MIDI_OUTPUT_STAND_IN = """
window.__midiSent = [];
const output = {id: "synth-1", name: "Test synth", type: "output", state: "connected",
                send(data, timestamp) { window.__midiSent.push({data: [...data], timestamp}); }};
Object.defineProperty(navigator, "requestMIDIAccess", {configurable: true, value: async () =>
  ({inputs: new Map(), outputs: new Map([[output.id, output]]), sysexEnabled: false})});
"""


def test_web_midi_output_sends_the_scheduled_notes_with_their_timestamps(
        browser: Browser, server: WebServer) -> None:
    context = browser.new_context()
    context.add_init_script(MIDI_OUTPUT_STAND_IN)
    page = context.new_page()
    page.goto(server.url)
    wait_until(page, "window.musegenDebug && musegenDebug().connected", 15)
    try:
        page.focus("#midi")  # the menu asks for MIDI access when first used
        page.wait_for_selector("#midi option[value='synth-1']", state="attached")
        assert page.locator("#midi option").all_inner_texts() == ["off", "Test synth"]
        page.select_option("#midi", "synth-1")
        selected_ms = float(page.evaluate("performance.now()"))
        if not debug(page)["playing"]:
            page.click("#play")
        wait_until(page, "window.__midiSent.length >= 32", 15)
        # one evaluate: what was sent and what was booked, at the same moment
        sent, scheduled, origin = page.evaluate(
            "[window.__midiSent, musegenDebug().scheduled, performance.timeOrigin]")
        booked = [n for n in scheduled if n["wall"] - origin - n["lead"] * 1000.0 > selected_ms]
    finally:
        context.close()
    ons = [(s["data"][0], s["data"][1], s["data"][2], s["timestamp"]) for s in sent
           if s["data"][0] & 0xF0 == 0x90]
    offs = [(s["data"][0] & 0x0F, s["data"][1], s["timestamp"]) for s in sent
            if s["data"][0] & 0xF0 == 0x80]
    assert booked and len(ons) >= len(booked)
    for note in booked:  # every note booked after the choice went out, at its moment
        on_ms = note["wall"] - origin
        match = [o for o in ons if o[1] == note["pitch"] and abs(o[3] - on_ms) < 0.01]
        assert len(match) == 1, (note, ons[:8])
        status, _, velocity, _ = match[0]
        assert status == 0x99 and velocity == note["velocity"]  # drums: GM channel 10
    for status, pitch, _, t in ons:  # sent together: the off is already there, later on
        assert any(c == status & 0x0F and p == pitch and t < off <= t + 2000.0
                   for c, p, off in offs), (status, pitch, t)


def test_the_timbre_pad_moves_the_engine_and_follows_it(page: Page, server: WebServer) -> None:
    session = server.hub.session
    pad = page.locator("#timbre")
    box = pad.bounding_box()
    assert box is not None and box["width"] == pytest.approx(box["height"], abs=1)

    def at(x: float, y: float) -> tuple[float, float]:  # y up, as the morph's
        return box["x"] + x * box["width"], box["y"] + (1 - y) * box["height"]

    page.mouse.move(*at(0.25, 0.75))
    page.mouse.down()
    for i in range(1, 11):  # a drag across the pad, sent as it goes
        page.mouse.move(*at(0.25 + 0.055 * i, 0.75 - 0.035 * i))
        time.sleep(0.01)
    page.mouse.up()

    def morph_is(x: float, y: float) -> bool:
        got = httpx.get(server.url + "/api/state").json()["morph"]
        return abs(got["x"] - x) < 0.02 and abs(got["y"] - y) < 0.02

    assert engine_until(lambda: morph_is(0.8, 0.4)), session.morph
    page.keyboard.press("ArrowRight")  # the pad keeps the focus the drag gave it
    assert engine_until(lambda: morph_is(0.85, 0.4)), session.morph
    page.evaluate("document.activeElement.blur()")
    # another client (here REST) moves it: the dot follows
    assert httpx.put(server.url + "/api/morph", json={"x": 0.1, "y": 0.9}).status_code == 200
    wait_until(page, "(m => m.x === 0.1 && m.y === 0.9)(musegenDebug().morph)")
    dot = page.locator("#timbre .dot").bounding_box()
    assert dot is not None
    cx, cy = dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2
    want_x, want_y = at(0.1, 0.9)
    assert abs(cx - want_x) < 2 and abs(cy - want_y) < 2, (cx, cy, want_x, want_y)
    assert pad.get_attribute("aria-valuetext") == "x 0.10, y 0.90"
    session.set_morph(0.0, 0.0)
