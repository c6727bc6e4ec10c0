"""The `Event` model, its building, JSON encoding, and Bento's reserved events.

Validation follows the Bento contract: `type` and `email` required, `email`
well-formed, `fields` flat (scalar values only), `details` any JSON, `date`
sent as ISO 8601 UTC. Values are normalised to plain JSON types when the event
is built, so delivery can encode batches without a `default=` hook and every
error names the field at the call site. The checks themselves live in
`bento_track._validation`; their public names are re-exported here.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from ._validation.dates import MAX_FUTURE as MAX_FUTURE
from ._validation.dates import check_date as check_date
from ._validation.dates import format_date as format_date
from ._validation.dates import format_timestamp as format_timestamp
from ._validation.fields import MAX_FIELDS as MAX_FIELDS
from ._validation.fields import normalize_fields as normalize_fields
from ._validation.json_values import EVENT_FRAME as EVENT_FRAME
from ._validation.json_values import JSONValue as JSONValue
from ._validation.json_values import OversizeEventError as OversizeEventError
from ._validation.json_values import check_details as check_details
from ._validation.json_values import normalize_json as normalize_json
from ._validation.json_values import scan_details as scan_details
from ._validation.json_values import size_floor as size_floor
from ._validation.text import MAX_EMAIL_LENGTH as MAX_EMAIL_LENGTH
from ._validation.text import MAX_TYPE_LENGTH as MAX_TYPE_LENGTH
from ._validation.text import check_text as check_text
from ._validation.text import check_type as check_type
from ._validation.text import shown, unreadable
from ._validation.text import type_name as type_name
from ._validation.text import validate_email as validate_email
from .errors import InvalidEventError

__all__ = [
    "EVENT_FRAME",
    "Event",
    "JSONValue",
    "OversizeEventError",
    "build_event",
    "check_details",
    "dumps",
    "format_timestamp",
    "is_validated",
    "normalize_fields",
    "normalize_json",
    "purchase",
    "remove_tag",
    "scan_details",
    "size_floor",
    "subscribe",
    "tag",
    "unsubscribe",
    "update_fields",
    "validate_email",
]


class Event:
    """One Bento event. Build it with `Event.build(...)`, which validates and
    normalises; the plain constructor is the library's trusted one (every
    capture path ends in it) and takes its arguments as they are. Treat an
    event as immutable: it may sit in a queue while your code runs on.

    `captured_at` (seconds since the epoch) is when the event happened; it is
    sent as `date` unless an explicit `date` was given, so batching and retries
    never shift an event's time.
    """

    __slots__ = ("captured_at", "date", "details", "email", "fields", "type")

    def __init__(
        self,
        type: str,
        email: str,
        fields: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        date: str | None = None,
        captured_at: float | None = None,
    ) -> None:
        self.type = type
        self.email = email
        self.fields = fields
        self.details = details
        #: ISO 8601 UTC string, already formatted, or None to use `captured_at`
        self.date = date
        self.captured_at = _now() if captured_at is None else captured_at

    @classmethod
    def build(
        cls,
        type: str,
        *,
        email: str,
        fields: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        date: dt.datetime | dt.date | str | None = None,
        max_bytes: int | None = None,
    ) -> Event:
        """Validate and normalise; raise `InvalidEventError` naming the field.

        `max_bytes`: the most an event may take encoded (a client passes what
        one request can carry); validation stops with `OversizeEventError` as
        soon as the event is known to be larger."""
        event, _ = build_event(cls, type, email, fields, details, date, max_bytes)
        return event

    def replace(self, **changes: Any) -> Event:
        """A new event with `changes` to any of `type`, `email`, `fields`,
        `details` and `date`, validated like `Event.build`; the capture time
        is kept. Like `dataclasses.replace`, for `before_send` hooks:
        `return event.replace(details={**(event.details or {}), "release": "2026.12"})`.

        Raises:
            InvalidEventError: the new event is invalid (naming the field).
            TypeError: a change names no part of an event.
        """
        unknown = sorted(set(changes) - _PARTS)
        if unknown:
            raise TypeError(
                f"Event.replace() got {', '.join(unknown)}; an event's parts are "
                "type, email, fields, details and date"
            )
        new = _Replaced.build(
            changes.get("type", self.type),
            email=changes.get("email", self.email),
            fields=changes.get("fields", self.fields),
            details=changes.get("details", self.details),
            date=changes.get("date", self.date),
        )
        new.captured_at = self.captured_at
        return new

    def to_dict(self) -> dict[str, Any]:
        """The event as Bento's JSON object (empty parts omitted)."""
        out: dict[str, Any] = {"type": self.type, "email": self.email}
        if self.fields:
            out["fields"] = self.fields
        if self.details:
            out["details"] = self.details
        out["date"] = self.date or format_timestamp(self.captured_at)
        return out

    def __repr__(self) -> str:
        return (
            f"Event(type={self.type!r}, email={self.email!r}, fields={self.fields!r}, "
            f"details={self.details!r}, date={self.date!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


_PARTS = frozenset({"type", "email", "fields", "details", "date"})


def build_event(
    cls: type[Event],
    type: object,
    email: object,
    fields: Mapping[str, Any] | None,
    details: Mapping[str, Any] | None,
    date: dt.datetime | dt.date | str | None,
    max_bytes: int | None = None,
    known_keys: set[str] | None = None,
) -> tuple[Event, bool]:
    """`Event.build`, and whether every key of its fields and details (at
    any depth) is in `known_keys` (False when that is None): a client's
    scrubber then has nothing to look at.

    Raises:
        InvalidEventError: as `Event.build`.
    """
    part = "type"
    try:
        kind = check_type(type)
        part = "email"
        address = validate_email(email)
        part = "fields"
        flat = None if fields is None else normalize_fields(fields)
        known = known_keys is not None and (not flat or known_keys.issuperset(flat))
        part = "details"
        checked = None
        if details is not None:
            checked, details_known = scan_details(
                details,
                max_bytes=max_bytes,
                used=size_floor(kind, address, flat),
                event_type=kind,
                known_keys=known_keys if known else None,
            )
            known = known and details_known
        part = "date"
        when = None if date is None else check_date(date)
    except InvalidEventError:
        raise
    except Exception as exc:  # a user object's own code raised
        given = {"type": type, "email": email, "fields": fields}
        raise unreadable(part, given.get(part, date), exc) from None
    return cls(kind, address, flat, checked, when), known


class _Replaced(Event):
    """An event `Event.replace` made: validated already."""

    __slots__ = ()


def is_validated(event: Event) -> bool:
    """Whether `event` was made by `Event.replace` (so it was validated when
    it was made, and a `before_send` hook's returning it needs no check)."""
    return type(event) is _Replaced


_now = time.time


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of already-normalised data (what Bento receives).

    Raises:
        TypeError: `value` holds something JSON cannot (`orjson.JSONEncodeError`).
    """
    return orjson.dumps(value)


# -- Bento's reserved events ---------------------------------------------------


def purchase(
    email: str,
    *,
    key: str | int,
    amount_cents: int,
    currency: str,
    cart: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    date: dt.datetime | dt.date | str | None = None,
) -> Event:
    """A `$purchase`: `key` is the stable order id Bento dedupes on (so a retry
    never counts twice); `amount_cents` is an integer number of cents."""
    # Subclasses as their plain values: nothing they override is called.
    if isinstance(key, str) and not isinstance(key, bool):
        key = str.__str__(key)
    elif isinstance(key, int) and not isinstance(key, bool):
        key = int.__int__(key)
    if type(key) not in (str, int) or key == "":
        raise InvalidEventError(
            "details.unique.key must be a non-empty order id (str or int)",
            field="details.unique.key",
        )
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
        raise InvalidEventError(
            "details.value.amount must be an integer number of cents "
            f"(e.g. 1999 for 19.99), not {shown(amount_cents)}",
            field="details.value.amount",
        )
    amount_cents = int.__int__(amount_cents)
    if not isinstance(currency, str) or not re.fullmatch(
        r"[A-Za-z]{3}", str.__str__(currency)
    ):
        raise InvalidEventError(
            f"details.value.currency must be a 3-letter ISO code such as 'USD', "
            f"not {shown(currency)}",
            field="details.value.currency",
        )
    if details is None:
        body: dict[str, Any] = {}
    elif isinstance(details, Mapping):
        try:
            body = dict(details)
        except Exception as exc:  # a user mapping's own code raised
            raise unreadable("details", details, exc) from None
    else:
        raise InvalidEventError(
            f"details must be a dict, not {type_name(details)}", field="details"
        )
    body["unique"] = {"key": key}
    body["value"] = {"amount": amount_cents, "currency": str.upper(currency)}
    if cart is not None:
        body["cart"] = cart
    return Event.build("$purchase", email=email, fields=fields, details=body, date=date)


def _tag_event(kind: str, email: str, tag_name: str) -> Event:
    if not isinstance(tag_name, str) or not str.strip(tag_name):
        raise InvalidEventError(
            "details.tag must be a non-empty tag name", field="details.tag"
        )
    return Event.build(kind, email=email, details={"tag": str.strip(tag_name)})


def tag(email: str, tag_name: str) -> Event:
    """`$tag`: add a tag (created if missing); triggers automations."""
    return _tag_event("$tag", email, tag_name)


def remove_tag(email: str, tag_name: str) -> Event:
    """`$remove_tag`: remove a tag; triggers automations."""
    return _tag_event("$remove_tag", email, tag_name)


def subscribe(email: str, fields: Mapping[str, Any] | None = None) -> Event:
    """`$subscribe`: create or resubscribe a subscriber; triggers automations."""
    return Event.build("$subscribe", email=email, fields=fields)


def unsubscribe(email: str) -> Event:
    """`$unsubscribe`: unsubscribe; triggers automations."""
    return Event.build("$unsubscribe", email=email)


def update_fields(email: str, fields: Mapping[str, Any]) -> Event:
    """`$update_fields`: set custom fields on the subscriber."""
    event = Event.build("$update_fields", email=email, fields=fields)
    if not event.fields:
        raise InvalidEventError(
            "fields must name at least one field to update", field="fields"
        )
    return event
