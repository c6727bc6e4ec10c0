"""`bento_track.integrations.opentelemetry` with the OpenTelemetry SDK's
in-memory metric reader: a real client delivering to the emulator, the
instruments read back and compared with `stats()`."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import bento_track
from bento_track.integrations import opentelemetry as bento_otel

FAST = dict(requests_per_minute=10_000, rate_window=60.0, flush_interval=0.05)


def read(reader: InMemoryMetricReader) -> dict[str, dict[tuple, float]]:
    """instrument name -> {sorted attributes: value}"""
    found: dict[str, dict[tuple, float]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "bento_track"
            for metric in scope.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    points[tuple(sorted(point.attributes.items()))] = point.value
    return found


def key(*pairs: tuple[str, str]) -> tuple:
    """Attributes as `read` keys them."""
    return tuple(sorted(pairs))


class Counting(bento_track.Client):
    """A client counting its stats() reads."""

    reads = 0

    def stats(self) -> Any:
        self.reads += 1
        return super().stats()


def test_the_sdk_reads_the_same_figures_as_stats(fast_emulator, clients) -> None:
    fast_emulator.inspect.reject_events(type="report.refused")
    client = Counting(**fast_emulator.client_kwargs(), **FAST, strict=False)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        bento_otel.instrument(provider, client)
        for i in range(6):
            client.track("page.viewed", email="a@example.com", details={"i": i})
        client.track("report.refused", email="a@example.com")
        client.track("page.viewed", email="not an email")
        client.track("page.viewed", email="also not one")
        client.upsert_subscriber("a@example.com", fields={"plan": "pro"})
        assert client.flush(10)
        stats = client.stats()
        client.reads = 0
        got = read(reader)
        assert client.reads == 1  # one collection, one read of stats()
    finally:
        provider.shutdown()
        client.shutdown(1)

    site = (bento_otel.SITE_ATTRIBUTE, fast_emulator.site_uuid)
    processed = got["bento_track.processor.event.processed"]
    assert processed[(site,)] == stats.sent == 6
    assert (
        processed[key(site, ("error.type", "invalid"))] == stats.dropped["invalid"] == 2
    )
    assert (
        processed[key(site, ("error.type", "rejected"))]
        == stats.dropped["rejected"]
        == 1
    )
    exported = got["bento_track.exporter.event.exported"]
    assert exported[(site,)] == stats.accepted == 6
    assert exported[key(site, ("error.type", "rejected"))] == stats.rejected == 1
    assert (
        got["bento_track.processor.event.queue.size"][(site,)] == stats.queue_depth == 0
    )
    assert got["bento_track.exporter.requests"][(site,)] == stats.requests
    assert stats.store is not None
    assert got["bento_track.store.events"][(site,)] == stats.store.depth == 0
    assert got["bento_track.budget.limit"][(site,)] == stats.store.budget_limit
    updates = got["bento_track.exporter.subscriber_update.exported"]
    assert updates[key(site, ("bento_track.kind", "upsert"))] == 1
    assert stats.updates_sent == {"upsert": 1}
    assert set(got) == set(bento_otel.instrument_names())


def test_only_the_api_is_imported() -> None:
    """The app brings the SDK: instrumenting never imports it."""
    code = (
        "import sys, bento_track.integrations.opentelemetry as o; "
        "o.instrument(); "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
