"""The Redis store's steps against a real redis-server: batches, the shared
budget and pause on Redis's clock, reclaim and release, bisection halves,
the bound, a restart that comes back empty, and the local fallback while
Redis is down, hung or out of memory."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bento_track._delivery.clock import FakeClock
from bento_track.errors import ConfigurationError
from bento_track.queues import StorePolicy
from bento_track.queues.redis import RedisStore, open_redis_store, redacted
from bento_track.queues.url import open_store

from .conftest import wait_until

POLICY = StorePolicy(
    max_count=10,
    max_bytes=10_000,
    flush_interval=5.0,
    requests_per_window=3,
    window=1.0,
)


def recs(n: int, first: int = 0) -> list[bytes]:
    return [b'{"seq":%d}' % i for i in range(first, first + n)]


@pytest.fixture
def make_store(redis_url: str) -> Iterator[Callable[..., RedisStore]]:
    """Stores on one namespace (each one a process, as Redis sees it)."""
    made: list[RedisStore] = []

    def make(
        policy: StorePolicy = POLICY, url: str = redis_url, **options: Any
    ) -> RedisStore:
        max_bytes = options.pop("max_bytes", 2**20)
        suffix = "".join(f"&{k}={v}" for k, v in options.items())
        store = open_redis_store(url + suffix, max_bytes=max_bytes)
        assert isinstance(store, RedisStore)
        store.stats_wait = 5.0  # exact figures: a loaded machine may be slow
        store.configure(policy, FakeClock())
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def test_batches_leave_full_or_old_and_each_spends_one_permit(make_store) -> None:
    store = make_store()
    assert store.claim(False).lease is None  # empty: nothing to wait for
    assert store.put(recs(25)) == []
    first = store.claim(False)
    assert first.lease is not None and first.count == 25
    assert first.lease.records == recs(10)
    store.complete(first.lease.permit)
    store.ack(first.lease)
    second = store.claim(False).lease
    assert second is not None and second.records == recs(10, 10)
    store.complete(second.permit)
    store.ack(second)
    # Five left: not a full batch, and a batch just left: it waits.
    wait = store.claim(False)
    assert wait.lease is None and wait.count == 5 and not wait.budget_bound
    assert 4.0 < wait.delay <= 5.0
    forced = store.claim(True).lease  # a flush
    assert forced is not None and forced.records == recs(5, 20)
    store.complete(forced.permit)
    store.ack(forced)
    stats = store.stats()
    assert stats.kind == "redis" and stats.depth == 0 and stats.leased == 0
    assert stats.budget_used == 3 and stats.budget_limit == 3
    assert store.outstanding() == 0


def test_one_budget_for_every_process_on_redis_clock(make_store) -> None:
    a, b = make_store(), make_store()
    a.put(recs(40))
    granted = []
    for store in (a, b, a):
        lease = store.claim(False).lease
        assert lease is not None
        granted.append(lease)
    # Three requests (one still in flight) fill the budget of 3 for both.
    for store in (a, b):
        held = store.claim(False)
        assert held.lease is None and held.budget_bound
    permit, wait = b.acquire()
    assert permit is None and wait > 0
    for store, lease in zip((a, b, a), granted, strict=True):
        store.complete(lease.permit)
        store.ack(lease)
    wait = a.claim(False).delay
    assert wait is not None and 0 < wait <= 1.01
    wait_until(lambda: b.claim(False).lease is not None, 3)


def test_a_pause_stops_every_process(make_store) -> None:
    a, b = make_store(), make_store()
    a.put(recs(10))
    a.pause(2.0)
    held = b.claim(False)
    assert held.lease is None and held.budget_bound and 1.5 < held.delay <= 2.0
    until = b.paused_until()
    assert until is not None and 1.5 < until - time.time() <= 2.1
    assert b.acquire()[0] is None
    assert b.stats().paused_until is not None


def test_a_dead_holders_batch_is_reclaimed_after_the_visibility_timeout(
    make_store,
) -> None:
    dead = make_store(visibility_timeout=1)
    alive = make_store(visibility_timeout=1)
    dead.put(recs(10))
    lease = dead.claim(False).lease
    assert lease is not None  # and never settled: the process "died"
    taken_at = time.monotonic()
    assert alive.claim(False).lease is None
    assert alive.stats().leased == 10 and alive.stats().leases == 1
    wait_until(lambda: alive.claim(True).lease is not None, 5)
    assert 1.0 <= time.monotonic() - taken_at < 2.5
    stats = alive.stats()
    assert stats.reclaimed == 10 and stats.leased == 10


def test_release_puts_a_batch_back_first_and_is_not_a_reclaim(make_store) -> None:
    a, b = make_store(), make_store()
    a.put(recs(15))
    lease = a.claim(False).lease
    assert lease is not None
    a.complete(lease.permit)
    a.release(lease)
    again = b.claim(True).lease
    assert again is not None and again.records == recs(10)
    assert b.stats().reclaimed == 0


def test_bisection_halves_settle_apart_and_a_half_put_back_is_sent_once(
    make_store,
) -> None:
    policy = StorePolicy(
        max_count=40,
        max_bytes=10_000,
        flush_interval=5.0,
        requests_per_window=100,
        window=1.0,
    )
    a, b = make_store(policy), make_store(policy)
    a.put(recs(10))  # one chunk of 4, two of 4 and 2... halves cut a chunk
    lease = a.claim(True).lease
    assert lease is not None and len(lease) == 10
    first, second = a.split(lease)
    first_a, first_b = a.split(first)  # 2 + 3: cuts the first chunks
    a.reject(first_a)
    a.ack(first_b)
    a.release(second)  # at shutdown: the rest goes back
    back = b.claim(True).lease
    assert back is not None
    assert sorted(back.records) == sorted(second.records)
    b.ack(back)
    assert b.stats().depth == 0 and a.outstanding() == 0


def test_the_bound_drops_newest_or_deletes_only_waiting_oldest(make_store) -> None:
    small = make_store(max_bytes=200)  # about 18 records of 11 bytes
    dropped = small.put(recs(30))
    assert 10 <= len(dropped) < 30 and dropped == recs(30)[-len(dropped) :]
    assert small.stats().dropped == len(dropped)
    oldest = StorePolicy(
        max_count=4,
        max_bytes=10_000,
        flush_interval=5.0,
        requests_per_window=100,
        window=1.0,
        overflow="drop_oldest",
    )
    store = make_store(oldest, max_bytes=200)
    store.put(recs(12))
    held = store.claim(True).lease  # pending: never trimmed
    assert held is not None
    gone = store.put(recs(12, 100))
    assert gone and set(gone).isdisjoint(held.records)
    assert store.stats().nbytes <= 200


def test_a_restart_that_comes_back_empty_waits_out_a_window(own_redis) -> None:
    policy = StorePolicy(
        max_count=10,
        max_bytes=10_000,
        flush_interval=5.0,
        requests_per_window=5,
        window=2.0,
    )
    store = open_redis_store(own_redis.url(), max_bytes=2**20)
    store.stats_wait = 5.0
    store.configure(policy, FakeClock())
    try:
        # A server up for less than a window holds its first window too.
        wait_until(lambda: store.acquire()[0] is not None, 5)
        for _ in range(4):
            permit, _ = store.acquire()
            assert permit is not None
            store.complete(permit)
        assert store.acquire()[0] is None  # five granted: the budget is spent
        own_redis.kill()
        own_redis.start()  # same port, no data
        restarted = time.monotonic()
        wait_until(lambda: store.acquire()[0] is not None, 10)
        waited = time.monotonic() - restarted
        print(f"first grant {waited:.2f} s after the restart (window 2 s)")
        assert waited >= 1.5  # the log is gone, the window is not
    finally:
        store.close()


def test_redis_down_events_wait_in_memory_and_move_back(own_redis) -> None:
    store = open_redis_store(own_redis.url(namespace="down"), max_bytes=2**20)
    store.stats_wait = 5.0
    store.configure(POLICY, FakeClock())
    try:
        store.put(recs(5))
        own_redis.kill()
        started = time.monotonic()
        assert store.put(recs(5, 5)) == []  # refused: kept in memory
        assert time.monotonic() - started < 3.0  # one connect timeout at most
        assert store.memory_held() == 5 and store.outstanding() == 10
        held = store.claim(True)
        assert held.lease is None and held.budget_bound  # no budget, no send
        assert store.acquire()[0] is None
        own_redis.start()
        # Back empty: what was in Redis is gone (no persistence); what waited
        # here moves in at the next claim and leaves after the cold start.
        wait_until(lambda: store.claim(True).lease is not None, 10)
        assert store.memory_held() == 0
    finally:
        store.close()


def test_a_write_whose_answer_was_lost_is_applied_once(own_redis) -> None:
    store = open_redis_store(
        own_redis.url(namespace="lost", socket_timeout="0.3"), max_bytes=2**20
    )
    store.stats_wait = 5.0
    store.configure(POLICY, FakeClock())
    try:
        store.put(recs(3))
        own_redis.signal(signal.SIGSTOP)
        try:
            assert store.put(recs(4, 3)) == []  # sent, never answered
            assert store.memory_held() == 4
        finally:
            own_redis.signal(signal.SIGCONT)
        db = own_redis.client()
        # Redis ran the buffered write on SIGCONT; sending it again is a no-op.
        wait_until(lambda: int(db.hget(store.keys.tot, "n") or 0) == 7, 5)
        wait_until(lambda: store.claim(True).lease is not None, 10)
        assert store.memory_held() == 0
        assert store.stats().depth == 7
        db.close()
    finally:
        store.close()


def test_out_of_memory_keeps_events_locally_until_there_is_room(own_redis) -> None:
    store = open_redis_store(own_redis.url(namespace="oom"), max_bytes=2**20)
    store.stats_wait = 5.0
    store.configure(POLICY, FakeClock())
    db = own_redis.client()
    try:
        store.put(recs(2))
        used = int(db.info("memory")["used_memory"])
        db.config_set("maxmemory-policy", "noeviction")
        db.config_set("maxmemory", str(used // 2))
        assert store.put(recs(3, 2)) == []
        assert store.memory_held() == 3
        db.config_set("maxmemory", "0")
        wait_until(lambda: store.claim(True).lease is not None, 10)
        assert store.memory_held() == 0 and store.stats().depth == 5
    finally:
        db.close()
        store.close()


def test_urls_options_and_mistakes(tmp_path, redis_url) -> None:
    store = open_store(
        "redis://:s3cret@127.0.0.1:1/2?namespace=app&visibility_timeout=30"
        "&host=web-1&socket_timeout=1",
        max_bytes=2**20,
    )
    assert isinstance(store, RedisStore)
    assert "s3cret" not in store.location and "***" in store.location
    assert store.namespace == "app" and store.visibility_timeout == 30.0
    assert store.consumer.startswith("web-1:")
    assert "namespace" not in store.url and "socket_timeout=1" in store.url
    assert redacted("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    with_disk = open_store(
        f"redis://127.0.0.1:1/0?fallback=sqlite:///{tmp_path}/fb.db", max_bytes=2**20
    )
    assert isinstance(with_disk, RedisStore) and with_disk.fallback.durable
    for bad, word in (
        ("redis://h/0?namespace=a:b", "namespace"),
        ("redis://h/0?visibility_timeout=0", "visibility_timeout"),
        ("redis://h/0?fallback=postgres://x", "fallback"),
        ("redis://h/0?host=a:b", "host"),
        (f"redis://h/0?fallback=sqlite:///{tmp_path}/no/such/dir/x.db", "store"),
    ):
        with pytest.raises(ConfigurationError, match=word) as info:
            open_store(bad, max_bytes=2**20)
        assert info.value.setting == "store"


def test_a_batch_takes_one_kind_of_record_in_queue_order(make_store) -> None:
    """Events, subscriber upserts and commands share the stream; the claim
    script cuts a batch where the kind changes, as the other stores do."""
    store = make_store(StorePolicy(100, 100_000, 5.0, 1000, 1.0))
    upsert = b'S{"email":"a@example.com"}'
    command = b'C{"command":"unsubscribe","email":"a@example.com"}'
    store.put(recs(2) + [upsert] * 3 + [command] * 2 + recs(1, 2))
    batches = []
    while (lease := store.claim(True).lease) is not None:
        batches.append(lease.records)
        store.complete(lease.permit)
        store.ack(lease)
    assert batches == [recs(2), [upsert] * 3, [command] * 2, recs(1, 2)]


def test_subscriber_updates_go_through_a_redis_store(
    emulator, redis_url, clients
) -> None:
    emulator.inspect.set_rate_limit(10_000, 60.0)
    client = clients(
        **emulator.client_kwargs(),
        store=redis_url,
        flush_interval=0.05,
        requests_per_minute=600,
        rate_window=1.0,
    )
    client.upsert_subscriber("r@example.com", fields={"plan": "free"})
    client.track("a", email="r@example.com")
    client.change_subscriber_email("r@example.com", "s@example.com")
    client.upsert_subscriber("s@example.com", fields={"plan": "pro"})
    assert client.flush(30) is True
    [person] = emulator.inspect.subscribers()
    assert person["email"] == "s@example.com" and person["fields"]["plan"] == "pro"
    assert client.stats().updates_sent == {"upsert": 2, "command": 1}
