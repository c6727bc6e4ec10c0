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
import sys
import time
import uuid
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Any, NoReturn

import orjson

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
#: the bytes every encoded event takes beyond its type, email, fields and
#: details: `{"type":"","email":"","date":"2026-01-01T00:00:00.000Z"}`
EVENT_FRAME = 56
#: containers of at least this many items are measured whole by the C encoder
#: before they are walked (when the event has a size limit): a big container
#: of small values is told oversize in a few milliseconds, not after a walk
_MEASURE_AT = 256
_MEASURE_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


class OversizeEventError(InvalidEventError):
    """An event known, while it is validated, to be larger encoded than one
    request may carry (`max_batch_bytes` less the request's envelope).

    Attributes:
        size: bytes counted when validation stopped (the event takes at least
            this many; validation does not read the rest).
        limit: the most bytes one event may take.
    """

    def __init__(self, message: str, *, field: str, size: int, limit: int) -> None:
        super().__init__(message, field=field)
        self.size = size
        self.limit = limit


class _Budget:
    """The bytes an event may still take, counted from below while validation
    walks it, so that an event far over the limit is refused as soon as that
    is known instead of after reading all of it. A container counts its
    smallest encoding (`"":0,` per entry, `0,` per item) when it is entered,
    each key and text its length: never more than the real encoding, so an
    event under the limit is never refused.

    It also notes whether every key met is in `known` (a scrubber's names
    known clean): one set lookup per key, so an event with none to scrub
    is not walked a second time by the scrubber."""

    __slots__ = ("known", "left", "limit", "measure", "type", "unknown")

    def __init__(
        self,
        limit: int | None,
        used: int = 0,
        type: str = "",
        known: AbstractSet[str] | None = None,
    ) -> None:
        #: whether big containers are measured (only when there is a limit)
        self.measure = limit is not None
        self.limit = sys.maxsize if limit is None else limit
        self.left = self.limit - used
        self.type = type
        self.known = known
        #: whether a key not in `known` was met
        self.unknown = False

    def exceeded(self, path: str) -> NoReturn:
        """Raise `OversizeEventError`: the event is known to be too large."""
        size = self.limit - self.left
        what = repr(self.type) if self.type else "the event"
        raise OversizeEventError(
            f"{what} is at least {size} bytes encoded (counted up to {path}); "
            f"one event may take at most {self.limit} (max_batch_bytes less the "
            "request envelope)",
            field=path,
            size=size,
            limit=self.limit,
        )


def _said(exc: BaseException) -> str:
    """An exception's text, even when its `__str__` raises."""
    try:
        text = str(exc)
    except Exception:
        return "<message unreadable>"
    return text if len(text) <= 200 else text[:200] + "..."


def _shown(value: object) -> str:
    """A short `repr` of a user value, even when its `__repr__` raises."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type_name(value)}>"
    return text if len(text) <= 80 else text[:80] + "..."


def _unreadable(path: str, value: object, exc: Exception) -> InvalidEventError:
    """A user object raised while it was read (its `items()`, `__len__`,
    `__str__`, `strip()`, ...): the event is invalid, naming where."""
    return InvalidEventError(
        f"{path}: reading the {type_name(value)} raised {type_name(exc)}: {_said(exc)}",
        field=path,
    )


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
    # `str.strip`, not `email.strip`: a subclass's methods are never called
    # (one that raises would escape as something else than an invalid event).
    value = str.strip(email)
    if not value:
        raise InvalidEventError(
            f"{field} is required and must not be empty", field=field
        )
    check_text(value, field)
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL.match(value):
        raise InvalidEventError(
            f"{field} is not a well-formed email address: {value[:80]!r}", field=field
        )
    if type(email) is str:
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
    # Python refuses to print an integer of more than 4,300 digits (a
    # ValueError): a huge one is described by its size instead.
    shown = (
        str(value)
        if value.bit_length() <= 256
        else (f"an integer of {value.bit_length()} bits")
    )
    raise InvalidEventError(
        f"{path}: {shown} does not fit in a 64-bit JSON number; send it as a string",
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


def _convert(value: Any, path: str, depth: int, budget: _Budget) -> JSONValue:
    """One non-native value to its JSON form, or an error naming `path`."""
    if isinstance(value, (dt.datetime, dt.date)):
        return format_date(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidEventError(
                f"{path}: {value} is not a finite number", field=path
            )
        number = int(value) if value == value.to_integral_value() else float(value)
        return _walk(number, path, depth, budget)
    if isinstance(value, uuid.UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _walk(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)},
            path,
            depth + 1,
            budget,
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
    return _walk(value, path, _depth, _Budget(None))


def _walk(value: Any, path: str, depth: int, budget: _Budget) -> JSONValue:
    """`normalize_json`, spending `budget` on the way."""
    kind = type(value)
    if kind is str:
        budget.left -= len(value) + 1  # quoted; the parent counted one byte
        if budget.left < 0:
            budget.exceeded(path)
        return check_text(value, path)
    if kind is bool or value is None:
        return value
    if kind is int:
        return _check_int(value, path)
    if kind is float:
        if value != value or value in _INFINITIES:
            raise InvalidEventError(f"{path}: {value} is not valid JSON", field=path)
        return value
    if depth > _MAX_DEPTH:
        raise InvalidEventError(
            f"{path}: nested more than {_MAX_DEPTH} levels", field=path
        )
    # Past the plain types, user objects run their own code (`items()`,
    # `__len__`, `__str__`, properties); whatever they raise makes the event
    # invalid, naming where, rather than escaping as some other error.
    try:
        if kind is dict or isinstance(value, Mapping):
            return _walk_mapping(value, path, depth, budget)
        if kind is list or kind is tuple or isinstance(value, (list, tuple)):
            return _walk_sequence(value, path, depth, budget)
        if isinstance(value, enum.Enum):
            return _walk(value.value, path, depth + 1, budget)
        # Subclasses of the plain types, taken as their plain value without
        # calling anything they override (`__str__`, `__int__`, ...).
        if isinstance(value, str):
            return _walk(str.__str__(value), path, depth, budget)
        if isinstance(value, int):
            return _check_int(int.__int__(value), path)
        if isinstance(value, float):
            return _walk(float.__float__(value), path, depth, budget)
        return _convert(value, path, depth, budget)
    except InvalidEventError:
        raise
    except Exception as exc:
        raise _unreadable(path, value, exc) from None


def _walk_mapping(
    value: Mapping[Any, Any], path: str, depth: int, budget: _Budget
) -> dict[str, JSONValue]:
    estimate = 5 * len(value)  # `"":0,` per entry
    budget.left -= estimate
    if budget.left < 0:
        budget.exceeded(path)
    inner = budget
    if estimate >= 5 * _MEASURE_AT and budget.measure:
        inner = _measured(value, estimate, path, budget)
    known = inner.known
    out: dict[str, JSONValue] = {}
    for key, item in value.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise InvalidEventError(
                    f"{path}: keys must be strings, got {type(key).__name__} "
                    f"{_shown(key)}",
                    field=path,
                )
            key = str.__str__(key)
        inner.left -= len(key)
        if "\x00" in key or not key.isascii():
            check_text(key, f"{path} key {key!r}")
        if known is not None and key not in known:
            inner.unknown = True
            known = None  # noted once
        out[key] = _walk(item, f"{path}.{key}", depth + 1, inner)
    if inner is not budget:
        budget.unknown = budget.unknown or inner.unknown
    elif budget.left < 0:
        budget.exceeded(path)
    return out


def _walk_sequence(
    value: list[Any] | tuple[Any, ...], path: str, depth: int, budget: _Budget
) -> list[JSONValue]:
    estimate = 2 * len(value)  # `0,` per item
    budget.left -= estimate
    if budget.left < 0:
        budget.exceeded(path)
    inner = budget
    if estimate >= 2 * _MEASURE_AT and budget.measure:
        inner = _measured(value, estimate, path, budget)
    out = [
        _walk(item, f"{path}[{i}]", depth + 1, inner) for i, item in enumerate(value)
    ]
    if inner is not budget:
        budget.unknown = budget.unknown or inner.unknown
    return out


def _no_json(value: object) -> int:
    """What `_measured` counts a value the C encoder does not know as: the
    smallest JSON value (its real form is at least as large)."""
    return 0


def _measured(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...],
    estimate: int,
    path: str,
    budget: _Budget,
) -> _Budget:
    """Measure a big container with the C encoder (milliseconds for a
    megabyte) and spend that instead of `estimate`; its items are then walked
    on an unlimited budget (they are counted). A container the encoder
    refuses (a huge integer, a lone surrogate, ...) is walked as counted so
    far, and the walk names the problem."""
    try:
        size = len(orjson.dumps(value, default=_no_json, option=_MEASURE_OPTIONS))
    except Exception:
        return budget
    # The container's parent counted one byte for it.
    budget.left += estimate - (size - 1)
    if budget.left < 0:
        budget.exceeded(path)
    return _Budget(None, known=budget.known)


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
    try:
        return _flat_fields(fields, path)
    except InvalidEventError:
        raise
    except Exception as exc:  # a user mapping's own code raised
        raise _unreadable(path, fields, exc) from None


def _flat_fields(fields: Mapping[Any, Any], path: str) -> dict[str, Any]:
    count = len(fields)
    if count > MAX_FIELDS:
        raise InvalidEventError(
            f"{path}: {count} fields; at most {MAX_FIELDS} per event",
            field=path,
        )
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not str.__len__(key):
            raise InvalidEventError(
                f"{path}: field names must be non-empty strings, got {_shown(key)}",
                field=path,
            )
        if type(key) is not str:
            key = str.__str__(key)
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
    if not isinstance(value, str) or not str.strip(value):
        raise InvalidEventError(
            "type is required: a non-empty event name such as 'account.signup'",
            field="type",
        )
    text = str.__str__(value)  # a subclass as its plain text
    if len(text) > MAX_TYPE_LENGTH:
        raise InvalidEventError(
            f"type is longer than {MAX_TYPE_LENGTH} characters", field="type"
        )
    check_text(text, "type")
    checked = text.strip()
    if type(value) is str:
        if len(_valid_types) >= _VALID_TYPE_CACHE:
            _valid_types.clear()
        _valid_types[value] = checked
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
        raise _unreadable(part, given.get(part, date), exc) from None
    return cls(kind, address, flat, checked, when), known


class _Replaced(Event):
    """An event `Event.replace` made: validated already."""

    __slots__ = ()


def is_validated(event: Event) -> bool:
    """Whether `event` was made by `Event.replace` (so it was validated when
    it was made, and a `before_send` hook's returning it needs no check)."""
    return type(event) is _Replaced


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


def size_floor(type: str, email: str, fields: Mapping[str, Any] | None) -> int:
    """The fewest bytes an event of this type, email and (checked) fields
    takes encoded, before its details: what `check_details` is told is used."""
    used = EVENT_FRAME + len(type) + len(email)
    if fields:
        used += 11 + 5 * len(fields)  # `,"fields":{` ... `}`, `"":0,` each
    return used


def check_details(
    details: object,
    *,
    max_bytes: int | None = None,
    used: int = 0,
    event_type: str = "",
) -> dict[str, Any]:
    """`details` as plain JSON (a dict), or raise naming the offending path.

    With `max_bytes`, raise `OversizeEventError` as soon as an event holding
    these details (`used` bytes without them, see `size_floor`) is known to
    take more than `max_bytes` encoded; `event_type` is named in the message.
    """
    checked, _ = scan_details(
        details, max_bytes=max_bytes, used=used, event_type=event_type
    )
    return checked


def scan_details(
    details: object,
    *,
    max_bytes: int | None = None,
    used: int = 0,
    event_type: str = "",
    known_keys: set[str] | None = None,
) -> tuple[dict[str, Any], bool]:
    """`check_details`, and whether every key met (at any depth) is in
    `known_keys` (False when that is None), noted on the way: one set
    lookup per key."""
    if not isinstance(details, Mapping):
        raise InvalidEventError(
            f"details must be a dict, not {type_name(details)}", field="details"
        )
    budget = _Budget(max_bytes, used, event_type, known_keys)
    checked: dict[str, Any] = _walk(details, "details", 0, budget)
    return checked, known_keys is not None and not budget.unknown


def check_date(value: object) -> str:
    """A `date` as Bento's ISO 8601 UTC text; naive datetimes are taken as UTC.
    A date more than `MAX_FUTURE` ahead of this host's clock is refused."""
    if isinstance(value, (dt.datetime, dt.date)):
        moment = value
    elif isinstance(value, str):
        text = str.strip(value)  # a subclass as its plain text
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEventError(
                f"date is not an ISO 8601 timestamp: {text[:40]!r}", field="date"
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
            f"(e.g. 1999 for 19.99), not {_shown(amount_cents)}",
            field="details.value.amount",
        )
    amount_cents = int.__int__(amount_cents)
    if not isinstance(currency, str) or not re.fullmatch(
        r"[A-Za-z]{3}", str.__str__(currency)
    ):
        raise InvalidEventError(
            f"details.value.currency must be a 3-letter ISO code such as 'USD', "
            f"not {_shown(currency)}",
            field="details.value.currency",
        )
    if details is None:
        body: dict[str, Any] = {}
    elif isinstance(details, Mapping):
        try:
            body = dict(details)
        except Exception as exc:  # a user mapping's own code raised
            raise _unreadable("details", details, exc) from None
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
