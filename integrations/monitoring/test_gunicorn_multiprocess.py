"""A Flask app under gunicorn -w 2 in prometheus_client's multiprocess mode,
scraped over HTTP while events flow to the emulator: every figure on
/metrics is what the two workers' `stats()` say together. Delivered events,
drops by reason (invalid, refused by Bento), 429s (the emulator's storm),
queue and store depth: counters summed over the workers, a shared store's
figures once (not once per worker), each worker's memory store summed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..conftest import wait_until
from .support import (
    MOVING,
    PREFIX,
    expected,
    moving,
    on_each_worker,
    scrape,
    start_gunicorn,
    value,
)
from .workload import REFUSED

QUEUE = PREFIX + "queue_events"
MOVING_NAMES = {PREFIX + name for name in MOVING}


def settled(
    site: Any, tmp_path: Path, emulator: Any, shared: bool, until: Any
) -> tuple:
    """The page and the workers' stats, once the page says what they say
    (each worker publishes its figures every 0.2 s) and `until(page)` holds
    (a worker learns that another delivered its events from the shared store
    when it next looks, every 0.5 s while idle)."""
    box: dict[str, Any] = {}

    def agrees() -> bool:
        workers = on_each_worker(site, tmp_path, "/stats")
        want = expected(
            emulator.site_uuid,
            [w["stats"] for w in workers.values()],
            shared_store=shared,
        )
        page = scrape(site.url + "/metrics")
        if want is None:
            return False
        box.update(page=page, want=want, workers=workers)
        return until(page) and all(page.get(k) == v for k, v in want.items())

    try:
        wait_until(agrees, 30, "/metrics to agree with stats()")
    except AssertionError:
        if "page" not in box:  # not a timeout: what failed says why
            raise
        page, want = box["page"], box["want"]
        diff = {k: (page.get(k), v) for k, v in want.items() if page.get(k) != v}
        raise AssertionError(
            f"/metrics vs stats(): {diff}; the workers said {box['workers']}"
        ) from None
    return box["page"], box["want"], box["workers"]


@pytest.mark.parametrize(
    "store, preload",
    [("memory", False), ("sqlite", True)],
    ids=["memory-store", "sqlite-store-preload"],
)
def test_metrics_sum_both_workers(
    emulator: Any, servers: Any, tmp_path: Path, store: str, preload: bool
) -> None:
    shared = store == "sqlite"
    url = f"sqlite:///{tmp_path / 'events.db'}" if shared else ""
    emulator.inspect.reject_events(type=REFUSED)
    site = start_gunicorn(servers, emulator, tmp_path, store=url, preload=preload)
    site_uuid = emulator.site_uuid

    # Each worker: 5 good events, 2 invalid ones, 1 Bento refuses.
    on_each_worker(site, tmp_path, "/track?n=5&invalid=2&refused=1")
    wait_until(lambda: len(emulator.inspect.events()) == 10, 30, "10 events")
    # A memory store's queue empties; in a shared one, a worker whose events
    # another worker delivered may count them until it next puts events
    # (the worker refreshes `outstanding` then), so the store's own depth tells.
    waiting = PREFIX + ("store_events" if shared else "queue_events")
    page, want, _ = settled(
        site, tmp_path, emulator, shared, lambda page: not value(page, waiting)
    )
    assert value(page, PREFIX + "events_delivered_total") == 10
    dropped = PREFIX + "events_dropped_total"
    assert value(page, dropped, reason="invalid") == 4
    assert value(page, dropped, reason="rejected") == 2
    assert value(page, waiting) == 0

    # Bento answers 429 (Retry-After 60 s): each worker's 3 new events wait.
    emulator.inspect.rate_limit_storm(2, retry_after=60)
    on_each_worker(site, tmp_path, "/track?n=3")
    storms = 1 if shared else 2  # a shared store pauses every worker at once
    wait_until(
        lambda: emulator.inspect.request_counts().get("429") == storms, 30, "429s"
    )
    page, want, workers = settled(
        site, tmp_path, emulator, shared, lambda page: value(page, QUEUE) == 6
    )

    assert len(workers) == 2
    assert value(page, PREFIX + "events_delivered_total") == 10
    assert value(page, PREFIX + "retries_total") == storms
    assert value(page, PREFIX + "requests_total", status="429") == storms
    assert value(page, QUEUE) == 6
    # 6 events in the store: a shared store's depth is not counted twice.
    assert value(page, PREFIX + "store_events") == 6
    assert value(page, PREFIX + "paused") == 1
    assert all(v > 0 for v in moving(page, "store_oldest_event_age_seconds"))
    # Nothing else on the page: no figure twice, none for another site.
    assert {k for k in page if k[0] not in MOVING_NAMES} == set(want)
    assert {dict(labels)["site_uuid"] for _, labels in page} == {site_uuid}
