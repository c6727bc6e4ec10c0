"""Accounts on one Redis database, in what only Redis does: each account's
keys are named by a digest (that each account's queue, budget and pause are
its own is the store contract's); keys written before stores knew accounts
are never claimed, are counted as unassigned, and move only when an
operator adopts them (`adopt_legacy`, `bento-track store URL --adopt`)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import redis

from bento_track._delivery.encoding import encode_event
from bento_track.cli import main
from bento_track.events import Event
from bento_track.stores import Account
from bento_track.stores.redis import adopt_legacy

from ..helpers import seqs, wait_until
from ..support.redis_server import namespace_of
from ..support.stores import RedisStores

ALPHA = Account("http://127.0.0.1:9/api/v1", "site-alpha", "pk-alpha")
BRAVO = Account("http://127.0.0.1:9/api/v1", "site-bravo", "pk-bravo")


def tagged(tag: str, n: int, first: int = 0) -> list[bytes]:
    return [b'{"%s":%d}' % (tag.encode(), i) for i in range(first, first + n)]


def of(stores: RedisStores, account: Account, **options: Any) -> Any:
    """A process of `account` (a request a second) on the test's namespace."""
    policy = replace(stores.policy, requests_per_window=1, account=account)
    return stores.open(policy, **options)


def test_keys_name_each_account_by_a_digest_never_by_its_keys(
    stores, redis_server, redis_url
) -> None:
    alpha, bravo = of(stores, ALPHA), of(stores, BRAVO)
    alpha.put(tagged("a", 15))
    bravo.put(tagged("b", 5))
    lease = alpha.claim(True).lease
    assert lease is not None
    alpha.complete(lease.permit)
    alpha.ack(lease)
    alpha.pause(3.0)
    # Keys name each account by a digest; its keys are nowhere in Redis.
    db = redis_server.client()
    try:
        namespace = namespace_of(redis_url)
        keys = db.keys(f"bt:{{{namespace}*")
        assert keys and all(b"pk-" not in key for key in keys)
        assert db.hgetall(f"bt:{{{namespace}}}:accounts") == {
            ALPHA.key.encode(): b"site-alpha",
            BRAVO.key.encode(): b"site-bravo",
        }
        for key in keys:
            assert b"pk-" not in db.dump(key)
    finally:
        db.close()


def write_legacy(db: redis.Redis, namespace: str, chunks: list[list[bytes]]) -> None:
    """Chunks written as stores wrote them before they knew accounts (the
    `bt:{namespace}:...` layout: one stream, one set of totals)."""
    p = f"bt:{{{namespace}}}:"
    try:
        db.xgroup_create(p + "q", "ship", "0", mkstream=True)
    except redis.ResponseError:
        pass  # BUSYGROUP
    origin = "old-host:1:abcd"
    for chunk in chunks:
        n, size = len(chunk), sum(map(len, chunk)) + len(chunk)
        db.xadd(p + "q", {"d": b"\n".join(chunk), "n": n, "b": size, "o": origin})
        for name in ("n", "wn"):
            db.hincrby(p + "tot", name, n)
        for name in ("b", "wb"):
            db.hincrby(p + "tot", name, size)
        db.hincrby(p + "out", origin, n)
    db.hset(p + "seq", origin, len(chunks))


def hold_legacy_chunk(db: redis.Redis, namespace: str) -> None:
    """A process of the old version, still running, holds the first chunk."""
    p = f"bt:{{{namespace}}}:"
    [[_, [(_, fields)]]] = db.xreadgroup("ship", "old-host:2:beef", {p + "q": ">"}, 1)
    db.hincrby(p + "tot", "wn", -int(fields[b"n"]))
    db.hincrby(p + "tot", "wb", -int(fields[b"b"]))


def test_unassigned_events_are_never_claimed_until_adopted(
    stores, redis_server, redis_url
) -> None:
    namespace = namespace_of(redis_url)
    db = redis_server.client()
    try:
        write_legacy(db, namespace, [tagged("old", 5, 5 * c) for c in range(3)])
        hold_legacy_chunk(db, namespace)
        alpha = of(stores, ALPHA, lease_timeout=1)
        bravo = of(stores, BRAVO, lease_timeout=1)
        for store in (alpha, bravo):  # no guessed account: nobody sends them
            assert store.claim(True).lease is None
        stats = alpha.stats()
        assert stats.unassigned == 15 and stats.depth == 0
        url = f"{redis_url}&visibility_timeout=1"
        # The chunk a live process of the old version holds stays behind.
        assert adopt_legacy(url, ALPHA) == 10
        assert alpha.stats().unassigned == 5 and alpha.stats().depth == 10
        lease = alpha.claim(True).lease
        assert lease is not None and lease.records == tagged("old", 10, 5)
        alpha.complete(lease.permit)
        alpha.ack(lease)
        assert bravo.claim(True).lease is None  # alpha's now, never bravo's
        # Its holder goes quiet for the visibility timeout: adopted too, and
        # the old keys are gone.
        moved: list[int] = []

        def adopted() -> int:
            moved.append(adopt_legacy(url, ALPHA))
            return sum(moved)

        wait_until(adopted, 10)
        assert sum(moved) == 5
        assert db.keys(f"bt:{{{namespace}}}:*") == [
            f"bt:{{{namespace}}}:accounts".encode()
        ]
        assert alpha.stats().unassigned == 0
        got: list[Any] = []

        def claimed() -> bool:
            lease = alpha.claim(True).lease  # once alpha's budget allows
            if lease is not None:
                got.append(lease)
            return bool(got)

        wait_until(claimed, 5)
        assert got[0].records == tagged("old", 5)
        assert adopt_legacy(url, ALPHA) == 0  # nothing left: a no-op
    finally:
        db.close()


def test_store_command_shows_accounts_and_unassigned_and_adopts(
    emulator, redis_server, redis_url, clients, capsys, monkeypatch
) -> None:
    events = [
        encode_event(Event.build("old", email="old@example.com", details={"seq": i}))
        for i in range(15)
    ]
    db = redis_server.client()
    try:
        write_legacy(
            db, namespace_of(redis_url), [events[i : i + 5] for i in (0, 5, 10)]
        )
    finally:
        db.close()
    assert main(["store", redis_url]) == 0
    out = capsys.readouterr().out
    assert "unassigned 15 events written before stores knew accounts" in out
    kwargs = emulator.client_kwargs()
    for name, value in kwargs.items():
        monkeypatch.setenv(f"BENTO_{name.upper()}", value)
    assert main(["store", redis_url, "--adopt"]) == 0
    assert (
        f"adopted 15 unassigned events into the account of site {kwargs['site_uuid']}"
        in capsys.readouterr().out
    )
    assert main(["store", redis_url]) == 0
    out = capsys.readouterr().out
    assert f"account    site {kwargs['site_uuid']}: 15 events" in out
    assert "unassigned" not in out
    assert main(["store", redis_url, "--json"]) == 0
    text = capsys.readouterr().out
    info = json.loads(text)
    assert info["unassigned"] == 0
    assert [(a["site_uuid"], a["depth"]) for a in info["accounts"]] == [
        (kwargs["site_uuid"], 15)
    ]
    assert kwargs["publishable_key"] not in text and kwargs["secret_key"] not in text
    # That account's next process sends them, with its keys.
    # (A window of a second: a Redis younger than a window holds its first.)
    emulator.inspect.set_rate_limit(1000, 1.0)
    clients(
        store=redis_url,
        flush_interval=0.05,
        requests_per_minute=1000,
        rate_window=1.0,
        **kwargs,
    )
    wait_until(lambda: sorted(seqs(emulator)) == list(range(15)), 30)
