"""Metrics benchmark (issue 22): what the Prometheus and OpenTelemetry
integrations cost.

Run: `.venv/bin/python -m benchmarks.bench_metrics` (env `N` events per
`track()` figure, default 20000; `ROUNDS` alternated rounds, default 6,
medians reported; `STORED` events in the SQLite store for the scrape
figure, default 100000; `SCRAPES` scrapes timed, default 50). Prints one
JSON line, then a table.

1. `track()` ns/call with no collector, then with the Prometheus collector
   registered and OpenTelemetry instrumented, rounds alternated (budget: the
   same within noise, <= 1.05x: the figures are read at scrape time, nothing
   runs per event).
2. One Prometheus scrape (`generate_latest`) with the SQLite store holding
   `STORED` events (budget < 5 ms), next to `stats()` alone and one
   OpenTelemetry collection (in-memory reader).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import tempfile
import time
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

import bento_track
from bento_track.integrations import opentelemetry as bento_otel
from bento_track.integrations import prometheus

from . import bench_delivery
from .bench_delivery import PROPS, start_sink, timeit

N = int(os.environ.get("N", "20000"))
ROUNDS = int(os.environ.get("ROUNDS", "6"))
STORED = int(os.environ.get("STORED", "100000"))
SCRAPES = int(os.environ.get("SCRAPES", "50"))
#: budgets of issue 22
TRACK_RATIO_BUDGET = 1.05
SCRAPE_BUDGET_MS = 5.0


def _client(base_url: str, **options: Any) -> bento_track.Client:
    return bento_track.Client(
        site_uuid="bench",
        publishable_key="pk_bench",
        secret_key="sk_bench",
        base_url=base_url,
        allow_insecure_http=True,
        max_queue_size=10**7,
        requests_per_minute=100_000,
        flush_interval=0.5,
        **options,
    )


def _track_ns(client: bento_track.Client) -> float:
    def one(i: int) -> None:
        client.track("bench.event", email="user@example.com", fields=PROPS)

    timeit(one, 500)  # warm up
    return timeit(one, N)


def bench_track() -> dict[str, Any]:
    """track() ns/call, bare and with both integrations, rounds alternated."""
    sink = start_sink()
    url = f"http://127.0.0.1:{bench_delivery.PORT}/api/v1"
    bare: list[float] = []
    observed: list[float] = []
    try:
        for round_ in range(ROUNDS):
            # ABBA order: neither kind always runs first (a warmer sink, GC).
            kinds = [False, True] if round_ % 2 == 0 else [True, False]
            for observe in kinds:
                client = _client(url)
                provider = None
                if observe:
                    prometheus.register(CollectorRegistry(), client)
                    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
                    bento_otel.instrument(provider, client)
                (observed if observe else bare).append(_track_ns(client))
                client.shutdown(5)
                if provider is not None:
                    provider.shutdown()
    finally:
        sink.terminate()
        sink.wait(10)
    without, with_ = statistics.median(bare), statistics.median(observed)
    return {
        "track_ns_without": round(without),
        "track_ns_with": round(with_),
        "track_ratio": round(with_ / without, 3),
        "track_budget_ok": with_ / without <= TRACK_RATIO_BUDGET,
    }


def _dead_url() -> str:
    """A loopback URL nothing listens on: events stay in the store."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


def _median_ms(fn: Any, n: int, pause: float = 0.0) -> float:
    times = []
    for _ in range(n):
        time.sleep(pause)
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def bench_scrape() -> dict[str, Any]:
    """One scrape, stats() and one OTel collection with STORED events stored."""
    logging.getLogger("bento_track").setLevel(logging.CRITICAL)  # refused sends
    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:///{os.path.join(folder, 'events.db')}"
        client = _client(_dead_url(), store=store, max_store_bytes=2**30)
        try:
            for _ in range(STORED):
                client.track("bench.event", email="user@example.com", fields=PROPS)
            deadline = time.monotonic() + 300
            while True:
                found = client.stats().store
                if found is not None and found.depth >= STORED:
                    break
                assert time.monotonic() < deadline, "the store never filled"
                time.sleep(0.1)
            registry = CollectorRegistry()
            prometheus.register(registry, client)
            generate_latest(registry)  # warm up
            scrape_ms = _median_ms(lambda: generate_latest(registry), SCRAPES)
            stats_ms = _median_ms(client.stats, SCRAPES)
            reader = InMemoryMetricReader()
            provider = MeterProvider(metric_readers=[reader])
            # A collection's callbacks share one stats() read; the pause makes
            # each timed collection read afresh.
            bento_otel.instrument(provider, client, snapshot_age=0.05)
            otel_ms = _median_ms(reader.get_metrics_data, SCRAPES, pause=0.06)
            provider.shutdown()
            depth = client.stats().store.depth  # type: ignore[union-attr]
        finally:
            client.shutdown(0.5)
    return {
        "stored": depth,
        "scrape_ms": round(scrape_ms, 3),
        "stats_ms": round(stats_ms, 3),
        "otel_collect_ms": round(otel_ms, 3),
        "scrape_budget_ok": scrape_ms < SCRAPE_BUDGET_MS,
    }


def main() -> None:
    result = {**bench_track(), **bench_scrape()}
    print(json.dumps(result))
    print(f"track() without metrics        {result['track_ns_without']:>8} ns/call")
    print(
        f"track() with both integrations {result['track_ns_with']:>8} ns/call "
        f"(x{result['track_ratio']}, budget <= {TRACK_RATIO_BUDGET})"
    )
    print(
        f"one scrape, {result['stored']} events stored  "
        f"{result['scrape_ms']:>8} ms (budget < {SCRAPE_BUDGET_MS} ms)"
    )
    print(f"stats() alone                  {result['stats_ms']:>8} ms")
    print(f"one OpenTelemetry collection   {result['otel_collect_ms']:>8} ms")


if __name__ == "__main__":
    main()
