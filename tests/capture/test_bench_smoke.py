"""The capture benchmark runs end to end with tiny numbers (so it never rots).
It measures nothing here: figures come from running it by hand."""

from __future__ import annotations

import json

from ..support.processes import run_benchmark


def test_bench_capture_runs_with_tiny_numbers() -> None:
    """One run prints every figure, the peers' and the ratios (and, with
    ABLATE=1, our middlewares with less to do)."""
    done = run_benchmark("bench_capture", timeout=60, N="100", ABLATE="1")
    result = json.loads(done.stdout.splitlines()[0])

    for key in (
        "asgi_ratio",
        "asgi_sentry_ratio",
        "wsgi_ratio",
        "wsgi_sentry_ratio",
        "log_untagged_ratio",
        "log_tagged_ratio",
    ):
        assert result[key] > 0, key
    assert result["events_enqueued"] > 0
    assert result["asgi_no_match_us"] > 0 and result["wsgi_no_facts_us"] > 0
    assert "QueueHandler" in done.stdout and result["asgi_added_ratio"] > 0


def test_bench_served_runs_with_tiny_numbers() -> None:
    """The served benchmark starts its three uvicorn servers, posts to each,
    prints every figure and stops them."""
    done = run_benchmark("bench_served", N="45")
    result = json.loads(done.stdout.splitlines()[0])

    for key in ("served_bare_us", "served_bento_us", "served_sentry_us"):
        assert result[key] > 0, key
    assert "Sentry ASGI middleware" in done.stdout
