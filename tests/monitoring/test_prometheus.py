"""`bento_track.integrations.prometheus` in one process: a real client
delivering to the emulator, its registry rendered and parsed back with
prometheus_client, compared with `stats()`."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bento_track.integrations import prometheus
from bento_track.integrations.figures import readings

FAST = dict(requests_per_minute=10_000, rate_window=60.0, flush_interval=0.05)


def page(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def want(client: Any) -> dict[tuple[str, tuple], float]:
    site = client.config.site_uuid
    out = {}
    for figure, label, value in readings(client.stats()):
        if figure.name is None or figure.name == "store_oldest_event_age_seconds":
            continue
        labels = {"site_uuid": site}
        if label is not None:
            labels[str(figure.label)] = label
        suffix = "_total" if figure.kind == "counter" else ""
        out[
            (prometheus.PREFIX + figure.name + suffix, tuple(sorted(labels.items())))
        ] = value
    return out


def test_a_scrape_says_what_stats_says(fast_emulator, clients) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST, strict=False)
    registry = CollectorRegistry()
    assert prometheus.register(registry, client) is registry
    for i in range(7):
        client.track("page.viewed", email="a@example.com", details={"i": i})
    client.track("page.viewed", email="not an email")  # dropped: invalid
    client.upsert_subscriber("a@example.com", tags="reader")
    assert client.flush(10)

    got = page(registry)
    assert {k: v for k, v in got.items() if k in want(client)} == want(client)
    site = (("site_uuid", fast_emulator.site_uuid),)
    assert got[("bento_track_events_delivered_total", site)] == 7
    assert (
        got[("bento_track_events_dropped_total", (("reason", "invalid"), *site))] == 1
    )
    assert got[("bento_track_queue_events", site)] == 0
    updates = "bento_track_subscriber_updates_delivered_total"
    assert got[(updates, (("kind", "upsert"), *site))] == 1
    assert set(prometheus.exported_names()) == {name for name, _ in got}


def test_register_twice_changes_nothing_and_two_clients_are_two_sites(
    fast_emulator, clients
) -> None:
    first = clients(**fast_emulator.client_kwargs(), **FAST)
    other = clients(
        **{**fast_emulator.client_kwargs(), "site_uuid": "other-site"}, **FAST
    )
    registry = CollectorRegistry()
    prometheus.register(registry, first)
    prometheus.register(registry, first)
    prometheus.register(registry, other)
    first.track("page.viewed", email="a@example.com")
    sites = sorted(
        dict(labels)["site_uuid"]
        for name, labels in page(registry)
        if name == "bento_track_events_enqueued_total"
    )
    assert sites == sorted([fast_emulator.site_uuid, "other-site"])


class Broken:
    """A client whose stats() raises (a bug somewhere): counts its calls."""

    config = None
    calls = 0

    def stats(self) -> Any:
        self.calls += 1
        raise RuntimeError("stats are broken")


def test_registering_reads_nothing_and_a_failing_read_never_fails_a_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Broken()
    registry = CollectorRegistry(auto_describe=True)
    prometheus.register(registry, broken)  # type: ignore[arg-type]
    assert broken.calls == 0  # describe(): names without reading
    with caplog.at_level(logging.WARNING, "bento_track"):
        text = generate_latest(registry).decode()
    assert broken.calls == 1
    assert "# TYPE bento_track_events_delivered_total counter" in text
    assert "stats are broken" in caplog.text


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        prometheus.register(CollectorRegistry(), interval=0)
