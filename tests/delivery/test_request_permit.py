"""`Client.request_permit`: requests the app makes itself (the Django email
backend's) spend the same budget as the delivery thread, from any thread,
with any store."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import bento_track
from bento_track._core.budget import IN_FLIGHT_POLL, RequestBudget
from bento_track._core.clock import FakeClock
from bento_track.api import BentoAPI
from bento_track.errors import ConfigurationError, RateLimitedError
from bento_track.models import Email

from ..conftest import AUTHOR
from ..helpers import max_in_window

OFFLINE = dict(
    site_uuid="site",
    publishable_key="pk_test",
    secret_key="sk_secret_value",
    base_url="http://127.0.0.1:9/api/v1",
)


def test_budget_counts_requests_in_flight() -> None:
    clock = FakeClock()
    budget = RequestBudget(limit=2, window=10.0, clock=clock)
    budget.start()
    assert budget.delay() == 0.0  # one in flight, one free
    budget.start()
    # Both slots are held by requests not yet completed: only one of them
    # ending can free a slot, so look again shortly.
    assert budget.delay() == IN_FLIGHT_POLL
    clock.advance(1.0)
    budget.record()
    # One completed at t=1001 and one still in flight: the completed one
    # leaves the window 10 s (and a hair) after it ended.
    assert budget.delay() == pytest.approx(10.0, abs=0.01)
    budget.record()
    assert budget.in_flight == 0
    clock.advance(10.1)
    assert budget.delay() == 0.0


def test_a_permit_waits_for_the_budget_then_times_out(clients: Any) -> None:
    client = clients(**OFFLINE, requests_per_minute=2, rate_window=60.0)
    ran = []
    for _ in range(2):
        with client.request_permit(timeout=1):
            ran.append(1)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no request free in the budget"):
        with client.request_permit(timeout=0.2):
            ran.append(2)  # never runs
    assert 0.2 <= time.monotonic() - started < 5
    assert ran == [1, 1]
    assert client.stats().store.budget_used == 2
    with pytest.raises(ConfigurationError, match="timeout"):
        with client.request_permit(timeout=-1):
            pass


def test_a_429_in_the_block_pauses_every_sender(clients: Any) -> None:
    client = clients(**OFFLINE)
    with pytest.raises(RateLimitedError):
        with client.request_permit(timeout=1):
            raise RateLimitedError("slow down", status=429, retry_after=30)
    paused = client.stats().store.paused_until
    assert paused is not None and 25 < paused - time.time() <= 30
    # The pause holds the next permit (and the delivery thread) back.
    with pytest.raises(TimeoutError):
        with client.request_permit(timeout=0.1):
            pass


def test_permits_and_delivery_share_one_budget(emulator: Any, clients: Any) -> None:
    """Two app threads sending emails through permits while the delivery
    thread sends events, against an emulator whose rate limit is the
    client's budget: every request is answered 200, never 429."""
    limit, window = 4, 1.0
    emulator.inspect.set_rate_limit(limit, window)
    client = clients(
        **emulator.client_kwargs(),
        requests_per_minute=limit,
        rate_window=window,
        max_batch_size=1,
        flush_interval=0.01,
    )
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            with BentoAPI(**emulator.client_kwargs(), max_retries=0) as api:
                for i in range(3):
                    with client.request_permit(timeout=20):
                        api.send_emails(
                            [
                                Email(
                                    to=f"t{n}-{i}@example.com",
                                    from_=AUTHOR,
                                    subject="hi",
                                    html_body="<p>hi</p>",
                                )
                            ]
                        )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for i in range(4):
        client.track("signup", email=f"e{i}@example.com")
    assert client.flush(timeout=30), client.stats()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert errors == []

    log = emulator.inspect.requests()
    assert (
        sorted(r["path"].rsplit("/", 1)[1] for r in log)
        == ["emails"] * 6 + ["events"] * 4
    )
    assert {r["status"] for r in log} == {200}, log
    assert max_in_window([r["time"] for r in log], window) <= limit
    assert client.stats().store.budget_used <= limit


def test_permits_of_a_sqlite_store_are_shared_by_its_clients(
    tmp_path: Path, clients: Any
) -> None:
    """Two clients of one account on one store file (two processes, in
    effect) share one budget."""
    url = f"sqlite:///{tmp_path / 'bento.db'}"
    first = clients(**OFFLINE, store=url, requests_per_minute=2)
    second = clients(**OFFLINE, store=url, requests_per_minute=2)
    with first.request_permit(timeout=1):
        with second.request_permit(timeout=1):
            with pytest.raises(TimeoutError):
                with first.request_permit(timeout=0.1):
                    pass
    assert second.stats().store.budget_used == 2


def test_a_disabled_client_still_has_a_budget() -> None:
    client = bento_track.Client(disabled=True, requests_per_minute=1)
    try:
        with client.request_permit(timeout=1):
            pass
        with pytest.raises(TimeoutError):
            with client.request_permit(timeout=0):
                pass
    finally:
        client.shutdown(0.2)
