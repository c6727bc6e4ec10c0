"""One "is a batch due" rule: the memory and SQLite stores call
`BatchPolicy.due_in` (through `StorePolicy.due_in`); the Redis claim script
is Lua and writes it again. Here the script, on a real redis-server with
its clock pinned, answers a table of cases as the Python rule does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from bento_track.stores.redis_calls import Scripts
from bento_track.stores.redis_keys import account_keys

from ..support import stores
from ..support.redis_server import RedisServer

POLICY = replace(stores.POLICY, max_bytes=1000, requests_per_window=1000, window=1.0)
#: the server's time for the script, in ms: the scripts never let their
#: clock go back, so a `clock` later than Redis's TIME pins it
NOW_MS = 10**13

CASES = [
    # (waiting events, their bytes, oldest's age s, last batch left s ago, force)
    (0, 0, None, None, False),  # nothing waits
    (3, 100, 0.0, None, False),  # just arrived: a whole interval
    (3, 100, 2.0, None, False),
    (3, 100, 4.999, None, False),
    (3, 100, 5.0, None, False),  # old enough
    (3, 100, 60.0, None, False),
    (3, 100, 60.0, 1.0, False),  # a batch left a second ago: it waits again
    (3, 100, 60.0, 5.0, False),
    (3, 100, 2.0, 60.0, False),  # the later of the two counts
    (9, 999, 0.0, None, False),  # nearly full
    (10, 100, 0.0, None, False),  # full by count
    (3, 1000, 0.0, None, False),  # full by bytes
    (40, 4000, 1.0, 1.0, False),
    (3, 100, 0.0, None, True),  # a flush waits
    (3, 100, 0.0, 0.0, True),
]


@pytest.fixture
def db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


def lua_due_in(
    db: redis.Redis,
    count: int,
    nbytes: int,
    age: float | None,
    sent: float | None,
    force: bool,
) -> float | None:
    """The CLAIM script's answer for one account in this state: None
    (nothing waits), 0.0 (a batch left) or seconds to wait."""
    k = account_keys(f"due{uuid.uuid4().hex[:12]}", "a")
    db.set(k.epoch, NOW_MS)  # a server that kept its data: no cold start
    db.hset(k.tot, mapping={"clock": NOW_MS, "wn": count, "wb": nbytes})
    if sent is not None:
        db.hset(k.tot, "sent", NOW_MS - round(sent * 1000))
    db.xgroup_create(k.q, "ship", "0", mkstream=True)
    if count:
        assert age is not None
        data = b"\n".join([b'{"seq":1}'] * count)
        born = NOW_MS - round(age * 1000)
        db.xadd(k.q, {"d": data, "n": count, "b": nbytes, "o": "t"}, id=f"{born}-0")
    reply = Scripts(db).claim(k, "me", "permit", POLICY, 60.0, force)
    db.delete(*k.all())
    if reply.chunks:
        assert reply.wait == 0.0
    return reply.wait


@pytest.mark.parametrize(("count", "nbytes", "age", "sent", "force"), CASES)
def test_the_claim_script_and_the_python_rule_agree(
    db: redis.Redis,
    count: int,
    nbytes: int,
    age: float | None,
    sent: float | None,
    force: bool,
) -> None:
    now = NOW_MS / 1000.0
    since = None if age is None else now - age
    if since is not None and sent is not None:
        since = max(since, now - sent)
    expected = POLICY.due_in(count, nbytes, since, now, force=force)
    got = lua_due_in(db, count, nbytes, age, sent, force)
    if expected is None or got is None:
        assert got == expected
    else:
        assert got == pytest.approx(expected, abs=0.001)


def test_the_table_covers_every_outcome() -> None:
    now = NOW_MS / 1000.0
    outcomes = set()
    for count, nbytes, age, _sent, force in CASES:
        since = None if age is None else now - age
        due = POLICY.due_in(count, nbytes, since, now, force=force)
        outcomes.add("none" if due is None else "now" if due == 0 else "later")
    assert outcomes == {"none", "now", "later"}
