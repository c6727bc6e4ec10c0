"""`settings.BENTO_TRACK`, read and checked once per process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..setup import CLIENT_OPTIONS

__all__ = ["CLIENT_OPTIONS", "DjangoOptions", "load_options"]

#: options of the middleware's rule engine
MIDDLEWARE_OPTIONS = frozenset(
    {"events", "status", "facts", "attach_facts", "request_id_header"}
)
#: "email": the email backend's options, read by `email.EmailBackend`;
#: "subscribers": the user model's sync, read by `subscribers.load_config`
OWN_OPTIONS = frozenset({"identify", "auth_events", "email", "subscribers"})

IdentifyRequest = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class DjangoOptions:
    """`BENTO_TRACK`, split by who uses each part."""

    client: dict[str, Any] = field(default_factory=dict)
    middleware: dict[str, Any] = field(default_factory=dict)
    identify: IdentifyRequest | None = None
    auth_events: bool = False
    #: `BENTO_TRACK["subscribers"]` as written (None: not set, or False);
    #: checked by `subscribers.load_config` once the models are loaded
    subscribers: Any = None


def load_options() -> DjangoOptions:
    """`settings.BENTO_TRACK` (absent: all defaults).

    Raises:
        ImproperlyConfigured: not a dict, an unknown key, or an `identify`
            (or `before_send`) that is neither a callable nor the dotted
            path of one.
    """
    raw = getattr(settings, "BENTO_TRACK", None) or {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(
            "BENTO_TRACK must be a dict of bento_track options, not "
            f"{type(raw).__name__}"
        )
    known = CLIENT_OPTIONS | MIDDLEWARE_OPTIONS | OWN_OPTIONS
    unknown = sorted(str(key) for key in raw if key not in known)
    if unknown:
        raise ImproperlyConfigured(
            f"BENTO_TRACK: unknown option(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(known))}"
        )
    identify = raw.get("identify")
    if isinstance(identify, str):
        identify = _imported("identify", identify)
    if identify is not None and not callable(identify):
        raise ImproperlyConfigured(
            "BENTO_TRACK['identify'] must be a callable of the request (or its "
            "dotted path) returning an email or None"
        )
    client = {k: v for k, v in raw.items() if k in CLIENT_OPTIONS}
    if isinstance(client.get("before_send"), str):
        # A dotted path, like `identify`; what it names is checked by Client.
        client["before_send"] = _imported("before_send", client["before_send"])
    return DjangoOptions(
        client=client,
        middleware={k: v for k, v in raw.items() if k in MIDDLEWARE_OPTIONS},
        identify=identify,
        auth_events=bool(raw.get("auth_events", False)),
        subscribers=None
        if raw.get("subscribers") in (None, False)
        else raw["subscribers"],
    )


def _imported(option: str, path: str) -> Any:
    """The object a dotted-path option names."""
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"BENTO_TRACK[{option!r}]: cannot import {path!r}: {exc}"
        ) from exc
