"""The delivery benchmark runs end to end with tiny numbers (so it never rots).
It measures nothing here: figures come from running it by hand."""

from __future__ import annotations

import json

from ..support.processes import run_benchmark


def test_bench_delivery_runs_with_tiny_numbers() -> None:
    done = run_benchmark(
        "bench_delivery",
        timeout=60,
        N="500",
        WARMUP="10",
        PORT="0",  # the sink binds a port the OS picks: parallel runs never collide
        SUSTAIN_LIMIT="4",
        SUSTAIN_WINDOW="0.5",
        SUSTAIN_WINDOWS="1",
        SUSTAIN_BATCH="50",
    )
    result = json.loads(done.stdout.splitlines()[0])
    assert result["sink_port"] > 0
    assert result["bento_track"]["delivered"] == 500
    assert result["segment"]["delivered"] == 500
    assert result["floor"]["delivered"] == result["floor_validated"]["delivered"] == 500
    assert result["track_ratio"] > 0 and result["cpu_ratio"] > 0
    assert result["floor_ratio"] > 0 and result["floor_validated_ratio"] > 0
    assert result["sustained"].get("requests_429", 0) == 0
