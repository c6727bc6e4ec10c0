"""The `Event` model, its validation, JSON encoding, and Bento's reserved events.

Validation follows the Bento contract: `type` and `email` required, `email`
well-formed, `fields` flat (scalar values only), `details` any JSON, `date`
sent as ISO 8601 UTC. Values are normalised to plain JSON types when the event
is built, so delivery can encode batches without a `default=` hook and every
error names the field at the call site.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from .errors import InvalidEventError

__all__ = [
    "Event",
    "JSONValue",
    "dumps",
    "format_timestamp",
    "normalize_fields",
    "normalize_json",
    "purchase",
    "remove_tag",
    "subscribe",
    "tag",
    "unsubscribe",
    "update_fields",
    "validate_email",
]

JSONValue = (
    Any  # str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]
)

MAX_TYPE_LENGTH = 255
MAX_EMAIL_LENGTH = 254
#: `fields` is a subscriber's custom fields: a few dozen in real accounts
MAX_FIELDS = 1000
#: how far ahead of this host's clock a `date` may be (clock skew, not typos)
MAX_FUTURE = dt.timedelta(days=1)
_MAX_DEPTH = 32
# JSON numbers Bento (and orjson) can hold: 64-bit integers
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

# Deliberately simple: one @, no whitespace, a dot in the domain. Bento does
# the real verification; this catches empty strings, names and typos like "a@b".
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_SCALARS = (str, int, float, bool, type(None))
_FLAT_TYPES = frozenset(_SCALARS)
_INFINITIES = (float("inf"), float("-inf"))


_valid_emails: dict[str, str] = {}
_VALID_EMAIL_CACHE = 4096


def validate_email(email: object, field: str = "email") -> str:
    """Return `email` stripped if it is a well-formed address, else raise.

    Addresses already seen are remembered (a bounded cache), because the same
    few users send most events and the regex is the costliest check here."""
    if type(email) is str:
        hit = _valid_emails.get(email)
        if hit is not None:
            return hit
    if not isinstance(email, str):
        raise InvalidEventError(
            f"{field} must be a string email address, not {type(email).__name__}",
            field=field,
        )
    value = email.strip()
    if not value:
        raise InvalidEventError(
            f"{field} is required and must not be empty", field=field
        )
    check_text(value, field)
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL.match(value):
        raise InvalidEventError(
            f"{field} is not a well-formed email address: {value[:80]!r}", field=field
        )
    if len(_valid_emails) >= _VALID_EMAIL_CACHE:
        _valid_emails.clear()
    _valid_emails[email] = value
    return value


def check_text(value: str, field: str) -> str:
    """`value` if it is text Bento can store, else raise naming `field`: no lone
    surrogates (not valid Unicode, so not encodable as UTF-8 JSON) and no NUL
    characters (which Bento's database cannot hold)."""
    if value.isascii():
        if "\x00" in value:
            raise InvalidEventError(f"{field}: contains a NUL character", field=field)
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEventError(
            f"{field}: not valid Unicode text (lone surrogate "
            f"{value[exc.start]!r} at index {exc.start})",
            field=field,
        ) from None
    if "\x00" in value:
        raise InvalidEventError(f"{field}: contains a NUL character", field=field)
    return value


def _check_int(value: int, path: str) -> int:
    if _INT_MIN <= value <= _INT_MAX:
        return value
    raise InvalidEventError(
        f"{path}: {value} does not fit in a 64-bit JSON number; send it as a string",
        field=path,
    )


def format_date(value: dt.datetime | dt.date) -> str:
    """ISO 8601 in UTC with a `Z`; naive datetimes are taken to be UTC already."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    else:
        value = value.astimezone(dt.timezone.utc)
    text = value.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _convert(value: Any, path: str) -> JSONValue:
    """One non-native value to its JSON form, or an error naming `path`."""
    if isinstance(value, (dt.datetime, dt.date)):
        return format_date(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidEventError(
                f"{path}: {value} is not a finite number", field=path
            )
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return normalize_json(value.value, path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return normalize_json(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, path
        )
    raise InvalidEventError(
        f"{path}: {type(value).__name__} values cannot be encoded as JSON "
        "(use str, int, float, bool, None, list, dict, datetime, date, Decimal, "
        "UUID, Enum or a dataclass)",
        field=path,
    )


def normalize_json(value: Any, path: str = "details", _depth: int = 0) -> JSONValue:
    """Return `value` as plain JSON types, or raise `InvalidEventError` naming the
    offending path (e.g. `details.cart.items[2].price`)."""
    kind = type(value)
    if kind is str:
        return check_text(value, path)
    if kind is bool or value is None:
        return value
    if kind is int:
        return _check_int(value, path)
    if kind is float:
        if value != value or value in _INFINITIES:
            raise InvalidEventError(f"{path}: {value} is not valid JSON", field=path)
        return value
    if _depth > _MAX_DEPTH:
        raise InvalidEventError(
            f"{path}: nested more than {_MAX_DEPTH} levels", field=path
        )
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEventError(
                    f"{path}: keys must be strings, got {type(key).__name__} {key!r}",
                    field=path,
                )
            check_text(key, f"{path} key {key!r}")
            out[key] = normalize_json(item, f"{path}.{key}", _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [
            normalize_json(item, f"{path}[{i}]", _depth + 1)
            for i, item in enumerate(value)
        ]
    if isinstance(value, (str, int, float)):  # subclasses, e.g. IntEnum handled below
        if isinstance(value, enum.Enum):
            return normalize_json(value.value, path, _depth + 1)
        return normalize_json(kind.__mro__[-2](value), path, _depth + 1)
    return _convert(value, path)


def _plain(fields: dict[Any, Any]) -> bool:
    """Whether `fields` is the common case, needing no conversion: non-empty
    ASCII string keys, and str (ASCII, no NUL), bool, None, 64-bit int or
    finite float values. Anything else takes the slow path, which names it."""
    try:
        keys = "".join(fields)  # one C-level pass: str keys only
    except TypeError:
        return False
    if "" in fields or not keys.isascii() or "\x00" in keys:
        return False
    for value in fields.values():
        kind = type(value)
        if kind is str:
            if not value.isascii() or "\x00" in value:
                return False
        elif kind is float:
            if value - value != 0.0:  # NaN and the infinities give NaN
                return False
        elif kind is int:
            if not _INT_MIN <= value <= _INT_MAX:
                return False
        elif kind is not bool and value is not None:
            return False
    return True


def normalize_fields(
    fields: Mapping[str, Any] | None, path: str = "fields"
) -> dict[str, Any] | None:
    """Flat fields: string keys, scalar values only (after conversion)."""
    if fields is None:
        return None
    if type(fields) is dict and len(fields) <= MAX_FIELDS and _plain(fields):
        return dict(fields)
    if not isinstance(fields, Mapping):
        raise InvalidEventError(
            f"{path} must be a dict of field name to value, not {type(fields).__name__}",
            field=path,
        )
    if len(fields) > MAX_FIELDS:
        raise InvalidEventError(
            f"{path}: {len(fields)} fields; at most {MAX_FIELDS} per event",
            field=path,
        )
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not key:
            raise InvalidEventError(
                f"{path}: field names must be non-empty strings, got {key!r}",
                field=path,
            )
        check_text(key, f"{path} key {key!r}")
        where = f"{path}.{key}"
        kind = type(value)
        if kind is bool or value is None:
            out[key] = value
            continue
        if kind is str or kind is int or kind is float:
            out[key] = normalize_json(value, where)
            continue
        if isinstance(value, (Mapping, list, tuple, set, frozenset)):
            raise InvalidEventError(
                f"{where}: {kind.__name__} is not allowed; Bento fields must be flat "
                "(str, int, float, bool or None). Put nested data in details",
                field=where,
            )
        converted = normalize_json(value, where)
        if not isinstance(converted, _SCALARS):
            raise InvalidEventError(
                f"{where}: {kind.__name__} becomes nested JSON; fields must be flat",
                field=where,
            )
        out[key] = converted
    return out


_valid_types: dict[str, str] = {}
_VALID_TYPE_CACHE = 1024


def check_type(value: object) -> str:
    """`value` stripped if it is a usable event type, else raise. A few types
    make most events, so the checked ones are remembered (a bounded cache)."""
    if type(value) is str:
        hit = _valid_types.get(value)
        if hit is not None:
            return hit
    if not isinstance(value, str) or not value.strip():
        raise InvalidEventError(
            "type is required: a non-empty event name such as 'account.signup'",
            field="type",
        )
    if len(value) > MAX_TYPE_LENGTH:
        raise InvalidEventError(
            f"type is longer than {MAX_TYPE_LENGTH} characters", field="type"
        )
    check_text(value, "type")
    if len(_valid_types) >= _VALID_TYPE_CACHE:
        _valid_types.clear()
    checked = _valid_types[value] = value.strip()
    return checked


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
    ) -> Event:
        """Validate and normalise; raise `InvalidEventError` naming the field."""
        return cls(
            check_type(type),
            validate_email(email),
            None if fields is None else normalize_fields(fields),
            None if details is None else check_details(details),
            None if date is None else check_date(date),
        )

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


_now = time.time
_MILLIS = tuple(f".{i:03d}Z" for i in range(1000))
_last_second: tuple[int, str] = (-1, "")


def format_timestamp(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, e.g.
    `2026-11-26T23:55:21.123Z`. The formatted second is remembered: most events
    of a batch share it, and this runs once per delivered event."""
    global _last_second
    second = int(ts)
    cached = _last_second
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _last_second = cached
    return cached[1] + _MILLIS[int((ts - second) * 1000)]


def type_name(value: object) -> str:
    """The name of `value`'s type, for error messages."""
    return type(value).__name__


def check_details(details: object) -> dict[str, Any]:
    """`details` as plain JSON (a dict), or raise naming the offending path."""
    if not isinstance(details, Mapping):
        raise InvalidEventError(
            f"details must be a dict, not {type_name(details)}", field="details"
        )
    checked: dict[str, Any] = normalize_json(details, "details")
    return checked


def check_date(value: object) -> str:
    """A `date` as Bento's ISO 8601 UTC text; naive datetimes are taken as UTC.
    A date more than `MAX_FUTURE` ahead of this host's clock is refused."""
    if isinstance(value, (dt.datetime, dt.date)):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEventError(
                f"date is not an ISO 8601 timestamp: {value[:40]!r}", field="date"
            ) from None
    else:
        raise InvalidEventError(
            f"date must be a datetime, date or ISO 8601 string, not {type_name(value)}",
            field="date",
        )
    try:
        text = format_date(moment)
    except (OverflowError, ValueError):  # e.g. year 1 shifted before year 1
        raise InvalidEventError(
            f"date {value!s:.40} cannot be expressed in UTC", field="date"
        ) from None
    stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    if stamp - _now() > MAX_FUTURE.total_seconds():
        raise InvalidEventError(
            f"date {text} is more than a day in the future", field="date"
        )
    return text


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
    if not isinstance(key, (str, int)) or isinstance(key, bool) or key == "":
        raise InvalidEventError(
            "details.unique.key must be a non-empty order id (str or int)",
            field="details.unique.key",
        )
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
        raise InvalidEventError(
            "details.value.amount must be an integer number of cents "
            f"(e.g. 1999 for 19.99), not {amount_cents!r}",
            field="details.value.amount",
        )
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise InvalidEventError(
            f"details.value.currency must be a 3-letter ISO code such as 'USD', "
            f"not {currency!r}",
            field="details.value.currency",
        )
    body: dict[str, Any] = dict(details or {})
    body["unique"] = {"key": key}
    body["value"] = {"amount": amount_cents, "currency": currency.upper()}
    if cart is not None:
        body["cart"] = cart
    return Event.build("$purchase", email=email, fields=fields, details=body, date=date)


def _tag_event(kind: str, email: str, tag_name: str) -> Event:
    if not isinstance(tag_name, str) or not tag_name.strip():
        raise InvalidEventError(
            "details.tag must be a non-empty tag name", field="details.tag"
        )
    return Event.build(kind, email=email, details={"tag": tag_name.strip()})


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
    if not fields:
        raise InvalidEventError(
            "fields must name at least one field to update", field="fields"
        )
    return Event.build("$update_fields", email=email, fields=fields)
