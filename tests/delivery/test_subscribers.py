"""Subscriber upserts and commands through the delivery pipeline, against the
emulator over loopback: batches of one kind, upserts of one email merged into
one row, an email change sent before the upserts made after it, validation
as for events."""

from __future__ import annotations

import pytest

import bento_track
from bento_track.errors import InvalidEventError

from .conftest import wait_until

FAST = dict(requests_per_minute=10_000, flush_interval=0.05)


def requests_to(emulator, path: str) -> list[dict]:
    return [r for r in emulator.inspect.requests() if r["path"].endswith(path)]


def person(emulator, email: str) -> dict:
    [found] = [s for s in emulator.inspect.subscribers() if s["email"] == email]
    return found


def test_upserts_of_one_email_waiting_together_are_one_row(
    fast_emulator, clients
) -> None:
    """A user saved 100 times in one second with a flush interval of 1 s."""
    client = clients(
        **fast_emulator.client_kwargs(), requests_per_minute=10_000, flush_interval=1.0
    )
    for i in range(100):
        client.upsert_subscriber(
            "saved@example.com",
            fields={"plan": f"p{i}", "company": "Acme" if i == 0 else None},
            tags=["customer"] if i % 2 == 0 else ["lead"],
            remove_tags=["lead"] if i % 2 == 0 else ["customer"],
        )
    assert client.flush(10) is True
    [request] = requests_to(fast_emulator, "/batch/subscribers")
    assert request["status"] == 200 and request["count"] == 1  # one row
    saved = person(fast_emulator, "saved@example.com")
    assert saved["fields"]["plan"] == "p99"  # the last save wins
    assert "lead" in saved["tags"] and "customer" not in saved["tags"]
    stats = client.stats()
    assert stats.updates_sent == {"upsert": 100} and stats.sent == 0
    assert stats.responses == {"200": 1}


def test_a_batch_holds_one_kind_and_the_queue_keeps_its_order(
    fast_emulator, clients
) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    client.upsert_subscriber("old@example.com", fields={"plan": "free"})
    client.track("signed.up", email="old@example.com")
    client.change_subscriber_email("old@example.com", "new@example.com")
    client.upsert_subscriber("new@example.com", fields={"plan": "pro"})
    client.track("upgraded", email="new@example.com")
    assert client.flush(10) is True
    paths = [r["path"].rsplit("/", 2)[-2:] for r in fast_emulator.inspect.requests()]
    kinds = [p[-1] for p in paths]
    # The change is sent before the upsert made after it; no batch mixes kinds.
    assert kinds.index("commands") < max(
        i for i, k in enumerate(kinds) if k == "subscribers"
    )
    assert all(r["status"] == 200 for r in fast_emulator.inspect.requests())
    emails = {s["email"] for s in fast_emulator.inspect.subscribers()}
    assert "old@example.com" not in emails
    assert person(fast_emulator, "new@example.com")["fields"]["plan"] == "pro"
    assert sorted(e["type"] for e in fast_emulator.inspect.events()) == [
        "signed.up",
        "upgraded",
    ]
    stats = client.stats()
    assert stats.updates_sent == {"upsert": 2, "command": 1} and stats.sent == 2


def test_unsubscribe_command_goes_in_order(fast_emulator, clients) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    client.upsert_subscriber("leaving@example.com", fields={"plan": "pro"})
    client.unsubscribe_subscriber("leaving@example.com")
    assert client.flush(10) is True
    assert person(fast_emulator, "leaving@example.com")["unsubscribed_at"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.upsert_subscriber("nobody"), "email"),
        (lambda c: c.upsert_subscriber("a@example.com", fields={"x": [1]}), "fields.x"),
        (
            lambda c: c.upsert_subscriber("a@example.com", fields={"tags": "a"}),
            "fields.tags",
        ),
        (lambda c: c.upsert_subscriber("a@example.com", tags=[1]), "tags"),
        (
            lambda c: c.upsert_subscriber("a@example.com", tags="a,b", remove_tags="b"),
            "tags",
        ),
        (
            lambda c: c.change_subscriber_email("a@example.com", "A@example.com"),
            "new_email",
        ),
        (lambda c: c.change_subscriber_email("a@example.com", "nope"), "new_email"),
    ],
)
def test_bad_updates_are_refused_like_bad_events(fast_emulator, clients, call, field):
    strict = clients(**fast_emulator.client_kwargs(), **FAST, strict=True)
    with pytest.raises(InvalidEventError) as info:
        call(strict)
    assert info.value.field == field
    lenient = clients(**fast_emulator.client_kwargs(), **FAST, strict=False)
    assert call(lenient) is None
    assert lenient.stats().dropped == {"invalid": 1}


def test_upserts_wait_in_a_sqlite_store_for_the_next_process(
    fast_emulator, tmp_path, clients
) -> None:
    url = f"sqlite:///{tmp_path}/subs.db"
    fast_emulator.inspect.fail_next(1_000_000, status=503)
    first = clients(
        **fast_emulator.client_kwargs(), **FAST, store=url, retry_base_delay=0.05
    )
    for i in range(30):
        first.upsert_subscriber(f"u{i}@example.com", fields={"n": i})
    first.change_subscriber_email("u0@example.com", "moved@example.com")
    assert first.shutdown(0.5) == 31  # all wait in the store
    fast_emulator.inspect.clear_faults()
    second = clients(**fast_emulator.client_kwargs(), **FAST, store=url)
    wait_until(lambda: second.stats().store.depth == 0, 20)
    emails = {s["email"] for s in fast_emulator.inspect.subscribers()}
    assert emails == {f"u{i}@example.com" for i in range(1, 30)} | {"moved@example.com"}
    assert bento_track.Client  # the module-level API is the same client API


def test_module_level_functions_use_the_default_client(fast_emulator) -> None:
    client = bento_track.init(**fast_emulator.client_kwargs(), **FAST)
    try:
        assert bento_track.upsert_subscriber("m@example.com", tags="vip") is not None
        assert bento_track.change_subscriber_email("m@example.com", "n@example.com")
        assert bento_track.unsubscribe_subscriber("n@example.com") is not None
        assert bento_track.flush(10) is True
        assert client.stats().updates_sent == {"upsert": 1, "command": 2}
    finally:
        bento_track.shutdown()


def test_the_memory_store_cuts_batches_at_a_change_of_kind() -> None:
    from bento_track._core.clock import FakeClock
    from bento_track.stores import MemoryStore, StorePolicy

    store = MemoryStore()
    store.configure(StorePolicy(100, 100_000, 5.0, 1000, 60.0), FakeClock())
    upsert = b'S{"email":"a@example.com"}'
    store.put([b'{"e":1}', upsert, upsert, b'{"e":2}'])
    batches = []
    while (lease := store.claim(force=True).lease) is not None:
        batches.append(lease.records)
        store.complete(0)
        store.ack(lease)
    assert batches == [[b'{"e":1}'], [upsert, upsert], [b'{"e":2}']]


def test_merged_rows_apply_tags_in_order_and_later_fields_win() -> None:
    from bento_track._core.kinds import merge_upserts

    rows = merge_upserts(
        [
            b'S{"email":"A@x.com","fields":{"a":1,"b":1},"tags":["t1","t2"]}',
            b'S{"email":"b@x.com","tags":["t9"]}',
            b'S{"email":"a@x.com","fields":{"b":2},"remove_tags":["t1"]}',
            b'S{"email":"a@x.com","tags":["t1","t3"],"remove_tags":["t2"]}',
        ]
    )
    assert rows == [
        {"email": "A@x.com", "a": 1, "b": 2, "tags": "t1,t3", "remove_tags": "t2"},
        {"email": "b@x.com", "tags": "t9"},
    ]
