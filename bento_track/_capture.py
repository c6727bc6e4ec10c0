"""What the capture paths (middlewares, decorator, log handler) share: finding
the client, turning user-supplied values into an event, and reporting problems
on the `bento_track` logger instead of raising into the host application.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._context import current_email
from ._internal import Counter, internal_errors, library_section, logger
from .errors import ConfigurationError, InvalidEventError
from .events import Event, _check_type, normalize_fields, normalize_json

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "capture_event",
    "configured_type",
    "exception_summary",
    "internal_error",
    "invalid_events",
    "report_invalid",
    "resolve_client",
]


#: events the capture paths could not build (bad data from a rule, a decorator
#: option or a log tag); each one is also logged on the `bento_track` logger
invalid_events = Counter()


def resolve_client(client: Client | None) -> Client:
    """The client a capture path was given, else the process default."""
    if client is not None:
        return client
    from ._default import get_client  # late: _default imports client

    return get_client()


def configured_type(value: object, *, setting: str, label: str) -> str:
    """An event type given as an option, checked when the option is given: a
    bad one is a `ConfigurationError` naming `setting`, prefixed by `label`."""
    try:
        return _check_type(value)
    except InvalidEventError as exc:
        raise ConfigurationError(f"{label}: {exc}", setting=setting) from None


def report_invalid(where: str, exc: Exception) -> None:
    """Count and log an event that could not be built, with the reason."""
    invalid_events.add()
    with library_section():
        logger.warning("bento_track: %s: event not tracked: %s", where, exc)


def exception_summary(exc: BaseException) -> dict[str, str]:
    """The type and message of an exception (never its traceback or locals)."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__}.{name}"
    return {"type": name, "message": str(exc)[:1000]}


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
        event = Event.build(type, email=email)
        if fields:
            event.fields = normalize_fields(fields)
        if details:
            if not isinstance(details, Mapping):
                raise InvalidEventError(
                    f"details must be a dict, not {details.__class__.__name__}",
                    field="details",
                )
            checked = normalize_json(details, "details")
            if trusted:
                merged = dict(trusted)
                merged.update(checked)
                event.details = merged
            else:
                event.details = checked
        elif trusted:
            event.details = trusted  # callers pass a dict made for this event
        resolve_client(client).capture(event)
    except InvalidEventError as exc:
        report_invalid(where, exc)
    except Exception:
        internal_error(where)


def internal_error(where: str) -> None:
    """Count and log an unexpected failure in a capture path (never raised)."""
    internal_errors.add()
    with library_section():
        logger.exception("bento_track: internal error in %s (ignored)", where)
