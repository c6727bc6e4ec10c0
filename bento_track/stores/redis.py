"""`RedisStore`: one queue and one request budget per Bento account on a
Redis server that every process of every host shares
(`Client(store="redis://host:6379/0")`).

What lives where (keys: `redis_keys`; scripts: `redis_scripts`, called
through `redis_calls`):

- everything is kept per account (the client's endpoint, `site_uuid` and
  publishable key, `queues.account`), under the account's own key prefix,
  so several apps (staging next to production, two customers) may share
  one Redis database: a process claims, budgets and pauses only its own
  account's events, and they leave with its keys. A registry names each
  account by its `site_uuid` (never its keys) for `stats()` and
  `bento-track store`.
- events wait in a Stream, in chunks (`chunks`), read through a consumer
  group: a chunk a process claimed is pending until it is settled, and one
  whose holder went quiet for `visibility_timeout` is taken over by the
  next claim of any process of the account (at-least-once; counted as
  `reclaimed`). Nothing is ever trimmed: the bound (`max_store_bytes`) is
  applied when events are written, and `drop_oldest` deletes only waiting
  chunks.
- the request budget is a sliding-window log of completions plus the
  requests in flight, as in the SQLite store, timed by Redis's `TIME`
  inside the scripts: hosts' clocks never enter it. A claim checks the 429
  pause, the budget and whether a batch is due, takes the batch and spends
  its permit in one script: a permit is spent if and only if a batch
  leaves. A Redis that lost its data (restarted empty, flushed) counts a
  full window of requests as made when it started.

Events written before stores knew accounts are claimed by no process
until an operator hands them to an account (`redis_admin.adopt_legacy`).

Redis unavailable (down, hung, refusing the password, out of memory,
loading): `track()` never notices (it only appends to the worker's inbox).
The worker's writes fail within the socket timeout (2 s) and a breaker
(`redis_breaker`) keeps it from waiting again for a while; events wait in
a local fallback store (this process's memory by default, bounded by
`max_queue_size` / `max_queue_bytes`, or `?fallback=sqlite:////path`) and
move to Redis once it answers (`redis_outage`). Sending holds meanwhile: no
request is made without the shared budget. `stats()` never waits on Redis
for more than `STATS_WAIT` (`redis_figures`). At exit, only what is on the
Redis server (or in a SQLite fallback) is `kept()`; the rest is said to be
lost, and how many.

Fork: a connection never crosses a fork; the child names itself anew and
connects on first use.

This module opens the store (`open_redis_store`); the store itself is
`redis_store`, the chunks a process holds `redis_ledger`, the operator's
tools (`bento-track store URL`) `redis_admin`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigurationError
from .base import Store
from .redis_admin import adopt_legacy, describe_redis, need_redis_py
from .redis_breaker import RedisUnavailable
from .redis_calls import DEFAULT_SOCKET_TIMEOUT
from .redis_store import STATS_WAIT, RedisStore
from .redis_url import (
    DEFAULT_VISIBILITY_TIMEOUT,
    parse_redis_url,
    redacted,
    store_options,
)

__all__ = [
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "STATS_WAIT",
    "RedisStore",
    "RedisUnavailable",
    "adopt_legacy",
    "describe_redis",
    "open_redis_store",
    "redacted",
]


def open_redis_store(
    url: str,
    *,
    max_bytes: int,
    open_local: Callable[..., Store] | None = None,
) -> RedisStore:
    """The Redis store `url` names, its URL and options checked (no I/O:
    Redis may be down now; the store waits for it). Options in the query
    string: `namespace`, `visibility_timeout`, `fallback` (`memory` or a
    `sqlite:///` URL, opened by `open_local`, `url.open_store`), `host`;
    redis-py's `socket_timeout=`, `ssl_cert_reqs=`, ... (`redis_url`).

    Raises:
        ConfigurationError: naming `store`, never showing the password:
            redis-py is missing, the URL or an option is malformed, or the
            SQLite fallback cannot be used.
    """
    need_redis_py()
    parsed = parse_redis_url(url)
    options = store_options(parsed)
    fallback: Store | None = None
    if options.fallback is not None:
        if open_local is None:
            raise ConfigurationError(
                "store: no way to open the fallback here", setting="store"
            )
        fallback = open_local(options.fallback, max_bytes=max_bytes)
    return RedisStore(
        parsed,
        max_bytes=max_bytes,
        namespace=options.namespace,
        visibility_timeout=options.visibility_timeout,
        fallback=fallback,
        host=options.host,
        location=parsed.location,
    )
