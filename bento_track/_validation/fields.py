"""An event's `fields`: flat, string keys and scalar values only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidEventError
from .json_values import INT_MAX, INT_MIN, normalize_json
from .text import check_text, shown, unreadable

__all__ = ["MAX_FIELDS", "normalize_fields"]

#: `fields` is a subscriber's custom fields: a few dozen in real accounts
MAX_FIELDS = 1000
_SCALARS = (str, int, float, bool, type(None))


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
            if not INT_MIN <= value <= INT_MAX:
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
        raise unreadable(path, fields, exc) from None


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
                f"{path}: field names must be non-empty strings, got {shown(key)}",
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
