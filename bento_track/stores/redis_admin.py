"""An operator's tools for a Redis store (`bento-track store URL`): its
figures and who holds what, read without writing anything
(`describe_redis`), and the hand-over of unassigned events to an account
(`adopt_legacy`).

Events written before stores knew accounts (keys `bt:{<namespace>}:q` and
the like) have no account: no process claims them, because sending them
with a guessed account's keys could give one customer's subscribers to
another. `stats().unassigned` and `bento-track store` count them, and
`adopt_legacy()` (`bento-track store URL --adopt`) hands them to the
account an operator names.

A tool opens no store (a store would join the consumer group and name
itself in the registry): it checks the URL as a store would, connects, and
calls the scripts and read-only commands it needs.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from ..errors import ConfigurationError
from .account import Account
from .redis_calls import Scripts, connect, text
from .redis_figures import accounts, read_figures
from .redis_keys import Keys, account_keys, legacy_keys, registry_key
from .redis_url import RedisURL, StoreOptions, parse_redis_url, store_options

__all__ = ["adopt_legacy", "describe_redis", "need_redis_py"]

#: chunks `adopt_legacy` looks at per script call (each call is atomic)
_ADOPT_STEP = 200


def need_redis_py() -> None:
    """Check that redis-py is installed.

    Raises:
        ConfigurationError: naming `store`, with the extra to install.
    """
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "store: a Redis store needs redis-py: pip install 'bento-track[redis]'",
            setting="store",
        ) from None


def _open(url: str) -> tuple[RedisURL, StoreOptions, Scripts]:
    """`url` checked as `open_redis_store` checks it (a `?fallback=` is left
    alone, unopened), and the scripts on a new connection."""
    need_redis_py()
    parsed = parse_redis_url(url)
    options = store_options(parsed)
    name = f"bento_track:{os.getpid()}:tool"
    return parsed, options, Scripts(connect(parsed.connection, name))


def describe_redis(url: str, *, max_bytes: int) -> dict[str, Any]:
    """A Redis store's figures (the whole namespace, each account by
    `site_uuid`, the unassigned events) and the chunks each process holds,
    read without writing anything (for `bento-track store URL`).

    Raises:
        ConfigurationError: not a usable URL, Redis cannot be reached, or
            no store in that namespace.
    """
    import redis

    parsed, options, scripts = _open(url)
    namespace, client = options.namespace, scripts.client
    try:
        known = accounts(client, namespace)
        legacy = legacy_keys(namespace)
        if not known and not client.exists(legacy.tot, legacy.q):
            raise ConfigurationError(
                f"no store in namespace {namespace!r} at {parsed.location}"
            )
        stats = read_figures(scripts, namespace, None, parsed.location, max_bytes)
        holders = []
        parts = [(site, account_keys(namespace, key)) for key, site in known.items()]
        for site, k in [*parts, (None, legacy)]:
            holders += _holders(client, k, site)
    except redis.RedisError as exc:
        raise ConfigurationError(
            f"cannot read the Redis store {parsed.location}: {exc}"
        ) from None
    finally:
        client.close()
    return {
        **asdict(stats),
        "namespace": namespace,
        "visibility_timeout": options.visibility_timeout,
        "lease_list": holders,
    }


def _holders(client: Any, k: Keys, site_uuid: str | None) -> list[dict[str, Any]]:
    """The processes holding chunks of one account (None: unassigned)."""
    if not client.exists(k.q):
        return []
    if not any(text(g["name"]) == "ship" for g in client.xinfo_groups(k.q)):
        return []
    consumers = client.xinfo_consumers(k.q, "ship")
    found = []
    for consumer in consumers:
        if not consumer["pending"]:
            continue
        name = text(consumer["name"])
        pending = client.xpending_range(k.q, "ship", "-", "+", 10_000, name)
        pipe = client.pipeline(transaction=False)
        for entry in pending:
            pipe.xrange(k.q, entry["message_id"], entry["message_id"])
        events = sum(int(hit[0][1][b"n"]) for hit in pipe.execute() if hit)
        host, _, rest = name.partition(":")
        found.append(
            {
                "site_uuid": site_uuid,
                "consumer": name,
                "host": host,
                "pid": int(rest.partition(":")[0] or 0),
                "chunks": int(consumer["pending"]),
                "events": events,
                "idle": round(int(consumer["idle"]) / 1000.0, 1),
            }
        )
    return found


def adopt_legacy(url: str, account: Account) -> int:
    """Hand the unassigned events of the Redis store `url` (written before
    stores knew accounts) to `account`; return how many moved. Its next
    process sends them with its keys. Chunks a live process of the old
    version still holds stay unassigned (run it again once those processes
    are gone); when none is left, the old keys are deleted. Each step is one
    atomic script, so a crash moves nothing twice. The account's bound
    (`max_store_bytes`) is not applied: these events were stored already.

    Raises:
        ConfigurationError: not a usable URL, or Redis cannot be reached.
    """
    import redis

    parsed, options, scripts = _open(url)
    namespace = options.namespace
    old, mine = legacy_keys(namespace), account_keys(namespace, account.key)
    moved, start = 0, "-"
    try:
        scripts.client.hset(registry_key(namespace), account.key, account.site_uuid)
        while True:
            step = scripts.adopt(
                old, mine, options.visibility_timeout, _ADOPT_STEP, start
            )
            moved += step.moved
            if not step.last:
                break
            start = "(" + step.last
    except redis.RedisError as exc:
        raise ConfigurationError(
            f"cannot adopt the unassigned events of the Redis store "
            f"{parsed.location}: {exc}"
        ) from None
    finally:
        scripts.client.close()
    return moved
