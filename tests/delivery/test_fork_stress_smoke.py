"""The fork stress script runs end to end with tiny numbers (so it never
rots). Its figures come from running it by hand:
`RUNS=30 python -m benchmarks.fork_stress`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gunicorn", reason="the dev extra installs gunicorn")

ROOT = Path(__file__).resolve().parents[2]


def test_fork_stress_runs_with_tiny_numbers() -> None:
    env = dict(os.environ, RUNS="1", REQUESTS="40", WORKERS="2")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fork_stress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    tally = json.loads(done.stdout.splitlines()[-1])
    assert tally["complete_runs"] == 1, done.stdout
    assert tally["results"][0]["served"] == 40
    assert tally["results"][0]["master_event"] == 1
