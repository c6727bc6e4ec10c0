"""An event's `date`: checked, and written as Bento's ISO 8601 UTC text."""

from __future__ import annotations

import datetime as dt
import time

from ..errors import InvalidEventError
from .text import type_name

__all__ = ["MAX_FUTURE", "check_date", "format_date", "format_timestamp"]

#: how far ahead of this host's clock a `date` may be (clock skew, not typos)
MAX_FUTURE = dt.timedelta(days=1)

_now = time.time


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
