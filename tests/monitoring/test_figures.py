"""The table of figures (bento_track/integrations/figures.py) covers every
field of `Client.stats()`, and a dict figure's keys become label values
whatever they are: a drop reason added tomorrow is exported without a
change here."""

from __future__ import annotations

import dataclasses

import bento_track
from bento_track import DeliveryStats
from bento_track.integrations.figures import (
    FIGURES,
    NOT_EXPORTED,
    field_names,
    readings,
)
from bento_track.stores import StoreStats


def stats_type() -> type:
    """What `Client.stats()` returns (a `DeliveryStats`, or a subclass)."""
    client = bento_track.Client(disabled=True)
    try:
        found = type(client.stats())
    finally:
        client.shutdown(0)
    assert issubclass(found, DeliveryStats)
    return found


def test_every_field_of_stats_is_exported_or_said_why_not() -> None:
    fields = field_names(stats_type())
    covered = {f.field for f in FIGURES} | set(NOT_EXPORTED)
    missing = [name for name in fields if name not in covered]
    assert not missing, (
        f"new figures of stats(): {missing}; add each to FIGURES in "
        "bento_track/integrations/figures.py (or to NOT_EXPORTED, saying why)"
    )
    stale = sorted(covered - set(fields))
    assert not stale, f"FIGURES/NOT_EXPORTED name fields that are gone: {stale}"


def test_names_are_unique_and_prometheus_style() -> None:
    names = [f.name for f in FIGURES if f.name is not None]
    assert len(names) == len(set(names))
    for figure in FIGURES:
        if figure.name is None:
            continue
        assert figure.name.islower() and " " not in figure.name
        assert not figure.name.endswith("_total")  # counters get it on export
        assert "site_uuid" not in figure.name  # a label, never a name
        assert figure.help.endswith(".") or figure.help.endswith(")")


def make_stats(**changes: object) -> DeliveryStats:
    store = StoreStats(
        kind="sqlite",
        location="x.db",
        depth=7,
        nbytes=700,
        max_bytes=10_000,
        leased=2,
        leases=1,
        oldest_age=None,
        budget_used=3,
        budget_limit=100,
        budget_window=60.0,
        paused_until=1234.5,
        unassigned=4,
        stale=True,
    )
    base = DeliveryStats(
        enqueued=10,
        sent=6,
        accepted=5,
        failed=1,
        rejected=1,
        retried=2,
        requests=9,
        dropped={},
        queue_depth=3,
        last_success_at=None,
        last_error_at=99.0,
        last_error="boom",
        paused_until=1234.5,
        auth_failed=False,
        store=store,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_every_key_of_dropped_becomes_a_reason() -> None:
    dropped = {
        "invalid": 1,
        "filtered": 2,
        "hook_error": 3,
        "store_lost": 4,
        "a_reason_from_tomorrow": 5,
    }
    found = {
        label: value
        for figure, label, value in readings(make_stats(dropped=dropped))
        if figure.name == "events_dropped"
    }
    assert found == {k: float(v) for k, v in dropped.items()}


def test_values_none_is_zero_and_flags_are_one() -> None:
    got = {f.name: v for f, label, v in readings(make_stats()) if f.name}
    assert got["last_success_timestamp_seconds"] == 0.0  # never
    assert got["last_error_timestamp_seconds"] == 99.0
    assert got["store_oldest_event_age_seconds"] == 0.0  # nothing waits
    assert got["paused"] == 1.0 and got["store_stale"] == 1.0
    assert got["store_unassigned_events"] == 4.0
    assert got["events_delivered"] == 6.0 and got["queue_events"] == 3.0


def test_a_client_without_store_figures_has_no_store_series() -> None:
    scopes = {f.scope for f, _, _ in readings(make_stats(store=None))}
    assert scopes == {"process"}
