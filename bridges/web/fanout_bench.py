"""Fan-out benchmark: one engine playing, N websocket clients on localhost.

    python -m bridges.web.fanout_bench --clients 50 --seconds 20 --json

The engine and the server run here; the clients run in a child process (one asyncio loop,
N connections), so their work does not count as the server's. For every `bar` message a
client takes the delivery latency, its receipt time minus the `sent_at` the hub stamped
when the engine handed the bar over (both on the same host's monotonic clock), and the
lead of each note: when it sounds, from the latest `state` anchor, minus the receipt time.
A note with less than 100 ms of lead is late. Memory per client is the server process's
resident memory with the clients connected minus without, divided by N. The density
changes every two bars so regenerated bars are part of the traffic too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LATE_S = 0.1
REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


# -- the client side (child process) ------------------------------------------------------------


async def _one_client(url: str, until: float, out: dict[str, Any]) -> None:
    from websockets.asyncio.client import connect

    state: dict[str, Any] | None = None
    async with connect(url, max_size=None) as ws:
        out["connected"] = True
        while time.monotonic() < until:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(0.01, until - time.monotonic()))
            except TimeoutError:
                break
            got = time.monotonic()
            m = json.loads(raw)
            out["messages"] += 1
            if m["type"] == "state":
                state = m
            elif m["type"] == "bar" and m["reason"] != "backlog":
                out["latency"].append(got - m["sent_at"])
                if state is not None and state["playing"]:
                    for note in m["notes"]:
                        at = state["server_time"] + (note["beat"] - state["beat"]) * 60.0 \
                            / state["tempo_bpm"]
                        out["leads"].append(at - got)


async def _clients(url: str, n: int, seconds: float) -> list[dict[str, Any]]:
    until = time.monotonic() + seconds
    results = [{"connected": False, "messages": 0, "latency": [], "leads": []}
               for _ in range(n)]
    done = await asyncio.gather(*(_one_client(url, until, r) for r in results),
                                return_exceptions=True)
    for r, d in zip(results, done, strict=True):
        r["error"] = repr(d) if isinstance(d, BaseException) else None
    return results


def client_main(url: str, n: int, seconds: float) -> None:
    results = asyncio.run(_clients(url, n, seconds))
    sys.stdout.write(json.dumps(results))


# -- the server side ----------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run_fanout_bench(clients: int = 50, seconds: float = 20.0, *, tempo: float = 120.0,
                     model: str = "drums-lstm") -> dict[str, Any]:
    from bridges.web.server import serve
    from musegen.clock import InternalClock
    from musegen.engine.session import LiveSession

    session = LiveSession.from_models({"drums": model}, InternalClock(tempo))
    server = serve(session, port=0)
    session.start()
    time.sleep(0.5)
    rss_before = _rss_bytes()
    url = server.url.replace("http://", "ws://") + "/ws"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen(
        [sys.executable, "-m", "bridges.web.fanout_bench", "--worker", url,
         "--clients", str(clients), "--seconds", str(seconds + 2.0)],
        stdout=subprocess.PIPE, env=env, cwd=REPO)
    try:
        connected = _wait_clients(server.hub, clients)
        rss_with = _rss_bytes()
        session.play()
        _play(session, seconds)
        out, _ = child.communicate(timeout=seconds + 60)
    finally:
        if child.poll() is None:
            child.kill()
        server.stop()
        session.close()
    results: list[dict[str, Any]] = json.loads(out)
    latency = [x for r in results for x in r["latency"]]
    leads = [x for r in results for x in r["leads"]]
    return {
        "clients": clients, "connected": connected, "seconds": seconds, "tempo_bpm": tempo,
        "bar_messages": len(latency),
        "latency_ms": {"p50": _percentile(latency, 0.5) * 1e3,
                       "p99": _percentile(latency, 0.99) * 1e3,
                       "max": max(latency, default=math.nan) * 1e3},
        "notes": len(leads),
        "late_notes": sum(1 for x in leads if x < LATE_S),
        "min_lead_ms": min(leads, default=math.nan) * 1e3,
        "memory_per_client_kib": (rss_with - rss_before) / max(1, clients) / 1024,
        "dropped_clients": server.hub.dropped,
        "client_errors": [r["error"] for r in results if r["error"]],
    }


def _wait_clients(hub: Any, n: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(hub.clients) < n:
        time.sleep(0.05)
    time.sleep(0.5)  # let the greetings drain before measuring memory
    return len(hub.clients)


def _play(session: Any, seconds: float) -> None:
    """Play for `seconds`, moving the density every two bars."""
    lo, hi = session.part("drums").meta.density_range
    bar_s = 60.0 / session.clock.tempo_bpm * session.worker.beats_per_bar
    end = time.monotonic() + seconds
    high = False
    while time.monotonic() < end:
        time.sleep(min(2 * bar_s, max(0.0, end - time.monotonic())))
        high = not high
        session.set_controls("drums", density=hi * 0.75 if high else (lo + hi) / 4)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--tempo", type=float, default=120.0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # the child process: a ws URL
    args = p.parse_args(argv)
    if args.worker:
        client_main(args.worker, args.clients, args.seconds)
        return 0
    logging.basicConfig(level=logging.WARNING)
    result = run_fanout_bench(args.clients, args.seconds, tempo=args.tempo)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        lat = result["latency_ms"]
        sys.stdout.write(
            f"{result['connected']}/{result['clients']} clients, {result['bar_messages']} bar "
            f"deliveries: p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, max "
            f"{lat['max']:.2f} ms; {result['late_notes']} late of {result['notes']} notes "
            f"(min lead {result['min_lead_ms']:.0f} ms); "
            f"{result['memory_per_client_kib']:.0f} KiB per client\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
