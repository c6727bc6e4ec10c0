"""Plugin benchmark: what bento-track's pytest plugin adds to a project's
test run that never uses it.

Run: `.venv/bin/python -m benchmarks.bench_plugin` (env `RUNS` pairs,
default 20). Prints one JSON line, then a table.

An unrelated project (one test, no bento_track anywhere) is run by pytest
in a fresh process, `RUNS` times with the plugin as installed and `RUNS`
times with `-p no:bento_track` (pytest still reads every entry point; only
our plugin is not loaded), the two alternated so that load on the machine
falls on both alike. The figure is the median of the paired differences,
the plugin's cost: budget <= 20 ms. On a busy machine that difference is
within the noise of two whole pytest runs, so the part that is ours is also
timed alone: importing the plugin module in a fresh interpreter that has
imported pytest (what loading the plugin runs). The JSON also says whether any
`bento_track` module was imported by the run (it must not be: the plugin
imports bento_track when a test first asks for one of its fixtures).

For scale, a third run of each round loads `bento_track.testing` as a
plugin (`-p bento_track.testing`): the whole library at load, which is what
the plugin cost before it moved to a module of its own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

RUNS = int(os.environ.get("RUNS", "20"))
BUDGET_MS = 20.0

UNRELATED = """
import sys


def test_arithmetic():
    assert 1 + 1 == 2


def test_zz_report_what_was_imported():
    print("BENTO_MODULES", sorted(m for m in sys.modules if m.startswith("bento_track")))
"""


def run_pytest(project: Path, *extra: str) -> tuple[float, str]:
    """One pytest run of `project`: (wall seconds, its output)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BENTO_"))
    }
    argv = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]
    started = time.perf_counter()
    done = subprocess.run(
        [*argv, *extra], cwd=project, env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pytest failed:\n{done.stdout}\n{done.stderr}")
    return took, done.stdout


IMPORT_ONLY = """
import time
import pytest  # loaded before any plugin, in every run

started = time.perf_counter()
import _bento_track_pytestplugin  # what loading the plugin runs
print((time.perf_counter() - started) * 1000)
"""


def plugin_import_ms(runs: int) -> float:
    """Loading the plugin module alone, pytest already imported, in fresh
    interpreters: the part of a run that is ours, without the noise of
    whole pytest runs on a loaded machine. Median of `runs`, in ms."""
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_ONLY],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(done.stdout))
    return statistics.median(times)


def imported_modules(output: str) -> list[str]:
    line = next(x for x in output.splitlines() if "BENTO_MODULES" in x)
    modules: list[str] = json.loads(line.split("BENTO_MODULES", 1)[1].replace("'", '"'))
    return modules


def measure(runs: int) -> dict[str, Any]:
    """Alternate `runs` pairs (with, without the plugin); the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as folder:
        project = Path(folder)
        (project / "test_unrelated.py").write_text(textwrap.dedent(UNRELATED))
        run_pytest(project)  # warm the file system cache and the .pyc files
        run_pytest(project, "-p", "no:bento_track")
        modes = {
            "with": (),
            "without": ("-p", "no:bento_track"),
            "eager": ("-p", "no:bento_track", "-p", "bento_track.testing"),
        }
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        output = ""
        for i in range(runs):
            # Rotate which goes first, so a drift in load favours none.
            order = list(modes)[i % 3 :] + list(modes)[: i % 3]
            for mode in order:
                took, out = run_pytest(project, *modes[mode])
                times[mode].append(took)
                if mode == "with":
                    output = out
    added = [a - b for a, b in zip(times["with"], times["without"], strict=True)]
    eager = [a - b for a, b in zip(times["eager"], times["without"], strict=True)]
    return {
        "runs": runs,
        "with_plugin_ms": statistics.median(times["with"]) * 1000,
        "without_plugin_ms": statistics.median(times["without"]) * 1000,
        "added_ms": statistics.median(added) * 1000,
        "budget_ms": BUDGET_MS,
        "bento_track_modules_imported": imported_modules(output),
        "eager_added_ms": statistics.median(eager) * 1000,
        "plugin_import_ms": plugin_import_ms(runs),
    }


def main() -> None:
    """Measure, print the JSON line and the table."""
    result = measure(RUNS)
    print(json.dumps(result))
    print(
        f"\nA one-test pytest run of an unrelated project ({result['runs']} pairs, medians)"
    )
    print(f"  with bento-track's plugin      {result['with_plugin_ms']:7.1f} ms")
    print(f"  with -p no:bento_track         {result['without_plugin_ms']:7.1f} ms")
    print(
        f"  added by the plugin            {result['added_ms']:7.1f} ms "
        f"(budget {BUDGET_MS:g} ms)"
    )
    print(
        f"  loading the plugin module      {result['plugin_import_ms']:7.2f} ms "
        "(alone, pytest imported)"
    )
    print(
        f"  bento_track modules imported   {result['bento_track_modules_imported'] or 'none'}"
    )
    print(
        f"  for scale: the library at load {result['eager_added_ms']:7.1f} ms added "
        "(-p bento_track.testing, the plugin as it was)"
    )


if __name__ == "__main__":
    main()
