"""Pure building and parsing: models, input validation, request splitting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bento_track._transport import requests as R
from bento_track.errors import APIError, InvalidEventError, RateLimitedError
from bento_track.events import Event
from bento_track.models import (
    BatchResult,
    Command,
    CommandResult,
    Email,
    Field,
    Subscriber,
    Tag,
)


def body(request: R.Request) -> Any:
    assert request.body is not None
    return json.loads(request.body)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"results": 17, "failed": 2}, BatchResult(17, 2)),
        ({"results": 5}, BatchResult(5, 0)),
        ({"result": 3}, BatchResult(3, 0)),
        ({}, BatchResult(0, 0)),
        ([], BatchResult(0, 0)),
        ({"results": "many", "failed": None}, BatchResult(0, 0)),
    ],
)
def test_batch_result_parses_plural_singular_and_junk(
    doc: Any, expected: BatchResult
) -> None:
    """`results` or the older singular `result`; `failed` defaults to 0."""
    assert expected == BatchResult.from_json(doc)


def test_results_add_up_across_chunks() -> None:
    """Summing chunks adds results, failures and requests."""
    parts = [BatchResult(1000, 1), BatchResult(1000), BatchResult(500, 2)]
    total = sum(parts, BatchResult(0, 0, 0))

    assert BatchResult(2500, 3, 3) == total
    assert BatchResult(0, 0, 0) == sum([], BatchResult(0, 0, 0))
    assert CommandResult(3, 0, 2) == CommandResult(1) + CommandResult(2)


@pytest.mark.parametrize("doc", [{}, {"data": None}, {"data": {}}, None, {"other": 1}])
def test_missing_subscriber_is_none(doc: Any) -> None:
    """`{}`, `{"data": null}` or no data mean: no such subscriber."""
    assert R.parse_subscriber(doc) is None


def test_subscriber_from_bento_shape() -> None:
    """The `{"data": {"id", "type", "attributes"}}` shape becomes a Subscriber."""
    doc = {
        "data": {
            "id": "42",
            "type": "visitors",
            "attributes": {
                "uuid": "u-1",
                "email": "a@example.com",
                "fields": {"plan": "pro"},
                "cached_tag_ids": [1, "2"],
                "unsubscribed_at": None,
            },
        }
    }

    sub = R.parse_subscriber(doc)

    assert Subscriber("42", "u-1", "a@example.com", {"plan": "pro"}, ("1", "2")) == sub
    assert sub is not None and sub.subscribed


def test_tags_and_fields_parse() -> None:
    """Lists of JSON:API resources become Tag / Field objects."""
    tags = {
        "data": [
            {
                "id": 1,
                "type": "tags",
                "attributes": {"name": "vip", "created_at": "t", "discarded_at": None},
            }
        ]
    }
    fields = {
        "data": [
            {
                "id": "9",
                "attributes": {"key": "plan", "name": "Plan", "created_at": "t"},
            }
        ]
    }

    assert [Tag("1", "vip", "t", None)] == R.parse_tags(tags)
    assert [Field("9", "plan", "Plan", "t")] == R.parse_fields(fields)
    assert [] == R.parse_tags({"data": None})
    assert Tag("7", "b") == R.parse_created_tag(
        {
            "data": [
                {"id": 6, "attributes": {"name": "a"}},
                {"id": 7, "attributes": {"name": "b"}},
            ]
        },
        "b",
    )
    assert Tag("5", "x") == R.parse_created_tag(
        {"data": {"id": 5, "attributes": {"name": "x"}}}, "x"
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"to": "nope"}, "to"),
        ({"from_": ""}, "from"),
        ({"subject": "  "}, "subject"),
        ({"html_body": ""}, "html_body"),
        ({"personalizations": {"cart": {"items": 1}}}, "personalizations.cart"),
        ({"transactional": "yes"}, "transactional"),
    ],
)
def test_email_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    """Each bad part of an Email raises InvalidEventError naming it."""
    good = {
        "to": "a@example.com",
        "from_": "b@example.com",
        "subject": "Hi",
        "html_body": "<p>x</p>",
    }

    with pytest.raises(InvalidEventError) as info:
        Email(**{**good, **kwargs})

    assert field == info.value.field


def test_email_to_dict_and_from_mapping() -> None:
    """Bento's key is `from`; both spellings build the same email."""
    email = Email(
        "a@example.com", " b@example.com ", "Hi", "<p>{{ n }}</p>", True, {"n": 1}
    )

    assert {
        "to": "a@example.com",
        "from": "b@example.com",
        "subject": "Hi",
        "html_body": "<p>{{ n }}</p>",
        "transactional": True,
        "personalizations": {"n": 1},
    } == email.to_dict()
    assert email == Email.from_mapping(email.to_dict())
    with pytest.raises(InvalidEventError, match="unknown email key"):
        Email.from_mapping({**email.to_dict(), "cc": "c@example.com"})


def test_command_builders() -> None:
    """The typed builders produce Bento's command dicts."""
    assert {
        "command": "add_tag",
        "email": "a@example.com",
        "query": "vip",
    } == Command.add_tag("a@example.com", "vip").to_dict()
    assert {
        "command": "add_field",
        "email": "a@example.com",
        "query": {"key": "plan", "value": 3},
    } == Command.add_field("a@example.com", "plan", 3).to_dict()
    assert {"command": "subscribe", "email": "a@example.com"} == Command.subscribe(
        "a@example.com"
    ).to_dict()
    assert {
        "command": "change_email",
        "email": "a@example.com",
        "query": "b@example.com",
    } == Command.change_email("a@example.com", "b@example.com").to_dict()


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Command("explode", "a@example.com"), "command"),
        (lambda: Command.add_tag("bad", "vip"), "email"),
        (lambda: Command.add_tag("a@example.com", ""), "tag"),
        (lambda: Command.add_field("a@example.com", "k", {"nested": 1}), "value.k"),
        (lambda: Command.change_email("a@example.com", "nope"), "query"),
        (lambda: Command("subscribe", "a@example.com", "x"), "query"),
    ],
)
def test_command_validation(build: Any, field: str) -> None:
    """Malformed commands fail at the call site, naming the field."""
    with pytest.raises(InvalidEventError) as info:
        build()

    assert field == info.value.field


def test_events_split_into_requests_of_at_most_1000() -> None:
    """2,500 events become requests of 1,000, 1,000 and 500."""
    events = [Event.build("t", email=f"u{i}@example.com") for i in range(2500)]

    requests = R.events(events)

    assert [1000, 1000, 500] == [r.count for r in requests]
    assert [1000, 1000, 500] == [len(body(r)["events"]) for r in requests]
    assert {"/batch/events"} == {r.path for r in requests}
    assert [] == R.events([])


def test_split_limits_per_endpoint() -> None:
    """Emails go 60 per request, commands 100, subscribers 1,000."""
    email = Email("a@example.com", "b@example.com", "s", "b")

    assert [60, 60, 10] == [r.count for r in R.emails([email] * 130)]
    assert [100, 50] == [
        r.count for r in R.commands([Command.subscribe("a@example.com")] * 150)
    ]
    assert [1000, 1] == [
        r.count for r in R.subscribers([{"email": "a@example.com"}] * 1001)
    ]
    assert "command" in body(R.commands([Command.subscribe("a@example.com")])[0])


def test_event_mappings_are_validated_like_event_build() -> None:
    """Dicts are checked before anything is sent; errors say which event."""
    [request] = R.events(
        [{"type": "signup", "email": "a@example.com", "fields": {"plan": "pro"}}]
    )
    [event] = body(request)["events"]

    assert ("signup", {"plan": "pro"}) == (event["type"], event["fields"])
    with pytest.raises(InvalidEventError) as info:
        R.events(
            [
                {"type": "ok", "email": "a@example.com"},
                {"type": "x", "email": "a@example.com", "fields": {"a": [1]}},
            ]
        )
    assert "events[1].fields.a" == info.value.field
    with pytest.raises(InvalidEventError) as info:
        R.events([{"type": "x", "email": "a@example.com", "colour": "red"}])
    assert "events[0].colour" == info.value.field


def test_subscriber_rows_are_validated_and_flattened() -> None:
    """Email required; tag lists become comma-separated; nested values rejected."""
    row = R.subscriber_dict(
        {"email": " a@example.com", "first_name": "Ann", "tags": ["a", "b"]}, 0
    )
    sub = Subscriber("1", "u", "s@example.com", {"plan": "pro"})

    assert {"email": "a@example.com", "first_name": "Ann", "tags": "a,b"} == row
    assert {"email": "s@example.com", "plan": "pro"} == R.subscriber_dict(sub, 0)
    for bad, field in [
        ({"first_name": "x"}, "subscribers[3].email"),
        (
            {"email": "a@example.com", "address": {"city": "x"}},
            "subscribers[3].address",
        ),
        ({"email": "a@example.com", "tags": ["ok", ""]}, "subscribers[3].tags"),
        ("a@example.com", "subscribers[3]"),
    ]:
        with pytest.raises(InvalidEventError) as info:
            R.subscriber_dict(bad, 3)
        assert field == info.value.field


def test_get_subscriber_needs_exactly_one_key() -> None:
    """email xor uuid."""
    assert {"email": "a@example.com"} == R.get_subscriber("a@example.com", None).params
    assert {"uuid": "u-1"} == R.get_subscriber(None, "u-1").params
    for args in [(None, None), ("a@example.com", "u-1")]:
        with pytest.raises(InvalidEventError):
            R.get_subscriber(*args)


def test_retry_delay_policy() -> None:
    """Retry-After (clamped) wins over a shorter backoff; permanent errors give up."""
    limited = RateLimitedError("429", status=429, retry_after=7.0)
    hostile = RateLimitedError("429", status=429, retry_after=10_000.0)

    assert 7.0 == R.retry_delay(limited, 1, 3, lambda: 1.0)
    assert 120.0 == R.retry_delay(hostile, 1, 3, lambda: 1.0)
    assert 0.5 == R.retry_delay(RateLimitedError("429"), 1, 3, lambda: 1.0)
    assert 2.0 == R.retry_delay(RateLimitedError("429"), 3, 3, lambda: 1.0)
    assert R.retry_delay(RateLimitedError("429"), 4, 3, lambda: 1.0) is None
    assert R.retry_delay(APIError("400", status=400), 1, 3, lambda: 1.0) is None
