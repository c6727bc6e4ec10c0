"""A `Client`'s construction: its delivery settings checked against
`OPTIONS`, its connection `Config` (with the account a shared store keys
on), and the store its events wait in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .._delivery.worker import WorkerSettings
from ..config import ENV_VARS, Config
from ..errors import ConfigurationError
from ..options import OPTIONS
from ..stores import Account, MemoryStore, QueueBackend, Store
from ..stores.url import is_memory, open_store

__all__ = ["OVERFLOW_POLICIES", "connection", "store_for", "worker_settings"]

#: what happens to a new event when the queue is full
OVERFLOW_POLICIES = ("drop_newest", "drop_oldest", "block")


def worker_settings(overflow: str, sync_mode: bool, **options: Any) -> WorkerSettings:
    """`WorkerSettings` of `options`, each checked by its `OPTIONS` entry in
    the order given (the first out of range is the one raised).

    Raises:
        ConfigurationError: `overflow` or an option is out of range.
    """
    if overflow not in OVERFLOW_POLICIES:
        raise ConfigurationError(
            f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, not {overflow!r}",
            setting="overflow",
        )
    checked = {name: OPTIONS[name].check(value) for name, value in options.items()}
    return WorkerSettings(**checked, overflow=overflow, sync_mode=bool(sync_mode))


def connection(
    settings: WorkerSettings, disabled: bool, **given: Any
) -> tuple[Config | None, WorkerSettings]:
    """The `Config` of the `given` settings (None for a disabled client that
    has none), and `settings` with the account a shared store keeps apart
    from any other account's (`stores.Account`).

    Raises:
        ConfigurationError: a setting is missing or malformed (not raised
            for a disabled client).
    """
    try:
        config = Config.resolve(**given)
    except ConfigurationError:
        if not disabled:
            raise
        return None, settings
    account = Account(
        endpoint=config.base_url,
        site_uuid=config.site_uuid,
        publishable_key=config.publishable_key,
    )
    return config, replace(settings, account=account)


def store_for(
    store: str | Store | None,
    queue: QueueBackend | None,
    max_bytes: int,
    env: Mapping[str, str],
    disabled: bool,
) -> Store:
    """The store `store` (or the `BENTO_STORE` variable of `env`) names.

    Raises:
        ConfigurationError: `queue` given with a durable store, or the store
            cannot be opened.
    """
    spec = store if store is not None else env.get(ENV_VARS["store"])
    if is_memory(spec) or disabled:
        # A disabled client sends nothing, so it leaves a store alone.
        return MemoryStore(queue)
    if queue is not None:
        raise ConfigurationError(
            "queue= is the memory store's backend; it cannot be combined "
            "with a durable store=",
            setting="store",
        )
    assert spec is not None
    return open_store(spec, max_bytes=max_bytes)
