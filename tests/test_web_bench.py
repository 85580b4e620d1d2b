"""The fan-out benchmark runs end to end (a few clients, a few seconds): every client gets
every bar ahead of time, with either kind of benchmark client and either fan-out. Speed is
reported by the benchmark itself, not asserted here."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench.web_fanout import compare_fanouts, run_fanout_bench


def delivered_everything(result: dict[str, Any], clients: int, bars: int) -> None:
    assert result["connected"] == clients and not result["client_errors"]
    assert result["dropped_clients"] == 0
    assert result["bar_messages"] >= clients * bars
    assert result["notes"] > 0 and result["late_notes"] == 0
    assert math.isfinite(result["latency_ms"]["p99"]) and result["latency_ms"]["p50"] >= 0
    assert result["memory_per_client_kib"] < 10_000


def test_fanout_bench_delivers_every_bar_to_every_client_ahead_of_time() -> None:
    result = run_fanout_bench(clients=4, seconds=4.0, tempo=240.0, client="websockets")
    delivered_everything(result, 4, 3)  # at least three bars each in 4 s at 240 BPM
    assert result["direct_writes"] > 0, "the default fan-out writes directly"


def test_fanout_bench_compares_both_fanouts_in_one_run() -> None:
    result = compare_fanouts(clients=4, seconds=4.0, tempo=240.0, rounds=1)
    for name in ("queued", "direct"):
        assert result[name]["fanout"] == name and result[name]["client"] == "raw"
        delivered_everything(result[name], 4, 3)
    assert result["queued"]["direct_writes"] == 0 < result["direct"]["direct_writes"]
    assert all(math.isfinite(r) for r in result["ratio_direct_to_queued"].values())


def test_musegen_bench_web_prints_both_fanouts_as_json(
        capsys: pytest.CaptureFixture[str]) -> None:
    from bridges.cli import main

    assert main(["bench", "web", "--clients", "4", "--seconds", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    for fanout in ("queued", "direct"):
        assert report[fanout]["connected"] == 4 and report[fanout]["late_notes"] == 0
        assert 0 < report[fanout]["latency_ms"]["p50"] <= report[fanout]["latency_ms"]["p99"]
    assert report["ratio_direct_to_queued"]["p99"] > 0
