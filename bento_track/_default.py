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
from collections.abc import Mapping
from typing import Any

from ._internal import library_section, logger
from ._worker import DeliveryStats
from .client import Client, identify
from .errors import ConfigurationError
from .events import Event

__all__ = ["flush", "get_client", "identify", "init", "shutdown", "stats", "track"]

_lock = threading.Lock()
_client: Client | None = None


def init(
    *,
    site_uuid: str | None = None,
    publishable_key: str | None = None,
    secret_key: str | None = None,
    base_url: str | None = None,
    **options: Any,
) -> Client:
    """Configure the default client (arguments first, then the environment) and
    return it. A previous default client is shut down (within its
    `shutdown_timeout`) after the new one takes its place.

    Raises:
        ConfigurationError: a setting is missing or out of range.
    """
    global _client
    client = Client(
        site_uuid=site_uuid,
        publishable_key=publishable_key,
        secret_key=secret_key,
        base_url=base_url,
        **options,
    )
    with _lock:
        previous, _client = _client, client
    if previous is not None:
        previous.shutdown()
    return client


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


def track(
    type: str,
    *,
    email: str | None = None,
    fields: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    date: dt.datetime | dt.date | str | None = None,
) -> Event:
    """`Client.track` on the default client."""
    return get_client().track(
        type, email=email, fields=fields, details=details, date=date
    )


def flush(timeout: float | None = None) -> bool:
    """`Client.flush` on the default client."""
    return get_client().flush(timeout)


def shutdown(timeout: float | None = None) -> int:
    """`Client.shutdown` on the default client (0 if there is none yet)."""
    client = _client
    return 0 if client is None else client.shutdown(timeout)


def stats() -> DeliveryStats:
    """`Client.stats` on the default client."""
    return get_client().stats()
