"""The Redis store against a real redis-server, in what only Redis does: a
restart that comes back empty, the local fallback while Redis is down, hung
or out of memory, its URLs. What every store does (batches, the shared
budget and pause on the store's clock, reclaim, release, bisection, the
bound, accounts) is in `tests/store_contract`."""

from __future__ import annotations

import signal
import time
from dataclasses import replace

import pytest

from bento_track.errors import ConfigurationError
from bento_track.stores.redis import RedisStore, redacted
from bento_track.stores.url import open_store

from ..helpers import wait_until
from ..support.stores import RedisStores, recs


def test_a_restart_that_comes_back_empty_waits_out_a_window(own_redis) -> None:
    with RedisStores(own_redis.url()) as stores:
        store = stores.open(replace(stores.policy, requests_per_window=5, window=2.0))
        # A server up for less than a window holds its first window too.
        wait_until(lambda: store.acquire()[0] is not None, 5)
        for _ in range(4):
            permit, _ = store.acquire()
            assert permit is not None
            store.complete(permit)
        assert store.acquire()[0] is None  # five granted: the budget is spent
        own_redis.kill()
        own_redis.start()  # same port, no data
        wait_until(lambda: store.acquire()[0] is not None, 10)
        # From the server's start, as the store counts its first window
        # (a loaded machine may take a second to see it answer).
        waited = time.monotonic() - own_redis.started_at
        print(f"first grant {waited:.2f} s after the restart (window 2 s)")
        assert waited >= 1.5  # the log is gone, the window is not


def test_redis_down_events_wait_in_memory_and_move_back(own_redis) -> None:
    with RedisStores(own_redis.url(namespace="down")) as stores:
        store = stores.open()
        store.put(recs(*range(5)))
        own_redis.kill()
        started = time.monotonic()
        assert store.put(recs(*range(5, 10))) == []  # refused: kept in memory
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


def test_a_write_whose_answer_was_lost_is_applied_once(own_redis) -> None:
    url = own_redis.url(namespace="lost", socket_timeout="0.3")
    with RedisStores(url) as stores:
        store = stores.open()
        store.put(recs(*range(3)))
        own_redis.signal(signal.SIGSTOP)
        try:
            assert store.put(recs(*range(3, 7))) == []  # sent, never answered
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


def test_out_of_memory_keeps_events_locally_until_there_is_room(own_redis) -> None:
    with RedisStores(own_redis.url(namespace="oom")) as stores:
        store = stores.open()
        db = own_redis.client()
        try:
            store.put(recs(*range(2)))
            used = int(db.info("memory")["used_memory"])
            db.config_set("maxmemory-policy", "noeviction")
            db.config_set("maxmemory", str(used // 2))
            assert store.put(recs(*range(2, 5))) == []
            assert store.memory_held() == 3
            db.config_set("maxmemory", "0")
            wait_until(lambda: store.claim(True).lease is not None, 10)
            assert store.memory_held() == 0 and store.stats().depth == 5
        finally:
            db.close()


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
    store.close()
    assert redacted("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    with_disk = open_store(
        f"redis://127.0.0.1:1/0?fallback=sqlite:///{tmp_path}/fb.db", max_bytes=2**20
    )
    try:
        assert isinstance(with_disk, RedisStore) and with_disk.fallback.durable
    finally:
        with_disk.close()  # its SQLite fallback is open
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
