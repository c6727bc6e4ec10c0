"""The process-wide default client behind `bento_track.track()` and friends.

`init(...)` configures it explicitly. Without `init`, the first call builds it
from the `BENTO_*` environment variables; if they are missing or malformed it
becomes a disabled client that counts every event as dropped with reason
`not_configured` and logs one warning: capture never raises because of
configuration.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from ._capture.build import set_default_client
from ._capture.filtering import BeforeSend
from ._capture.scrub import Scrubber
from ._core.clock import Clock
from ._internal import library_section, logger
from .client import Client, ClientStats
from .errors import ConfigurationError
from .events import Event
from .stores import DEFAULT_MAX_STORE_BYTES, QueueBackend, Store
from .subscribers import SubscriberCommand, SubscriberUpsert

__all__ = [
    "change_subscriber_email",
    "existing_client",
    "flush",
    "get_client",
    "init",
    "shutdown",
    "stats",
    "track",
    "unsubscribe_subscriber",
    "upsert_subscriber",
]

_lock = threading.Lock()
_client: Client | None = None


def init(
    *,
    site_uuid: str | None = None,
    publishable_key: str | None = None,
    secret_key: str | None = None,
    base_url: str | None = None,
    allow_insecure_http: bool | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    max_batch_size: int = 1000,
    max_batch_bytes: int = 1_048_576,
    flush_interval: float = 5.0,
    requests_per_minute: int = 100,
    rate_window: float = 60.0,
    max_queue_size: int = 10_000,
    max_queue_bytes: int = 10 * 1_048_576,
    overflow: str = "drop_newest",
    block_timeout: float = 0.1,
    max_retry_time: float = 300.0,
    retry_base_delay: float = 0.5,
    shutdown_timeout: float = 2.0,
    sync_mode: bool = False,
    sync_timeout: float = 10.0,
    disabled: bool = False,
    strict: bool | None = None,
    before_send: BeforeSend | None = None,
    scrub: bool | Scrubber = True,
    queue: QueueBackend | None = None,
    store: str | Store | None = None,
    max_store_bytes: int = DEFAULT_MAX_STORE_BYTES,
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
) -> Client:
    """Configure the default client (arguments first, then the environment) and
    return it; the arguments are `Client`'s. A previous default client is shut
    down (within its `shutdown_timeout`) after the new one takes its place.

    Raises:
        ConfigurationError: a setting is missing or out of range.
    """
    global _client
    client = Client(
        site_uuid=site_uuid,
        publishable_key=publishable_key,
        secret_key=secret_key,
        base_url=base_url,
        allow_insecure_http=allow_insecure_http,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_batch_size=max_batch_size,
        max_batch_bytes=max_batch_bytes,
        flush_interval=flush_interval,
        requests_per_minute=requests_per_minute,
        rate_window=rate_window,
        max_queue_size=max_queue_size,
        max_queue_bytes=max_queue_bytes,
        overflow=overflow,
        block_timeout=block_timeout,
        max_retry_time=max_retry_time,
        retry_base_delay=retry_base_delay,
        shutdown_timeout=shutdown_timeout,
        sync_mode=sync_mode,
        sync_timeout=sync_timeout,
        disabled=disabled,
        strict=strict,
        before_send=before_send,
        scrub=scrub,
        queue=queue,
        store=store,
        max_store_bytes=max_store_bytes,
        clock=clock,
        transport=transport,
        environ=environ,
    )
    with _lock:
        previous, _client = _client, client
    if previous is not None:
        previous.shutdown()
    return client


def existing_client() -> Client | None:
    """The default client if one was made (never builds one)."""
    return _client


def get_client() -> Client:
    """The default client, built from the environment on first use."""
    global _client
    client = _client
    if client is not None:
        return client
    with _lock:
        if _client is None:
            try:
                _client = Client()
            except ConfigurationError as exc:
                with library_section():
                    logger.warning(
                        "bento_track is not configured (%s); events are counted "
                        "as dropped (not_configured) until bento_track.init(...) "
                        "is called",
                        exc,
                    )
                _client = Client(disabled=True, _disabled_reason="not_configured")
        return _client


# Capture paths given no client use this one (they sit below the client).
set_default_client(get_client)


def track(
    type: str,
    *,
    email: str | None = None,
    fields: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    date: dt.datetime | dt.date | str | None = None,
) -> Event | None:
    """`Client.track` on the default client."""
    return get_client().track(
        type, email=email, fields=fields, details=details, date=date
    )


def upsert_subscriber(
    email: str,
    fields: Mapping[str, Any] | None = None,
    tags: Iterable[str] | str | None = None,
    remove_tags: Iterable[str] | str | None = None,
) -> SubscriberUpsert | None:
    """`Client.upsert_subscriber` on the default client."""
    return get_client().upsert_subscriber(email, fields, tags, remove_tags)


def change_subscriber_email(old_email: str, new_email: str) -> SubscriberCommand | None:
    """`Client.change_subscriber_email` on the default client."""
    return get_client().change_subscriber_email(old_email, new_email)


def unsubscribe_subscriber(email: str) -> SubscriberCommand | None:
    """`Client.unsubscribe_subscriber` on the default client."""
    return get_client().unsubscribe_subscriber(email)


def flush(timeout: float | None = None) -> bool:
    """`Client.flush` on the default client."""
    return get_client().flush(timeout)


def shutdown(timeout: float | None = None) -> int:
    """`Client.shutdown` on the default client (0 if there is none yet)."""
    client = _client
    return 0 if client is None else client.shutdown(timeout)


def stats() -> ClientStats:
    """`Client.stats` on the default client."""
    return get_client().stats()
