"""What the framework adapters share: which settings are `Client` options,
and configuring the default client from them."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

from .._default import init
from .._internal import library_section, logger
from ..client import Client
from ..config import ENV_VARS

__all__ = ["CLIENT_OPTIONS", "configure_default_client", "split_client_options"]

#: `bento_track.Client` keyword arguments a framework's settings may carry
CLIENT_OPTIONS = frozenset(
    name
    for name in inspect.signature(Client).parameters
    if not name.startswith("_") and name not in ("queue", "clock", "environ")
)
_CREDENTIALS = ("site_uuid", "publishable_key", "secret_key")


def split_client_options(
    settings: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the `Client` options, the rest)."""
    client = {k: v for k, v in settings.items() if k in CLIENT_OPTIONS}
    rest = {k: v for k, v in settings.items() if k not in CLIENT_OPTIONS}
    return client, rest


def configure_default_client(options: Mapping[str, Any]) -> None:
    """`bento_track.init(**options)`, when there are options. Without
    credentials (in the options or the `BENTO_*` variables: a management
    command, a test run) the default client is left to its usual fallback,
    a disabled client that says so once, rather than failing the app's start.

    Raises:
        ConfigurationError: an option is malformed.
    """
    if not options:
        return
    missing = [
        name
        for name in _CREDENTIALS
        if not options.get(name) and not os.environ.get(ENV_VARS[name])
    ]
    if missing and not options.get("disabled"):
        with library_section():
            logger.debug(
                "bento_track: client options not applied: %s not set",
                ", ".join(ENV_VARS[name] for name in missing),
            )
        return
    init(**options)
