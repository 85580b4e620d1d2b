"""The fan-out benchmark runs end to end (a few clients, a few seconds): every client gets
every bar ahead of time. Speed is reported by the benchmark itself, not asserted here."""

from __future__ import annotations

import math

from bridges.web.fanout_bench import run_fanout_bench


def test_fanout_bench_delivers_every_bar_to_every_client_ahead_of_time() -> None:
    result = run_fanout_bench(clients=4, seconds=4.0, tempo=240.0)
    assert result["connected"] == 4 and not result["client_errors"]
    assert result["dropped_clients"] == 0
    assert result["bar_messages"] >= 4 * 3, "at least three bars each in 4 s at 240 BPM"
    assert result["notes"] > 0 and result["late_notes"] == 0
    assert math.isfinite(result["latency_ms"]["p99"]) and result["latency_ms"]["p50"] >= 0
    assert result["memory_per_client_kib"] < 10_000
