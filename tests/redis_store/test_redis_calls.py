"""The Redis store's scripts behind typed calls (`queues.redis_calls`): each
answer of several fields is decoded once, into a named reply, here checked
on the answers a real redis-server gives."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from bento_track.stores import Account
from bento_track.stores.redis import adopt_legacy
from bento_track.stores.redis_calls import (
    ClaimedChunk,
    ClaimReply,
    EnqueueReply,
    Scripts,
    StatsReply,
)
from bento_track.stores.redis_keys import Keys, account_keys, legacy_keys

from ..support import stores
from ..support.redis_server import RedisServer

POLICY = replace(stores.POLICY, window=1.0)


def recs(n: int, first: int = 0) -> list[bytes]:
    return [b'{"seq":%d}' % i for i in range(first, first + n)]


@pytest.fixture
def scripts(redis_server: RedisServer) -> Iterator[Scripts]:
    client = redis_server.client()
    yield Scripts(client)
    client.close()


@pytest.fixture
def keys() -> Keys:
    return account_keys(f"t{uuid.uuid4().hex[:12]}", "acct")


def test_enqueue_answers_what_it_kept_and_knows_a_retried_write(
    scripts: Scripts, keys: Keys
) -> None:
    first = scripts.enqueue(keys, "p1", 1, 2**20, False, [recs(3), recs(2, 3)])
    assert first == EnqueueReply(kept=2, outstanding=5, created=True)
    again = scripts.enqueue(keys, "p1", 1, 2**20, False, [recs(3)])
    assert again.applied_before and again.kept == 0
    # A bound of 60 bytes: the oldest waiting chunk (3 records, 30 bytes)
    # goes to make room, and its records come back one by one.
    room = scripts.enqueue(keys, "p1", 2, 60, True, [recs(2, 5)])
    assert room.kept == 1 and room.dropped == tuple(recs(3))


def test_a_claim_is_a_named_reply_wait_or_batch(scripts: Scripts, keys: Keys) -> None:
    assert scripts.claim(keys, "p1", "p1:1", POLICY, 60.0, False) == ClaimReply()
    scripts.enqueue(keys, "p1", 1, 2**20, False, [recs(3)])
    wait = scripts.claim(keys, "p1", "p1:2", POLICY, 60.0, False)
    assert wait.chunks == () and wait.waiting == 3 and wait.nbytes == 30
    assert wait.wait is not None and 3.0 < wait.wait <= 5.0
    assert not wait.budget_bound
    batch = scripts.claim(keys, "p1", "p1:3", POLICY, 60.0, True)
    assert batch.wait == 0.0 and (batch.waiting, batch.nbytes) == (3, 30)
    [chunk] = batch.chunks
    assert isinstance(chunk, ClaimedChunk)
    assert chunk.records == recs(3) and chunk.origin == "p1" and "-" in chunk.sid
    stats = scripts.stats(keys)
    assert isinstance(stats, StatsReply)
    assert (stats.n, stats.wn, stats.holders, stats.used) == (3, 0, 1, 1)


def test_the_budget_binds_a_claim_and_an_acquire(scripts: Scripts, keys: Keys) -> None:
    scripts.enqueue(keys, "p1", 1, 2**20, False, [recs(1)])
    for n in range(3):  # the budget: 3 requests a second
        assert scripts.acquire(keys, f"p1:{n}", POLICY, 60.0).granted
    refused = scripts.acquire(keys, "p1:3", POLICY, 60.0)
    assert not refused.granted and 0.0 < refused.wait <= 1.0
    held = scripts.claim(keys, "p1", "p1:4", POLICY, 60.0, True)
    assert held.chunks == () and held.budget_bound


def test_adopt_moves_unassigned_events_of_a_namespace_that_made_requests(
    redis_server: RedisServer,
) -> None:
    """A namespace of the old layout whose processes had made requests (a
    log of completions, requests in flight) is adopted whole."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    db: redis.Redis = redis_server.client()
    try:
        old = legacy_keys(namespace)
        Scripts(db).enqueue(old, "old-host:1:abcd", 1, 2**20, False, [recs(4)])
        db.zadd(old.log, {"old-host:1:abcd:1": 1})
        db.zadd(old.fly, {"old-host:1:abcd:2": 2})
        account = Account("https://app.bentonow.com/api/v1", "site-a", "pk-a")
        url = redis_server.url(namespace=namespace)
        assert adopt_legacy(url, account) == 4
        assert not db.exists(old.q, old.tot, old.log, old.fly, old.out)
        mine = account_keys(namespace, account.key)
        assert int(db.hget(mine.tot, "wn") or 0) == 4
    finally:
        db.close()
