"""The bad-settings table: malformed settings, each rejected with an error
that names the setting and never shows the secret key; how settings are
resolved; how event values are normalised. (Bad events are the bad-input
table's, `test_catalogue.py`.)"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import pytest

from bento_track.config import Config
from bento_track.errors import ConfigurationError
from bento_track.events import Event, purchase

GOOD_ENV = {
    "BENTO_SITE_UUID": "site-123",
    "BENTO_PUBLISHABLE_KEY": "pk_live_abc",
    "BENTO_SECRET_KEY": "sk_live_supersecret",
}


def env(**changes: str | None) -> dict[str, str]:
    out = dict(GOOD_ENV)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


class Colour(enum.Enum):
    RED = "red"


BAD_SETTINGS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "no site uuid",
        {"environ": env(BENTO_SITE_UUID=None)},
        "site_uuid",
        "BENTO_SITE_UUID",
    ),
    (
        "no publishable key",
        {"environ": env(BENTO_PUBLISHABLE_KEY=None)},
        "publishable_key",
        "BENTO_PUBLISHABLE_KEY",
    ),
    (
        "no secret key",
        {"environ": env(BENTO_SECRET_KEY=None)},
        "secret_key",
        "BENTO_SECRET_KEY",
    ),
    (
        "empty secret key",
        {"environ": env(BENTO_SECRET_KEY="")},
        "secret_key",
        "BENTO_SECRET_KEY",
    ),
    (
        "key with a trailing newline",
        {"environ": env(BENTO_PUBLISHABLE_KEY="pk_abc\n")},
        "publishable_key",
        "malformed",
    ),
    (
        "quoted site uuid",
        {"environ": env(BENTO_SITE_UUID='"site"')},
        "site_uuid",
        "malformed",
    ),
    (
        "base url not a URL",
        {"environ": env(BENTO_BASE_URL="app.bentonow.com")},
        "base_url",
        "BENTO_BASE_URL",
    ),
    (
        "base url ftp",
        {"environ": env(BENTO_BASE_URL="ftp://example.com/api")},
        "base_url",
        "http(s)",
    ),
    (
        "plain http to a remote host",
        {"environ": env(BENTO_BASE_URL="http://bento.example.com/api/v1")},
        "base_url",
        "allow_insecure_http",
    ),
    (
        "credentials in the URL",
        {"environ": env(BENTO_BASE_URL="https://pk:sk@app.bentonow.com/api/v1")},
        "base_url",
        "credentials",
    ),
    (
        "bad port",
        {"environ": env(BENTO_BASE_URL="https://example.com:99999/api")},
        "base_url",
        "malformed",
    ),
    (
        "host httpx refuses",
        {"environ": env(BENTO_BASE_URL="https://ex\u00e4mple..com/api")},
        "base_url",
        "malformed",
    ),
    (
        "bad insecure flag",
        {"environ": env(BENTO_ALLOW_INSECURE_HTTP="maybe")},
        "allow_insecure_http",
        "BENTO_ALLOW_INSECURE_HTTP",
    ),
    ("zero timeout", {"environ": env(), "read_timeout": 0}, "read_timeout", "seconds"),
]


@pytest.mark.parametrize(
    ("kwargs", "setting", "text"),
    [case[1:] for case in BAD_SETTINGS],
    ids=[case[0] for case in BAD_SETTINGS],
)
def test_bad_setting_is_rejected_naming_it(
    kwargs: dict[str, Any], setting: str, text: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Config.resolve(**kwargs)

    assert info.value.setting == setting
    assert text in str(info.value)
    assert "sk_live_supersecret" not in str(info.value)


def test_settings_from_arguments_win_over_environment() -> None:
    config = Config.resolve(site_uuid="from-arg", environ=GOOD_ENV)

    assert config.site_uuid == "from-arg"
    assert config.publishable_key == "pk_live_abc"
    assert config.base_url == "https://app.bentonow.com/api/v1"


def test_plain_http_is_fine_to_loopback_and_when_allowed() -> None:
    local = Config.resolve(environ=env(BENTO_BASE_URL="http://127.0.0.1:8025/api/v1/"))
    allowed = Config.resolve(
        environ=env(
            BENTO_BASE_URL="http://bento.internal/api/v1", BENTO_ALLOW_INSECURE_HTTP="1"
        )
    )

    assert local.base_url == "http://127.0.0.1:8025/api/v1"
    assert allowed.base_url == "http://bento.internal/api/v1"


def test_secret_never_in_repr_and_redacted() -> None:
    config = Config.resolve(environ=GOOD_ENV)
    header = config.authorization

    assert "sk_live_supersecret" not in repr(config)
    assert "sk_live_supersecret" not in str(config)
    assert (
        config.redact(f"key sk_live_supersecret and {header}")
        == "key *** and Basic ***"
    )


def test_values_are_normalised_to_json() -> None:
    import decimal
    import uuid
    from dataclasses import dataclass

    @dataclass
    class Item:
        sku: str
        price: decimal.Decimal

    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    event = Event.build(
        "order",
        email=" Jesse@Example.com ",
        fields={
            "plan": Colour.RED,
            "joined": dt.date(2024, 1, 2),
            "n": decimal.Decimal("3"),
        },
        details={
            "id": uuid.UUID(int=1),
            "items": (Item("A1", decimal.Decimal("9.5")),),
        },
        date=when,
    )

    assert event.to_dict() == {
        "type": "order",
        "email": "Jesse@Example.com",
        "fields": {"plan": "red", "joined": "2024-01-02T00:00:00.000Z", "n": 3},
        "details": {
            "id": "00000000-0000-0000-0000-000000000001",
            "items": [{"sku": "A1", "price": 9.5}],
        },
        "date": "2024-05-01T10:00:00.000Z",
    }


def test_capture_time_is_sent_as_the_date_when_none_given() -> None:
    event = Event("t", "a@b.co", captured_at=1_700_000_000.25)

    assert event.to_dict()["date"] == "2023-11-14T22:13:20.250Z"


def test_fields_are_copied_so_later_mutation_does_not_leak() -> None:
    fields = {"plan": "pro"}
    event = Event.build("t", email="a@b.co", fields=fields)
    fields["plan"] = "free"

    assert event.fields == {"plan": "pro"}


def test_purchase_helper_shapes_details() -> None:
    event = purchase(
        "a@b.co", key="order-1", amount_cents=1999, currency="usd", cart={"items": []}
    )

    assert event.type == "$purchase"
    assert event.details == {
        "unique": {"key": "order-1"},
        "value": {"amount": 1999, "currency": "USD"},
        "cart": {"items": []},
    }
