"""Fan-out benchmark: one engine playing, N websocket clients on localhost.

    python -m bench.web_fanout --clients 50 --seconds 20 --json
    python -m bench.web_fanout --fanout both --seconds 30   # queued vs direct

The engine and the server run here; the clients run in a child process (one asyncio loop,
N connections), so their work does not count as the server's. For every `bar` message a
client takes the delivery latency, its receipt time minus the `sent_at` the hub stamped
when the engine handed the bar over (both on the same host's monotonic clock), and the
lead of each note: when it sounds, from the latest `state` anchor, minus the receipt time.
A note with less than 100 ms of lead is late. A client only timestamps and keeps what it
receives and decodes it after the run: 50 browsers decode in 50 processes, and one process
decoding for all of them would add its own queue to the latency measured.

`--fanout both` measures the hub's two fan-outs in the same run, alternating rounds of the
queued (baseline) and the direct one so a change in the machine's load hits both, and
reports each one's median and p99 and the ratio of direct to queued.

Memory per client is the server process's resident memory with the clients connected minus
without, divided by N. The density changes every two bars so regenerated bars are part of
the traffic too.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import math
import os
import selectors
import socket
import struct
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, cast

from bench import checkout_env

if TYPE_CHECKING:
    from bridges.web.hub import Fanout

LATE_S = 0.1
log = logging.getLogger(__name__)


# -- the client side (child process) ------------------------------------------------------------


async def _one_client(url: str, until: float, out: dict[str, Any]) -> None:
    from websockets.asyncio.client import connect

    received: list[tuple[float, str | bytes]] = []
    async with connect(url, max_size=None) as ws:
        out["connected"] = True
        while time.monotonic() < until:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(0.01, until - time.monotonic()))
            except TimeoutError:
                break
            received.append((time.monotonic(), raw))
    _decode(received, out)


def _decode(received: list[tuple[float, str | bytes]], out: dict[str, Any]) -> None:
    state: dict[str, Any] | None = None
    for got, raw in received:
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


class _RawClient:
    """The least a websocket client can do: read frames off a plain socket, answer pings.

    With one process standing in for N browsers, the websockets library's per-message work
    (~50 us) queues each client behind the others: the 50th client's copy would be read
    ~3 ms after the first even if the server wrote all 50 at once. Reading raw frames cuts
    that to a few microseconds a client, so the latency measured is the server's."""

    def __init__(self, url: str, out: dict[str, Any]) -> None:
        rest = url.removeprefix("ws://")
        address, _, path = rest.partition("/")
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {address}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        head, _, self.buffer = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n")[0].decode())
        self.sock.setblocking(False)
        self.out = out
        self.received: list[tuple[float, str | bytes]] = []
        self.closed = False
        out["connected"] = True

    def readable(self) -> None:
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        got = time.monotonic()
        if not chunk:
            self.closed = True
            return
        self.buffer += chunk
        while (frame := self._frame()) is not None:
            opcode, payload = frame
            if opcode == 0x1:
                self.received.append((got, payload.decode()))
            elif opcode == 0x9:  # ping: a pong, masked as a client's frames must be
                mask = os.urandom(4)
                masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                self.sock.sendall(bytes((0x8A, 0x80 | len(payload))) + mask + masked)
            elif opcode == 0x8:
                self.closed = True

    def _frame(self) -> tuple[int, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        length, start = buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, start = struct.unpack("!H", buf[2:4])[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, start = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < start + length:
            return None
        self.buffer = buf[start + length:]
        return buf[0] & 0x0F, buf[start:start + length]


def _raw_clients(url: str, n: int, seconds: float) -> list[dict[str, Any]]:
    until = time.monotonic() + seconds
    results: list[dict[str, Any]] = [
        {"connected": False, "messages": 0, "latency": [], "leads": [], "error": None}
        for _ in range(n)]
    clients: list[_RawClient] = []
    with selectors.DefaultSelector() as selector:
        for r in results:
            try:
                c = _RawClient(url, r)
            except OSError as exc:
                r["error"] = repr(exc)
                continue
            clients.append(c)
            selector.register(c.sock, selectors.EVENT_READ, c)
        while clients and time.monotonic() < until:
            for key, _ in selector.select(max(0.0, until - time.monotonic())):
                c = key.data
                c.readable()
                if c.closed:
                    selector.unregister(c.sock)
                    clients.remove(c)
    for c in clients:
        c.sock.close()
        _decode(c.received, c.out)
    return results


def client_main(url: str, n: int, seconds: float, kind: str = "raw") -> None:
    results = (_raw_clients(url, n, seconds) if kind == "raw"
               else asyncio.run(_clients(url, n, seconds)))
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
                     model: str = "drums-lstm", fanout: Fanout = "direct",
                     client: str = "raw") -> dict[str, Any]:
    """One run with the hub's `fanout` ("direct" or "queued"); `client`: "raw" frames off
    plain sockets, or the "websockets" library's asyncio client."""
    return _summary(_run(clients, seconds, tempo, model, fanout, client))


def compare_fanouts(clients: int = 50, seconds: float = 20.0, *, tempo: float = 120.0,
                    model: str = "drums-lstm", rounds: int = 2,
                    client: str = "raw") -> dict[str, Any]:
    """Queued (the baseline) and direct fan-out in the same run: `rounds` rounds of each,
    alternating, `seconds` in all per fan-out; each one's figures and direct / queued."""
    raws: dict[Fanout, list[dict[str, Any]]] = {"queued": [], "direct": []}
    for _ in range(rounds):
        for fanout in raws:
            raws[fanout].append(_run(clients, seconds / rounds, tempo, model, fanout,
                                         client))
    out: dict[str, Any] = {name: _summary(_merged(runs)) for name, runs in raws.items()}
    out["ratio_direct_to_queued"] = {
        q: out["direct"]["latency_ms"][q] / out["queued"]["latency_ms"][q]
        for q in ("p50", "p99")}
    out["rounds"] = rounds
    return out


def _merged(runs: list[dict[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    return {**first, "seconds": sum(r["seconds"] for r in runs),
            "connected": min(r["connected"] for r in runs),
            "results": [x for r in runs for x in r["results"]],
            "memory_per_client_kib": max(r["memory_per_client_kib"] for r in runs),
            "dropped_clients": sum(r["dropped_clients"] for r in runs),
            "direct_writes": sum(r["direct_writes"] for r in runs)}


def _run(clients: int, seconds: float, tempo: float, model: str,
         fanout: Fanout, client: str) -> dict[str, Any]:
    from bridges.web.server import serve
    from musegen.clock import InternalClock
    from musegen.engine.session import LiveSession

    session = LiveSession.from_models({"drums": model}, InternalClock(tempo))
    server = serve(session, port=0, fanout=fanout)
    session.start()
    time.sleep(0.5)
    rss_before = _rss_bytes()
    url = server.url.replace("http://", "ws://") + "/ws"
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.web_fanout", "--worker", url,
         "--clients", str(clients), "--seconds", str(seconds + 2.0), "--client", client],
        stdout=subprocess.PIPE, env=checkout_env(os.environ))
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
    return {"clients": clients, "connected": connected, "seconds": seconds, "tempo_bpm": tempo,
            "fanout": fanout, "client": client, "results": json.loads(out),
            "memory_per_client_kib": (rss_with - rss_before) / max(1, clients) / 1024,
            "dropped_clients": server.hub.dropped, "direct_writes": server.hub.direct_writes}


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    results: list[dict[str, Any]] = run["results"]
    latency = [x for r in results for x in r["latency"]]
    leads = [x for r in results for x in r["leads"]]
    return {
        "fanout": run["fanout"], "client": run["client"], "clients": run["clients"],
        "connected": run["connected"],
        "seconds": run["seconds"], "tempo_bpm": run["tempo_bpm"],
        "bar_messages": len(latency),
        "latency_ms": {"p50": _percentile(latency, 0.5) * 1e3,
                       "p99": _percentile(latency, 0.99) * 1e3,
                       "max": max(latency, default=math.nan) * 1e3},
        "notes": len(leads),
        "late_notes": sum(1 for x in leads if x < LATE_S),
        "min_lead_ms": min(leads, default=math.nan) * 1e3,
        "memory_per_client_kib": run["memory_per_client_kib"],
        "dropped_clients": run["dropped_clients"], "direct_writes": run["direct_writes"],
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
    p.add_argument("--fanout", choices=("direct", "queued", "both"), default="direct",
                   help="the hub's fan-out; both: queued and direct in alternating rounds")
    p.add_argument("--rounds", type=int, default=2, help="rounds of each with --fanout both")
    p.add_argument("--client", choices=("raw", "websockets"), default="raw",
                   help="the benchmark's clients: raw frames off sockets (measures the "
                   "server), or the websockets library (adds its own per-client work)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # the child process: a ws URL
    args = p.parse_args(argv)
    if args.worker:
        client_main(args.worker, args.clients, args.seconds, args.client)
        return 0
    logging.basicConfig(level=logging.WARNING)
    if args.fanout == "both":
        both = compare_fanouts(args.clients, args.seconds, tempo=args.tempo,
                               rounds=args.rounds, client=args.client)
        if args.json:
            sys.stdout.write(json.dumps(both) + "\n")
        else:
            for name in ("queued", "direct"):
                _print(both[name])
            ratio = both["ratio_direct_to_queued"]
            sys.stdout.write(f"direct / queued: p50 {ratio['p50']:.2f}, "
                             f"p99 {ratio['p99']:.2f}\n")
        return 0
    result = run_fanout_bench(args.clients, args.seconds, tempo=args.tempo,
                              fanout=cast("Fanout", args.fanout), client=args.client)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        _print(result)
    return 0


def _print(result: dict[str, Any]) -> None:
    lat = result["latency_ms"]
    sys.stdout.write(
        f"{result['fanout']} ({result['client']} clients): "
        f"{result['connected']}/{result['clients']} clients, "
        f"{result['bar_messages']} bar deliveries: p50 {lat['p50']:.2f} ms, p99 "
        f"{lat['p99']:.2f} ms, max {lat['max']:.2f} ms; {result['late_notes']} late of "
        f"{result['notes']} notes (min lead {result['min_lead_ms']:.0f} ms); "
        f"{result['memory_per_client_kib']:.0f} KiB per client; "
        f"{result['dropped_clients']} dropped\n")


if __name__ == "__main__":
    sys.exit(main())
