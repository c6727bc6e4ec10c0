"""What the capture paths (middlewares, decorator, log handler) share: finding
the client, turning user-supplied values into an event, and reporting problems
on the `bento_track` logger instead of raising into the host application.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._internal import Counter, internal_error
from ..errors import ConfigurationError, InvalidEventError
from ..events import (
    Event,
    check_details,
    check_type,
    normalize_fields,
    size_floor,
    validate_email,
)
from .context import current_email

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "capture_event",
    "configured_type",
    "exception_summary",
    "invalid_events",
    "report_invalid",
    "resolve_client",
    "set_default_client",
]


#: events the capture paths could not build (bad data from a rule, a decorator
#: option or a log tag); each one is also dropped as `invalid` by its client
invalid_events = Counter()


#: where capture paths given no client send events: the process default,
#: set by `bento_track._default` as it loads (capture sits below the client
#: and never imports it)
_default_client: Callable[[], Client] | None = None


def set_default_client(find: Callable[[], Client]) -> None:
    """Name the function that returns the process's default client."""
    global _default_client
    _default_client = find


def resolve_client(client: Client | None) -> Client:
    """The client a capture path was given, else the process default."""
    if client is not None:
        return client
    if _default_client is None:  # pragma: no cover - set as bento_track loads
        raise RuntimeError("bento_track's default client is not set up")
    return _default_client()


def configured_type(value: object, *, setting: str, label: str) -> str:
    """An event type given as an option, checked when the option is given: a
    bad one is a `ConfigurationError` naming `setting`, prefixed by `label`."""
    try:
        return check_type(value)
    except InvalidEventError as exc:
        raise ConfigurationError(f"{label}: {exc}", setting=setting) from None


def report_invalid(where: str, exc: InvalidEventError, client: Client | None) -> None:
    """An event a capture path could not build: counted, then dropped by its
    client as `invalid` (counted in its stats, signalled, logged). Capture
    paths never raise, in strict mode too: they run inside the host's request."""
    invalid_events.add()
    resolve_client(client).refuse_invalid(exc, where)


def exception_summary(exc: BaseException) -> dict[str, str]:
    """The type and message of an exception (never its traceback or locals)."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__}.{name}"
    try:
        message = str(exc)[:1000]
    except Exception:  # an exception whose `__str__` raises still counts
        message = "<message unreadable>"
    return {"type": name, "message": message}


def capture_event(
    client: Client | None,
    type: str,
    *,
    email: str | None,
    fields: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    trusted: dict[str, Any] | None = None,
    where: str,
) -> None:
    """Build and capture one event; never raises.

    `email` None falls back to the request's (or context's) identity.
    `trusted` are details the library built itself from plain JSON values
    (request facts, log record attributes), in a dict made for this call
    (it becomes the event's): they skip re-validation, which is most of an
    event's build cost. User `details` are validated and win over `trusted`
    keys of the same name.
    """
    try:
        if email is None:
            email = current_email()
            if email is None:
                raise InvalidEventError(
                    "no email: pass one, call bento_track.identify(email) in the "
                    "request, or configure the middleware's identify=",
                    field="email",
                )
        target = resolve_client(client)
        kind = check_type(type)
        address = validate_email(email)
        flat = None if fields is None else normalize_fields(fields)
        merged = trusted
        if details is not None:
            checked = check_details(
                details,
                max_bytes=target.max_event_bytes,
                used=size_floor(kind, address, flat),
                event_type=kind,
            )
            if trusted:
                merged = dict(trusted)
                merged.update(checked)
            else:
                merged = checked
        event = Event(kind, address, flat or None, merged or None)
        target.capture(event, where=where)
    except InvalidEventError as exc:
        report_invalid(where, exc, client)
    except Exception:
        internal_error(where)
