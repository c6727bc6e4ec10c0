"""Delivery pieces that need no server: encoding, batching, the request budget,
the memory queue, options, the signal fast path, overflow, disabled mode."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from decimal import Decimal

import pytest

import bento_track
from bento_track import _default
from bento_track._core.budget import RequestBudget
from bento_track._core.clock import FakeClock
from bento_track._core.records import BODY_OVERHEAD, BatchPolicy, body
from bento_track._delivery.encoding import decode_event, encode_event
from bento_track.errors import ConfigurationError, InvalidEventError
from bento_track.events import Event, dumps, format_timestamp
from bento_track.stores import MemoryQueue, QueueBackend

from .conftest import wait_until

CREDS = dict(
    site_uuid="site",
    publishable_key="pk_test",
    secret_key="sk_secret_value",
    base_url="http://127.0.0.1:9/api/v1",
)
# A worker that never sends: batches can never fill and time never advances.
IDLE = dict(CREDS, max_batch_size=1000, flush_interval=60.0)


@pytest.mark.parametrize(
    "event",
    [
        Event.build("a", email="u@example.com"),
        Event.build("sign.up", email="u@example.com", fields={"plan": "pro", "n": 1.5}),
        Event.build(
            "$purchase",
            email="ü@exämple.com",
            details={"cart": [{"p": Decimal("1.5"), "q": 'ünïcode "q" \\'}]},
            date=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        ),
    ],
)
def test_encode_event_matches_dumps_to_dict(event: Event) -> None:
    assert encode_event(event) == dumps(event.to_dict())
    assert decode_event(encode_event(event)) == event


def test_encoded_dates_match_format_timestamp() -> None:
    for ts in (0.0, 1.001, 1.999, 1_700_000_000.0005, 1_795_738_238.9451087, 59.9999):
        event = Event("a", "u@example.com", captured_at=ts)
        assert json.loads(encode_event(event))["date"] == format_timestamp(ts)


def test_body_joins_encoded_events() -> None:
    events = [Event.build("a", email=f"u{i}@example.com") for i in range(3)]
    raw = body([encode_event(e) for e in events])
    assert json.loads(raw) == {"events": [e.to_dict() for e in events]}
    assert len(body([])) == BODY_OVERHEAD


def test_batch_policy_count_bytes_age() -> None:
    policy = BatchPolicy(max_count=10, max_bytes=1000, flush_interval=5.0)
    assert policy.due_in(0, 0, None, 100.0) is None
    assert policy.due_in(10, 100, 100.0, 100.0) == 0.0  # full by count
    assert policy.due_in(3, 1000, 100.0, 100.0) == 0.0  # full by bytes
    assert policy.due_in(3, 100, 100.0, 102.0) == pytest.approx(3.0)  # by age
    assert policy.due_in(3, 100, 100.0, 106.0) == 0.0
    assert policy.fits(b"x" * 900) and not policy.fits(b"x" * 990)


def test_request_budget_sliding_window_and_pause() -> None:
    clock = FakeClock()
    budget = RequestBudget(limit=3, window=10.0, clock=clock)
    for _ in range(3):
        assert budget.delay() == 0.0
        budget.record()
        clock.advance(1.0)
    # three completions at t=0,1,2; now t=3: the next may start after t=10(+eps)
    assert budget.delay() == pytest.approx(7.0, abs=0.01)
    clock.advance(7.01)
    assert budget.delay() == 0.0
    budget.pause(30.0)
    assert budget.delay() == pytest.approx(30.0)
    budget.pause(1.0)  # a shorter pause never shortens the current one
    assert budget.delay() == pytest.approx(30.0)


def test_memory_queue_fifo_bytes_requeue() -> None:
    q = MemoryQueue()
    assert isinstance(q, QueueBackend)
    q.put([b"aaaa", b"bb", b"cccccc"])
    assert len(q) == 3 and q.nbytes == 5 + 3 + 7
    first = q.get_batch(10, 9)  # 5 + 3 fit, 7 more would not
    assert first == [b"aaaa", b"bb"]
    q.requeue(first)
    assert q.get_batch(1, 1) == [b"aaaa"]  # always >= 1 record
    assert q.drop_newest(1) == [b"cccccc"]
    assert q.drop_oldest(5) == [b"bb"]
    assert len(q) == 0 and q.nbytes == 0


@pytest.mark.parametrize(
    "option, value",
    [
        ("max_batch_size", 0),
        ("max_batch_size", 1001),
        ("max_batch_bytes", 2_000_000),
        ("flush_interval", -1),
        ("requests_per_minute", 0),
        ("rate_window", "60"),
        ("max_queue_size", 0),
        ("overflow", "drop_everything"),
        ("shutdown_timeout", -1),
        ("block_timeout", True),
    ],
)
def test_options_are_validated_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=option) as info:
        bento_track.Client(**CREDS, **{option: value})  # type: ignore[arg-type]
    assert info.value.setting == option
    assert isinstance(info.value, ValueError)


def test_missing_credentials_raise_for_an_explicit_client() -> None:
    with pytest.raises(ConfigurationError, match="site_uuid"):
        bento_track.Client(environ={})


def test_repr_never_shows_the_secret(clients) -> None:
    client = clients(**IDLE)
    assert "sk_secret_value" not in repr(client)
    assert "site" in repr(client)


def test_invalid_event_raises_naming_the_field_in_strict_mode(clients) -> None:
    client = clients(**IDLE, strict=True)
    with pytest.raises(InvalidEventError) as info:
        client.track("a", email="u@example.com", fields={"nested": {"x": 1}})
    assert info.value.field == "fields.nested"
    with pytest.raises(InvalidEventError) as info:
        client.track("a")
    assert info.value.field == "email"
    assert client.stats().enqueued == 0


def test_identify_binds_email_for_later_events(clients) -> None:
    client = clients(**IDLE)
    seen: list[str] = []

    def run() -> None:
        bento_track.identify("bound@example.com")
        seen.append(client.track("a").email)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == ["bound@example.com"]


def test_fast_path_toggles_with_user_receivers(clients) -> None:
    client = clients(**IDLE, clock=FakeClock())
    assert client._direct is True
    got: list[Event] = []

    def receiver(sender: object, *, event: Event, **_: object) -> None:
        got.append(event)

    bento_track.signals.event_captured.connect(receiver)
    try:
        assert client._direct is False
        events = [client.track("a", email=f"u{i}@example.com") for i in range(5)]
        assert got == events  # the user's receiver sees every event
        assert client.stats().enqueued == 5  # and the collector still enqueues
    finally:
        bento_track.signals.event_captured.disconnect(receiver)
    assert client._direct is True
    client.track("a", email="u@example.com")
    assert client.stats().enqueued == 6 and len(got) == 5


def test_receiver_for_one_client_only_disables_its_fast_path(clients) -> None:
    a = clients(**IDLE, clock=FakeClock())
    b = clients(**IDLE, clock=FakeClock())
    got: list[Event] = []
    bento_track.signals.event_captured.connect(
        lambda s, **kw: got.append(kw["event"]), sender=a, weak=False
    )
    assert a._direct is False and b._direct is True
    a.track("a", email="a@example.com")
    b.track("b", email="b@example.com")
    assert [e.email for e in got] == ["a@example.com"]
    bento_track.signals.event_captured.disconnect(
        next(iter(bento_track.signals.event_captured.receivers_for(a))), sender=a
    )


def _dropped_events(client: bento_track.Client) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []

    def on_drop(
        sender: object, *, events: list[Event], reason: str, **_: object
    ) -> None:
        if sender is client:
            out.append((reason, len(events)))

    bento_track.signals.event_dropped.connect(on_drop, weak=False)
    client._test_receiver = on_drop  # type: ignore[attr-defined]
    return out


def _disconnect(client: bento_track.Client) -> None:
    bento_track.signals.event_dropped.disconnect(client._test_receiver)  # type: ignore[attr-defined]


def test_overflow_drop_newest_counts_and_signals(clients) -> None:
    client = clients(**IDLE, clock=FakeClock(), max_queue_size=5)
    drops = _dropped_events(client)
    try:
        events = [client.track("a", email=f"u{i}@example.com") for i in range(8)]
    finally:
        _disconnect(client)
    stats = client.stats()
    assert stats.enqueued == 5 and stats.queue_depth == 5
    assert stats.dropped == {"queue_full": 3}
    assert drops == [("queue_full", 1)] * 3
    assert len(events) == 8


def test_overflow_drop_oldest_keeps_the_newest(clients) -> None:
    client = clients(
        **IDLE, clock=FakeClock(), max_queue_size=5, overflow="drop_oldest"
    )
    worker = client._worker
    worker.wake_at = 10**9  # keep the worker from draining the inbox
    worker._thread = threading.current_thread()  # and from starting at all
    for i in range(8):
        client.track("a", email=f"u{i}@example.com")
    assert [e.email for e in worker.inbox] == [f"u{i}@example.com" for i in range(3, 8)]
    assert client.stats().dropped == {"queue_full": 3}
    worker._thread = None


def test_overflow_block_waits_then_drops(clients) -> None:
    client = clients(
        **IDLE, clock=FakeClock(), max_queue_size=2, overflow="block", block_timeout=0.2
    )
    client.track("a", email="u1@example.com")
    client.track("a", email="u2@example.com")
    started = time.monotonic()
    client.track("a", email="u3@example.com")  # nothing frees room: waits, drops
    assert 0.15 <= time.monotonic() - started < 2.0
    assert client.stats().dropped == {"queue_full": 1}


def test_queue_byte_bound_enforced_by_the_worker(clients) -> None:
    client = clients(**IDLE, clock=FakeClock(), max_queue_bytes=4096)
    for i in range(200):
        client.track("a", email=f"user{i}@example.com", details={"pad": "x" * 50})
    # The worker (slow on a loaded machine) may leave track() to drop one at
    # the door too; either way each of the 200 is queued or dropped once.
    wait_until(lambda: not client._worker.inbox, 30)
    wait_until(lambda: client._worker.backend.nbytes <= 4096, 30)
    stats = client.stats()
    assert stats.dropped["queue_full"] > 100
    assert stats.queue_depth + stats.dropped["queue_full"] == 200


def test_oversize_event_dropped_by_worker(clients) -> None:
    client = clients(**IDLE, clock=FakeClock(), max_batch_bytes=2048)
    client.track("a", email="u@example.com", details={"blob": "x" * 5000})
    wait_until(lambda: client.stats().dropped.get("oversize") == 1)


def test_disabled_validates_signals_and_counts(clients) -> None:
    client = clients(disabled=True, environ={}, strict=True)
    drops = _dropped_events(client)
    try:
        client.track("a", email="u@example.com")
        with pytest.raises(InvalidEventError):
            client.track("", email="u@example.com")
    finally:
        _disconnect(client)
    assert client.stats().dropped == {"disabled": 1}
    assert drops == [("disabled", 1)]
    assert client.flush(0.1) is True
    assert client.shutdown() == 0


def test_after_shutdown_events_are_refused_and_counted(clients) -> None:
    client = clients(**IDLE, clock=FakeClock())
    assert client.shutdown(0.5) == 0
    assert client.shutdown(0.5) == 0  # idempotent
    client.track("a", email="u@example.com")  # no exception
    assert client.stats().dropped == {"shutdown": 1}


def test_default_client_unconfigured_is_disabled_not_raising(
    monkeypatch, caplog
) -> None:
    for var in ("BENTO_SITE_UUID", "BENTO_PUBLISHABLE_KEY", "BENTO_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_default, "_client", None)
    with caplog.at_level("WARNING", logger="bento_track"):
        bento_track.track("a", email="u@example.com")
        bento_track.track("a", email="u@example.com")
    assert bento_track.stats().dropped == {"not_configured": 2}
    assert sum("not configured" in r.getMessage() for r in caplog.records) == 1
    assert bento_track.flush(0.1) is True
    bento_track.shutdown()
    monkeypatch.setattr(_default, "_client", None)


def test_init_replaces_and_shuts_down_the_previous_default(monkeypatch) -> None:
    monkeypatch.setattr(_default, "_client", None)
    first = bento_track.init(**IDLE, clock=FakeClock())
    assert bento_track.get_client() is first
    second = bento_track.init(**IDLE, clock=FakeClock())
    assert bento_track.get_client() is second
    first.track("a", email="u@example.com")
    assert first.stats().dropped == {"shutdown": 1}
    bento_track.shutdown(0.5)
    monkeypatch.setattr(_default, "_client", None)
