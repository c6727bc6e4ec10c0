"""The plugin benchmark runs end to end with one round (so it never rots).
Its figure comes from running it by hand; what this run checks is the part
that does not depend on the machine: the unrelated project's run, plugin
loaded, imported no bento_track module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_plugin_runs_with_one_round() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_plugin"],
        cwd=ROOT,
        env=dict(os.environ, RUNS="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[0])

    assert result["runs"] == 1
    assert result["bento_track_modules_imported"] == []
    assert result["with_plugin_ms"] > 0 and result["without_plugin_ms"] > 0
    assert result["budget_ms"] == 20.0
    assert 0 < result["plugin_import_ms"] < 1000
    assert "added by the plugin" in done.stdout
