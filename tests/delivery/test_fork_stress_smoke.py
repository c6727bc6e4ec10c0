"""The fork stress script runs end to end with tiny numbers (so it never
rots). Its figures come from running it by hand:
`RUNS=30 python -m benchmarks.fork_stress`."""

from __future__ import annotations

import json

import pytest

from ..support.processes import run_benchmark

pytest.importorskip("gunicorn", reason="the dev extra installs gunicorn")


def test_fork_stress_runs_with_tiny_numbers() -> None:
    done = run_benchmark("fork_stress", RUNS="1", REQUESTS="40", WORKERS="2")
    tally = json.loads(done.stdout.splitlines()[-1])
    assert tally["complete_runs"] == 1, done.stdout
    assert tally["results"][0]["served"] == 40
    assert tally["results"][0]["master_event"] == 1
