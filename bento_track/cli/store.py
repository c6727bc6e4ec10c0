"""`bento-track store URL`: what a durable store holds, for an operator.

    bento-track store sqlite:////var/lib/app/bento.db [--json]
    bento-track store redis://host:6379/0[?namespace=NAME] [--json]
    bento-track store URL --adopt

Prints the events waiting (and the oldest one's age), the bytes against the
bound, the leases held and by which processes, each account's events (by
`site_uuid`, never keys), request budget spent in the current window and
429 pause, the events written before stores knew accounts (unassigned), and
the counters of events taken over from dead processes and dropped by the
bound. It only reads: it never creates a store, delivers, or takes a lease
(a SQLite file is opened read-only; on Redis it runs a read-only script).

`--adopt` is the one write: it hands the unassigned events to the account
of the credentials in the environment (`BENTO_SITE_UUID`,
`BENTO_PUBLISHABLE_KEY`, `BENTO_SECRET_KEY`, `BENTO_ENDPOINT`), to be sent
with its keys by its next process. Only an operator knows whose they are.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sqlite3
import time
from typing import Any

from ..config import Config
from ..errors import ConfigurationError
from ..stores.account import Account
from ..stores.redis_url import is_redis_url
from ..stores.sqlite import DEFAULT_MAX_STORE_BYTES, adopt_legacy, read_stats
from ..stores.url import sqlite_path

__all__ = ["add_store_command", "cmd_store", "describe"]


def add_store_command(sub: Any) -> None:
    """Register `store` on the `bento-track` subcommands."""
    p = sub.add_parser(
        "store", help="show a durable store: depth, oldest age, leases, budget"
    )
    p.add_argument(
        "url",
        help="the store, e.g. sqlite:////var/lib/app/bento.db or "
        "redis://host:6379/0?namespace=bento",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument(
        "--adopt",
        action="store_true",
        help="hand the unassigned events (written before stores knew accounts) "
        "to the account of the BENTO_* credentials in the environment",
    )
    p.set_defaults(func=cmd_store)


def describe(url: str) -> dict[str, Any]:
    """The store's figures and its leases, read without writing anything.

    Raises:
        ConfigurationError: not a store URL, no such file, or not a store;
            a Redis that cannot be reached or holds no store there.
    """
    if is_redis_url(url):
        from ..stores.redis import describe_redis

        return describe_redis(url.strip(), max_bytes=DEFAULT_MAX_STORE_BYTES)
    if url.strip().lower() == "memory":
        # A valid `store=` value, so "must be ..., not 'memory'" read as nonsense.
        raise ConfigurationError(
            "'memory' (the default) keeps each process's queue in that process, "
            "where no other program can read it: ask the process "
            "(bento_track.stats()), or name a durable store, "
            "sqlite:////path/bento.db or redis://host:6379/0"
        )
    path, _ = sqlite_path(url.strip())
    if not os.path.isfile(path):
        raise ConfigurationError(f"no store at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open {path}: {exc}") from None
    try:
        now = time.time()
        stats = read_stats(conn, now, url.strip(), path)
        leases = [
            {
                "events": count,
                "pid": pid,
                "host": (host or "").split("/")[0] or None,
                "expires_in": round(expires - now, 1),
            }
            for count, expires, pid, host in conn.execute(
                "SELECT l.count, l.expires, h.pid, h.host FROM leases l "
                "LEFT JOIN holders h ON h.id = l.holder ORDER BY l.id"
            )
        ]
    except sqlite3.Error as exc:
        raise ConfigurationError(f"{path} is not a readable store: {exc}") from None
    finally:
        conn.close()
    return {**dataclasses.asdict(stats), "lease_list": leases}


def adopt(url: str, account: Account) -> int:
    """Hand a store's unassigned events to `account`; return how many.

    Raises:
        ConfigurationError: not a store URL, no such file, or not a store.
    """
    if is_redis_url(url):
        from ..stores.redis import adopt_legacy as adopt_redis

        return adopt_redis(url.strip(), account)
    path, _ = sqlite_path(url.strip())
    if not os.path.isfile(path):
        raise ConfigurationError(f"no store at {path}")
    describe(url)  # refuses a file that is not a store, read-only
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    try:
        return adopt_legacy(conn, account)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot adopt events in {path}: {exc}") from None
    finally:
        conn.close()


def _environment_account() -> Account:
    config = Config.resolve()
    return Account(config.base_url, config.site_uuid, config.publishable_key)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def cmd_store(args: argparse.Namespace) -> int:
    """Print a store's figures (or one JSON object with `--json`); with
    `--adopt`, hand its unassigned events to the environment's account."""
    if args.adopt:
        account = _environment_account()
        moved = adopt(args.url, account)
        print(
            f"adopted {moved:,} unassigned events into the account of site "
            f"{account.site_uuid}; its next process sends them"
        )
        return 0
    info = describe(args.url)
    if args.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    oldest = _oldest(info["oldest_age"])
    if info["kind"] == "redis":
        lines = [
            f"store      {info['location']} (Redis, namespace {info['namespace']})",
            f"events     {info['depth']:,} ({oldest})",
            f"bytes      {_size(info['nbytes'])} of {_size(info['max_bytes'])}",
            f"pending    {info['leased']:,} events held by {info['leases']} "
            f"processes (taken over after {info['visibility_timeout']:g} s quiet)",
        ]
        for held in info["lease_list"]:
            site = held["site_uuid"]
            whose = "unassigned" if site is None else f"site {site or '(none)'}"
            lines.append(
                f"           {held['events']:,} events ({whose}) by pid "
                f"{held['pid']} on {held['host']}, quiet for {held['idle']:.1f} s"
            )
    else:
        lines = [
            f"store      {info['location']} (schema {info['schema_version']})",
            f"events     {info['depth']:,} ({oldest})",
            f"bytes      {_size(info['nbytes'])} of {_size(info['max_bytes'])}",
            f"leases     {info['leases']} holding {info['leased']:,} events",
        ]
        for lease in info["lease_list"]:
            lines.append(
                f"           {lease['events']:,} events by pid {lease['pid']} on "
                f"{lease['host']}, expires in {lease['expires_in']:.0f} s"
            )
    seen = "seen in the last minute" if info["kind"] == "redis" else "registered"
    for account in info["accounts"]:
        lines += _account_lines(account)
    if info["unassigned"]:
        lines.append(
            f"unassigned {info['unassigned']:,} events written before stores knew "
            f"accounts; never sent until adopted (bento-track store URL --adopt)"
        )
    lines += [
        f"processes  {info['processes']} {seen}",
        f"reclaimed  {info['reclaimed']:,} events taken over from dead processes",
        f"dropped    {info['dropped']:,} events (store full)",
    ]
    print("\n".join(lines))
    return 0


def _oldest(age: float | None) -> str:
    return "none waiting" if age is None else f"oldest {age:.1f} s old"


def _account_lines(account: dict[str, Any]) -> list[str]:
    """An account's part of a shared store: its events, budget and pause."""
    paused = account["paused_until"]
    pause = (
        "not paused"
        if paused is None
        else "paused until "
        + dt.datetime.fromtimestamp(paused, dt.timezone.utc).strftime("%H:%M:%S UTC")
        + " (429)"
    )
    return [
        f"account    site {account['site_uuid'] or '(none)'}: "
        f"{account['depth']:,} events ({_oldest(account['oldest_age'])})",
        f"budget     {account['budget_used']} of {account['budget_limit']} requests "
        f"in the current {account['budget_window']:g} s window; {pause}",
    ]
