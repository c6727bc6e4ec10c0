"""The bad-input table (issues 2 and 10): every kind of bad event `track()`
may be given, run in both modes, and built as an `Event` on its own. Strict:
`InvalidEventError` naming the field. Lenient (the default): `track()`
returns None, the event is counted as `invalid`, sent on `event_dropped`
with the message, and logged; the app goes on. `Event.build` raises the same
error (a `ValueError`) naming the same field; the event helpers (`purchase`,
`tag`, `update_fields`) check what they add.

The README's "Bad input" table lists these same cases.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest

import bento_track
from bento_track import signals
from bento_track.errors import ConfigurationError, InvalidEventError
from bento_track.events import (
    Event,
    OversizeEventError,
    purchase,
    tag,
    update_fields,
)


class Opaque:
    pass


class ItemsRaise(dict):  # type: ignore[type-arg]
    """A mapping whose `items()` raises (a broken ORM row, a lazy proxy)."""

    def items(self):
        raise RuntimeError("items() is broken")


class LenRaise(Mapping[str, Any]):
    """A mapping whose `__len__` raises."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        raise RuntimeError("__len__ is broken")


class ReprRaise:
    """An object whose `__repr__` and `__str__` raise (used as a dict key)."""

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ is broken")

    __str__ = __repr__


class StrRaise:
    """A value whose `__str__` raises."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class ExceptionStrRaise(Exception):
    """An exception whose text cannot be read."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class DateRaise(dt.datetime):
    """A datetime whose conversion to UTC raises."""

    def astimezone(self, tz: Any = None) -> Any:
        raise RuntimeError("astimezone() is broken")


@dataclasses.dataclass
class Lazy:
    """A dataclass whose field reads run code that raises."""

    name: str

    def __getattribute__(self, attr: str) -> Any:
        if attr == "name":
            raise RuntimeError("the field is broken")
        return super().__getattribute__(attr)


def _self_referencing() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def _deep(levels: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(levels):
        out = {"d": out}
    return out


OK = "u@example.com"

#: (case, track() keyword arguments, field named, text in the message)
CATALOGUE: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing email, no identity", dict(type="t"), "email", "required"),
    ("empty email", dict(type="t", email=""), "email", "required"),
    ("blank email", dict(type="t", email="   "), "email", "required"),
    ("malformed email", dict(type="t", email="jesse"), "email", "well-formed"),
    ("email without a domain dot", dict(type="t", email="a@b"), "email", "well-formed"),
    ("email with spaces", dict(type="t", email="a b@c.co"), "email", "well-formed"),
    (
        "over-long email",
        dict(type="t", email="a" * 250 + "@b.co"),
        "email",
        "well-formed",
    ),
    ("email not a string", dict(type="t", email=42), "email", "string"),
    ("email as bytes", dict(type="t", email=b"u@example.com"), "email", "string"),
    (
        "lone surrogate in email",
        dict(type="t", email="u\ud800@example.com"),
        "email",
        "surrogate",
    ),
    ("NUL in email", dict(type="t", email="u\x00@example.com"), "email", "NUL"),
    ("empty type", dict(type="", email=OK), "type", "required"),
    ("blank type", dict(type="  ", email=OK), "type", "required"),
    ("over-long type", dict(type="x" * 300, email=OK), "type", "longer"),
    ("type not a string", dict(type=7, email=OK), "type", "required"),
    ("type as bytes", dict(type=b"signup", email=OK), "type", "required"),
    (
        "lone surrogate in type",
        dict(type="sign\udc00up", email=OK),
        "type",
        "surrogate",
    ),
    ("NUL in type", dict(type="sign\x00up", email=OK), "type", "NUL"),
    (
        "nested dict in fields",
        dict(type="t", email=OK, fields={"plan": {"x": 1}}),
        "fields.plan",
        "flat",
    ),
    (
        "list in fields",
        dict(type="t", email=OK, fields={"tags": ["a"]}),
        "fields.tags",
        "flat",
    ),
    ("fields not a dict", dict(type="t", email=OK, fields=["a"]), "fields", "dict"),
    (
        "empty field name",
        dict(type="t", email=OK, fields={"": 1}),
        "fields",
        "non-empty",
    ),
    (
        "non-string field name",
        dict(type="t", email=OK, fields={1: "x"}),
        "fields",
        "field names must be non-empty strings",
    ),
    (
        "NaN in fields",
        dict(type="t", email=OK, fields={"score": float("nan")}),
        "fields.score",
        "not valid JSON",
    ),
    (
        "infinity in details",
        dict(type="t", email=OK, details={"x": float("inf")}),
        "details.x",
        "not valid JSON",
    ),
    (
        "minus infinity in fields",
        dict(type="t", email=OK, fields={"x": float("-inf")}),
        "fields.x",
        "not valid JSON",
    ),
    (
        "object that is not JSON",
        dict(type="t", email=OK, details={"o": Opaque()}),
        "details.o",
        "Opaque",
    ),
    (
        "object that is not JSON, deep in details",
        dict(type="t", email=OK, details={"cart": {"items": [Opaque()]}}),
        "details.cart.items[0]",
        "Opaque",
    ),
    (
        "bytes in details",
        dict(type="t", email=OK, details={"b": b"raw"}),
        "details.b",
        "bytes",
    ),
    (
        "bytes in fields",
        dict(type="t", email=OK, fields={"b": b"raw"}),
        "fields.b",
        "bytes",
    ),
    (
        "set in details",
        dict(type="t", email=OK, details={"s": {1, 2}}),
        "details.s",
        "set",
    ),
    (
        "lone surrogate in a details value",
        dict(type="t", email=OK, details={"m": "\ud800"}),
        "details.m",
        "surrogate",
    ),
    (
        "lone surrogate in a details key",
        dict(type="t", email=OK, details={"k\udfff": 1}),
        "details key",
        "surrogate",
    ),
    (
        "lone surrogate in a fields value",
        dict(type="t", email=OK, fields={"name": "\udbff"}),
        "fields.name",
        "surrogate",
    ),
    (
        "lone surrogate in a fields key",
        dict(type="t", email=OK, fields={"n\ud800": 1}),
        "fields key",
        "surrogate",
    ),
    (
        "NUL in a details value",
        dict(type="t", email=OK, details={"m": "a\x00b"}),
        "details.m",
        "NUL",
    ),
    (
        "non-string details key",
        dict(type="t", email=OK, details={1: "x"}),
        "details",
        "keys must be strings",
    ),
    ("details not a dict", dict(type="t", email=OK, details=[1, 2]), "details", "dict"),
    ("details a string", dict(type="t", email=OK, details="oops"), "details", "dict"),
    (
        "self-referencing details",
        dict(type="t", email=OK, details=_self_referencing()),
        "details",
        "nested more than",
    ),
    (
        "very deep details",
        dict(type="t", email=OK, details=_deep(100)),
        "details",
        "nested more than",
    ),
    (
        "integer beyond 64 bits",
        dict(type="t", email=OK, details={"n": 2**64}),
        "details.n",
        "64-bit",
    ),
    (
        "integer of 5,000 digits in details",
        dict(type="t", email=OK, details={"n": 10**5000}),
        "details.n",
        "64-bit",
    ),
    (
        "integer of 5,000 digits in fields",
        dict(type="t", email=OK, fields={"n": -(10**5000)}),
        "fields.n",
        "64-bit",
    ),
    (
        "Decimal beyond 64 bits",
        dict(type="t", email=OK, details={"d": Decimal("1e5000")}),
        "details.d",
        "64-bit",
    ),
    (
        "nested mapping whose items() raises",
        dict(type="t", email=OK, details={"row": ItemsRaise(a=1)}),
        "details.row",
        "items() is broken",
    ),
    (
        "details whose items() raises",
        dict(type="t", email=OK, details=ItemsRaise(a=1)),
        "details",
        "RuntimeError",
    ),
    (
        "fields whose items() raises",
        dict(type="t", email=OK, fields=ItemsRaise(a=1)),
        "fields",
        "items() is broken",
    ),
    (
        "nested mapping whose __len__ raises",
        dict(type="t", email=OK, details={"m": LenRaise()}),
        "details.m",
        "__len__ is broken",
    ),
    (
        "fields whose __len__ raises",
        dict(type="t", email=OK, fields=LenRaise()),
        "fields",
        "__len__ is broken",
    ),
    (
        "details key whose __repr__ raises",
        dict(type="t", email=OK, details={ReprRaise(): 1}),
        "details",
        "keys must be strings",
    ),
    (
        "field name whose __repr__ raises",
        dict(type="t", email=OK, fields={ReprRaise(): 1}),
        "fields",
        "non-empty strings",
    ),
    (
        "value whose __str__ raises",
        dict(type="t", email=OK, details={"s": StrRaise()}),
        "details.s",
        "StrRaise",
    ),
    (
        "dataclass whose field raises",
        dict(type="t", email=OK, details={"obj": Lazy("x")}),
        "details.obj",
        "the field is broken",
    ),
    (
        "date whose conversion raises",
        dict(type="t", email=OK, date=DateRaise(2024, 5, 1, tzinfo=dt.timezone.utc)),
        "date",
        "astimezone() is broken",
    ),
    (
        "10,000 fields",
        dict(type="t", email=OK, fields={f"f{i}": i for i in range(10_000)}),
        "fields",
        "at most 1000",
    ),
    (
        "date that is not ISO 8601",
        dict(type="t", email=OK, date="yesterday"),
        "date",
        "ISO 8601",
    ),
    (
        "date of the wrong type",
        dict(type="t", email=OK, date=1_700_000_000),
        "date",
        "datetime",
    ),
    (
        "date in the far future",
        dict(type="t", email=OK, date="2999-01-01T00:00:00Z"),
        "date",
        "future",
    ),
    (
        "date out of range in UTC",
        dict(
            type="t",
            email=OK,
            date=dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5))),
        ),
        "date",
        "UTC",
    ),
]


every_case = pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [case[1:] for case in CATALOGUE],
    ids=[case[0] for case in CATALOGUE],
)

#: cases whose error names a path below the field (the key, the level at
#: which nesting stopped)
NAMED_BELOW = {
    "lone surrogate in a details key",
    "lone surrogate in a fields key",
    "self-referencing details",
    "very deep details",
}

#: cases of `Event.build` alone (`track(email=None)` means "no email given":
#: the identity's, else "email is required")
EVENT_ONLY: list[tuple[str, dict[str, Any], str, str]] = [
    ("email None", dict(type="t", email=None), "email", "string"),
]

#: (case, a call of an event helper, field named, text in the message)
HELPER_CALLS: list[tuple[str, Any, str, str]] = [
    (
        "purchase amount as float",
        lambda: purchase(OK, key="o1", amount_cents=19.99, currency="USD"),
        "details.value.amount",
        "cents",
    ),
    (
        "purchase without key",
        lambda: purchase(OK, key="", amount_cents=100, currency="USD"),
        "details.unique.key",
        "order id",
    ),
    (
        "purchase bad currency",
        lambda: purchase(OK, key="o1", amount_cents=100, currency="dollars"),
        "details.value.currency",
        "ISO",
    ),
    ("tag without name", lambda: tag(OK, " "), "details.tag", "tag name"),
    (
        "update_fields with nothing",
        lambda: update_fields(OK, {}),
        "fields",
        "at least one",
    ),
]


@pytest.fixture
def make_client() -> Iterator:
    made: list[bento_track.Client] = []

    def make(strict: bool, **options: Any) -> bento_track.Client:
        client = bento_track.Client(disabled=True, environ={}, strict=strict, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(0.1)


def test_the_catalogue_holds_at_least_30_kinds() -> None:
    assert len(CATALOGUE) >= 30
    assert len({case[0] for case in CATALOGUE}) == len(CATALOGUE)


#: an `Event` is built with an email (not from an identity)
EVENTS = [case for case in CATALOGUE if "email" in case[1]] + EVENT_ONLY


@pytest.mark.parametrize(
    ("case", "kwargs", "field", "text"), EVENTS, ids=[case[0] for case in EVENTS]
)
def test_the_event_itself_is_refused_naming_the_field(case, kwargs, field, text):
    kwargs = dict(kwargs)
    with pytest.raises(InvalidEventError) as info:
        Event.build(kwargs.pop("type"), **kwargs)
    if case in NAMED_BELOW:
        assert info.value.field is not None and info.value.field.startswith(field)
    else:
        assert info.value.field == field
    assert text in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("build", "field", "text"),
    [case[1:] for case in HELPER_CALLS],
    ids=[case[0] for case in HELPER_CALLS],
)
def test_an_event_helper_refuses_what_it_adds_naming_the_field(
    build, field, text
) -> None:
    with pytest.raises(InvalidEventError) as info:
        build()
    assert info.value.field == field
    assert text in str(info.value)
    assert isinstance(info.value, ValueError)


@every_case
def test_strict_mode_raises_naming_the_field(make_client, kwargs, field, text) -> None:
    client = make_client(strict=True)
    with pytest.raises(InvalidEventError) as info:
        client.track(**kwargs)
    assert info.value.field is not None and info.value.field.startswith(field)
    assert text in str(info.value)
    assert client.stats().dropped == {}


@every_case
def test_lenient_mode_drops_counts_signals_and_logs(
    make_client, caplog, kwargs, field, text
) -> None:
    client = make_client(strict=False)
    seen: list[dict[str, Any]] = []

    def on_drop(sender, **kw):
        seen.append(kw)

    signals.event_dropped.connect(on_drop, sender=client)
    try:
        with caplog.at_level(logging.WARNING, logger="bento_track"):
            assert client.track(**kwargs) is None
    finally:
        signals.event_dropped.disconnect(on_drop)
    assert client.stats().dropped == {"invalid": 1}
    assert len(seen) == 1 and seen[0]["reason"] == "invalid" and seen[0]["events"] == []
    assert text in seen[0]["message"]
    assert seen[0]["error"].field.startswith(field)
    assert any(text in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)  # no traceback


class CountingDict(dict):  # type: ignore[type-arg]
    """A dict that counts the items validation reads from it."""

    read = 0

    def items(self):
        for pair in super().items():
            CountingDict.read += 1
            yield pair


def _million_keys() -> dict[str, Any]:
    CountingDict.read = 0
    return {"outer": CountingDict((f"k{i}", i) for i in range(1_000_000))}


def test_an_event_far_over_a_request_is_refused_before_it_is_read(
    make_client, caplog
) -> None:
    """A nested dict of a million keys (over 12 MB encoded, a request holds
    1 MiB): refused on entering it, without reading one of its items. Before
    this, the whole dict was walked first (640 ms in the caller's thread)."""
    details = _million_keys()
    strict = make_client(strict=True)
    with pytest.raises(OversizeEventError) as info:
        strict.track("big", email=OK, details=details)
    assert info.value.field == "details.outer"
    assert info.value.size > info.value.limit == strict.max_event_bytes
    assert "'big' is at least" in str(info.value)
    lenient = make_client(strict=False)
    with caplog.at_level(logging.WARNING, logger="bento_track"):
        started = time.perf_counter()
        assert lenient.track("big", email=OK, details=details) is None
        took = time.perf_counter() - started
    assert CountingDict.read == 0
    assert took < 0.05, f"{took * 1000:.1f} ms"  # measured: about 0.01 ms
    assert lenient.stats().dropped == {"oversize": 1}
    said = [r for r in caplog.records if "oversize" in r.getMessage()]
    assert len(said) == 1 and said[0].exc_info is None
    assert "'big' is at least" in said[0].getMessage()


@pytest.mark.parametrize(
    "details",
    [
        {f"key_{i}": i for i in range(150_000)},  # measured, not walked
        {"rows": [{"a": 1} for _ in range(300_000)]},
        {"blobs": ["x" * 1_000_000 for _ in range(20)]},
        {"blob": "x" * 20_000_000},
    ],
    ids=["150k keys", "300k small dicts", "20 strings of 1 MB", "a 20 MB string"],
)
def test_other_oversize_shapes_stop_early(make_client, details) -> None:
    client = make_client(strict=False)
    started = time.perf_counter()
    assert client.track("big", email=OK, details=details) is None
    took = time.perf_counter() - started
    assert client.stats().dropped == {"oversize": 1}
    assert took < 0.2, f"{took * 1000:.1f} ms"  # measured: 0.01 to 11 ms


SHAPES = {
    "one string": lambda n: {"blob": "x" * n},
    "small dicts": lambda n: {"rows": [{"k": "v" * 8} for _ in range(n)]},
    "many keys": lambda n: {f"k{i}": i for i in range(n)},
    "numbers": lambda n: {"nums": list(range(n))},
    "non-ASCII text": lambda n: {"t": ["é" * 10] * n},
}


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_an_event_that_fits_is_never_refused(make_client, shape) -> None:
    """The size is counted from below: an event whose encoding fits is never
    refused, however close to the limit; one refused is really over it."""
    from bento_track._delivery.encoding import encode_event

    client = make_client(strict=True, max_batch_bytes=16_384)
    limit = client.max_event_bytes

    def real_size(n: int) -> int:
        return len(encode_event(Event.build("t", email=OK, details=shape(n))))

    low, high = 1, 1
    while real_size(high) <= limit:
        high *= 2
    while high - low > 1:  # the largest n whose event fits
        middle = (low + high) // 2
        low, high = (middle, high) if real_size(middle) <= limit else (low, middle)
    assert real_size(low) <= limit < real_size(low + 1)
    for n in range(max(1, low - 3), low + 4):
        try:
            client.track("t", email=OK, details=shape(n))
        except OversizeEventError:
            assert real_size(n) > limit, n
        else:
            assert real_size(n) <= limit or n > low


def test_plain_type_subclasses_are_read_without_their_overrides(make_client) -> None:
    """A `str`, `int` or `float` subclass is taken as its plain value; nothing
    it overrides (`strip()`, `__str__`, `__int__`) is called, so an override
    that raises cannot break validation."""

    class Text(str):
        def strip(self, chars: Any = None) -> str:
            raise RuntimeError("strip() is broken")

        def __str__(self) -> str:
            raise RuntimeError("__str__ is broken")

    class Number(int):
        def __int__(self) -> int:
            raise RuntimeError("__int__ is broken")

    client = make_client(strict=True)
    event = client.track(
        Text(" signup "),
        email=Text(" u@example.com "),
        fields={Text("plan"): Text("pro")},
        details={Text("n"): Number(3), "when": Text("2024-05-01T00:00:00Z")},
        date=Text("2024-05-01T00:00:00Z"),
    )
    assert event is not None
    assert (event.type, event.email) == ("signup", "u@example.com")
    assert event.fields == {"plan": "pro"} and event.details == {
        "n": 3,
        "when": "2024-05-01T00:00:00Z",
    }
    for value in (event.type, event.email, *event.fields, *event.details):
        assert type(value) is str
    assert type(event.details["n"]) is int


def test_an_exception_whose_text_raises_is_still_summarised() -> None:
    from bento_track._capture.build import exception_summary

    assert exception_summary(ExceptionStrRaise()) == {
        "type": "tests.test_catalogue.ExceptionStrRaise",
        "message": "<message unreadable>",
    }


def test_dates_that_are_accepted(make_client) -> None:
    """Naive datetimes are taken as UTC; aware ones are converted; dates are
    midnight UTC; a date slightly ahead (clock skew) is fine."""
    client = make_client(strict=True)
    naive = client.track("t", email=OK, date=dt.datetime(2024, 5, 1, 12, 0))
    aware = client.track(
        "t",
        email=OK,
        date=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    )
    day = client.track("t", email=OK, date=dt.date(2024, 5, 1))
    soon = client.track(
        "t", email=OK, date=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    )
    assert naive is not None and naive.date == "2024-05-01T12:00:00.000Z"
    assert aware is not None and aware.date == "2024-05-01T10:00:00.000Z"
    assert day is not None and day.date == "2024-05-01T00:00:00.000Z"
    assert soon is not None


#: settings of the wrong type: always a ConfigurationError naming the setting
BAD_SETTINGS: list[tuple[str, dict[str, Any], str]] = [
    ("secret key not a string", dict(secret_key=123), "secret_key"),
    ("site uuid not a string", dict(site_uuid=["x"]), "site_uuid"),
    ("base url not a string", dict(base_url=7), "base_url"),
    ("batch size as text", dict(max_batch_size="10"), "max_batch_size"),
    ("batch size as bool", dict(max_batch_size=True), "max_batch_size"),
    ("flush interval as text", dict(flush_interval="5s"), "flush_interval"),
    ("NaN rate window", dict(rate_window=float("nan")), "rate_window"),
    ("strict as text", dict(strict="yes"), "strict"),
    ("insecure flag as text", dict(allow_insecure_http="no"), "allow_insecure_http"),
    ("unknown overflow", dict(overflow=1), "overflow"),
    ("read timeout as text", dict(read_timeout="10"), "read_timeout"),
]


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [case[1:] for case in BAD_SETTINGS],
    ids=[case[0] for case in BAD_SETTINGS],
)
def test_wrong_typed_settings_raise_configuration_error(kwargs, setting) -> None:
    base = dict(site_uuid="s", publishable_key="p", secret_key="sk_hidden")
    with pytest.raises(ConfigurationError) as info:
        bento_track.Client(**{**base, **kwargs})
    assert info.value.setting == setting
    assert "sk_hidden" not in str(info.value)


@pytest.mark.parametrize("timeout", ["x", -1, float("nan"), True])
def test_flush_and_shutdown_timeouts_are_checked(make_client, timeout) -> None:
    client = make_client(strict=False)
    with pytest.raises(ConfigurationError) as info:
        client.flush(timeout)
    assert info.value.setting == "timeout"
    with pytest.raises(ConfigurationError):
        client.shutdown(timeout)
    assert client.shutdown(0.1) == 0  # the bad call did not shut it down
