"""The store benchmark runs end to end with tiny numbers (so it never rots).
It measures nothing here: figures come from running it by hand."""

from __future__ import annotations

import json

from ..support.processes import run_benchmark


def test_bench_store_runs_with_tiny_numbers() -> None:
    done = run_benchmark(
        "bench_store",
        N="500",
        ROUNDS="1",
        WARMUP="10",
        PORT="0",  # the sink takes a port from the OS
        FLEET="2",
        FLEET_EVENTS="20",
        FLEET_SECONDS="0.5",
        FLEET_INTERVAL="0.2",
    )
    result = json.loads(done.stdout.splitlines()[0])
    assert result["rounds"][0]["memory"]["delivered"] == 500
    assert result["rounds"][0]["store"]["delivered"] == 500
    assert result["track_ratio"] > 0 and result["cpu_ratio"] > 0
    assert result["fleet"]["store"]["events"] == 40
    assert result["fleet"]["memory"]["events"] == 40
