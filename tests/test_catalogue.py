"""The bad-input catalogue (issue 10): every kind of bad event `track()` may be
given, run in both modes. Strict: `InvalidEventError` naming the field. Lenient
(the default): `track()` returns None, the event is counted as `invalid`, sent
on `event_dropped` with the message, and logged; the app goes on.

The README's "Bad input" table lists these same cases.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import bento_track
from bento_track import signals
from bento_track.errors import ConfigurationError, InvalidEventError


class Opaque:
    pass


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
        "non-empty strings",
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


@pytest.fixture
def make_client() -> Iterator:
    made: list[bento_track.Client] = []

    def make(strict: bool) -> bento_track.Client:
        client = bento_track.Client(disabled=True, environ={}, strict=strict)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(0.1)


def test_the_catalogue_holds_at_least_30_kinds() -> None:
    assert len(CATALOGUE) >= 30
    assert len({case[0] for case in CATALOGUE}) == len(CATALOGUE)


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
