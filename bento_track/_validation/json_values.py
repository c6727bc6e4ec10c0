"""`details` and any nested value as plain JSON types, checked while the
walk spends a size budget: an event far over the limit of one request is
refused as soon as that is known, naming the path of the offending value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import sys
import uuid
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Any, NoReturn

import orjson

from ..errors import InvalidEventError
from .dates import format_date
from .text import check_text, shown, type_name, unreadable

__all__ = [
    "EVENT_FRAME",
    "INT_MAX",
    "INT_MIN",
    "JSONValue",
    "OversizeEventError",
    "check_details",
    "normalize_json",
    "scan_details",
    "size_floor",
]

JSONValue = (
    Any  # str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]
)

_MAX_DEPTH = 32
# JSON numbers Bento (and orjson) can hold: 64-bit integers
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
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


def _check_int(value: int, path: str) -> int:
    if INT_MIN <= value <= INT_MAX:
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
        raise unreadable(path, value, exc) from None


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
                    f"{shown(key)}",
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
