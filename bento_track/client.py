"""The tracking client: `track`, `identify`, `flush`, `shutdown`, `stats`, and the
process-wide default client behind the module-level functions.

SKELETON: the capture half (track -> validate -> `event_captured`) is final;
the delivery half (collector, queue, worker) is being built in issue 3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ._context import bind_email, current_email
from ._signals import signals
from .events import Event, validate_email

__all__ = ["Client", "identify"]

_event_captured = signals.event_captured


class Client:
    """Captures events and delivers them to Bento in the background."""

    def __init__(self, **options: Any) -> None:
        self._closed = False
        self.captured: list[Event] = []  # placeholder until the queue lands
        _event_captured.connect(self._collect, sender=self, weak=False)

    def track(
        self,
        type: str,
        *,
        email: str | None = None,
        fields: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        date: dt.datetime | dt.date | str | None = None,
    ) -> Event:
        """Validate and capture one event; `email` defaults to the identity bound
        by `identify()` (or the middleware) in the current request or context.

        Raises:
            InvalidEventError: the event is invalid; the message names the field.
        """
        if email is None:
            email = current_email()
            if email is None:
                from .errors import InvalidEventError

                raise InvalidEventError(
                    "email is required: pass email=... or call "
                    "bento_track.identify(email) earlier in this request or context",
                    field="email",
                )
        event = Event.build(
            type, email=email, fields=fields, details=details, date=date
        )
        self.capture(event)
        return event

    def capture(self, event: Event) -> None:
        """Send an already built `Event` through the `event_captured` signal."""
        _event_captured.send(self, event=event)

    def _collect(self, sender: Client, *, event: Event, **_: Any) -> None:
        self.captured.append(event)


def identify(email: str) -> None:
    """Bind `email` to the current request (or context): later events tracked in
    it carry this email unless they name another."""
    bind_email(validate_email(email))
