"""The fleet benchmark runs end to end with tiny numbers (so it never rots).
It measures nothing here: figures come from running it by hand."""

from __future__ import annotations

import json

from ..support.processes import run_benchmark


def test_bench_fleet_runs_with_tiny_numbers() -> None:
    done = run_benchmark(
        "bench_fleet",
        FLEET="2",
        EVENTS="20",
        SECONDS="0.5",
        INTERVAL="0.2",
        LIMIT="10",
        WINDOW="1",
    )
    result = json.loads(done.stdout.splitlines()[0])
    assert result["memory"]["events"] == 40 and result["redis"]["events"] == 40
    assert result["redis"]["rate_limited"] == 0
    assert result["redis"]["busiest_window"] <= 10
