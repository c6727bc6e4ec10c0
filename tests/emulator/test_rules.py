"""The emulator refuses what Bento refuses, over loopback HTTP: auth,
User-Agent, JSON, body rules and limits, and answers Bento's shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bento_track.emulator import EmulatorServer

from .conftest import bento_client

EVENT = {"type": "signup", "email": "ann@example.com"}
TAGGED_ANN = {
    "email": "ann@example.com",
    "first_name": "Ann",
    "tags": "vip",
    "plan": "pro",
}


def events_body(n: int, **extra: Any) -> dict[str, Any]:
    return {"events": [dict(EVENT, **extra) for _ in range(n)]}


def error_fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


# -- auth -----------------------------------------------------------------------


def test_valid_request_is_accepted_and_stored(http: httpx.Client, emulator) -> None:
    response = http.post("/batch/events", json=events_body(2))

    assert 200 == response.status_code
    assert {"results": 2, "failed": 0} == response.json()
    assert [EVENT, EVENT] == emulator.inspect.events()


def test_no_auth_is_401_text_plain(emulator: EmulatorServer) -> None:
    with bento_client(emulator, auth=None) as http:
        response = http.post("/batch/events", json=events_body(1))

    assert 401 == response.status_code
    assert response.headers["content-type"].startswith("text/plain")
    assert "HTTP Basic: Access denied." == response.text.strip()
    assert [] == emulator.inspect.events()


@pytest.mark.parametrize(
    "auth",
    [("pk_emulator", "sk_wrong"), ("pk_other", "sk_emulator"), ("pk_emulator", "")],
)
def test_wrong_keys_are_401(emulator: EmulatorServer, auth: tuple[str, str]) -> None:
    with bento_client(emulator, auth=auth) as http:
        response = http.get("/fetch/tags")

    assert 401 == response.status_code
    assert "sk_wrong" not in response.text


@pytest.mark.parametrize("header", ["Bearer abc", "Basic !!!not-base64", "Basic"])
def test_malformed_authorization_is_401(emulator: EmulatorServer, header: str) -> None:
    with bento_client(emulator, auth=None, headers={"Authorization": header}) as http:
        assert 401 == http.get("/fetch/tags").status_code


def test_missing_site_uuid_is_401(emulator: EmulatorServer) -> None:
    with bento_client(emulator, params={}) as http:
        response = http.post("/batch/events", json=events_body(1))

    assert 401 == response.status_code
    assert "site_uuid" in response.json()["error"]


def test_wrong_site_uuid_is_401(emulator: EmulatorServer) -> None:
    with bento_client(emulator, params={"site_uuid": "other-site"}) as http:
        assert 401 == http.get("/fetch/tags").status_code


def test_site_uuid_in_the_body_is_accepted(emulator: EmulatorServer) -> None:
    """The Node and PHP SDKs send it in the JSON body only."""
    with bento_client(emulator, params={}) as http:
        body = dict(events_body(1), site_uuid=emulator.site_uuid)
        assert 200 == http.post("/batch/events", json=body).status_code


# -- User-Agent -------------------------------------------------------------------


def test_missing_user_agent_is_403_cloudflare(emulator: EmulatorServer) -> None:
    with bento_client(emulator) as http:
        del http.headers["User-Agent"]
        response = http.post("/batch/events", json=events_body(1))

    assert 403 == response.status_code
    assert "error code: 1010" in response.text
    assert [] == emulator.inspect.events()


@pytest.mark.parametrize(
    "agent",
    [
        "",
        "python-httpx/0.28.1",
        "python-requests/2.32",
        "Python-urllib/3.11",
        "aiohttp/3.9",
        "Go-http-client/1.1",
        "curl/8.0",
        "Wget/1.21",
        "node-fetch/1.0",
        "axios/1.6",
        "okhttp/4.12",
        "Java/17",
    ],
)
def test_generic_user_agents_are_403(emulator: EmulatorServer, agent: str) -> None:
    with bento_client(emulator, headers={"User-Agent": agent}) as http:
        assert 403 == http.get("/fetch/tags").status_code


def test_a_real_app_name_passes(emulator: EmulatorServer) -> None:
    with bento_client(emulator, headers={"User-Agent": "AcmeCRM/1.0"}) as http:
        assert 200 == http.get("/fetch/tags").status_code


# -- JSON, routing ------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"events"', b"\xff\xfe"])
def test_invalid_json_is_400(http: httpx.Client, raw: bytes) -> None:
    response = http.post(
        "/batch/events", content=raw, headers={"Content-Type": "application/json"}
    )

    assert 400 == response.status_code
    assert {"error": "Invalid JSON"} == response.json()


def test_unknown_path_is_404_and_wrong_method_405(http: httpx.Client) -> None:
    assert 404 == http.get("/batch/nothing").status_code
    wrong = http.get("/batch/events")
    assert 405 == wrong.status_code
    assert "POST" == wrong.headers["allow"]


# -- /batch/events ----------------------------------------------------------------------


def test_empty_events_is_400(http: httpx.Client, emulator) -> None:
    response = http.post("/batch/events", json={"events": []})

    assert 400 == response.status_code
    assert ["events"] == error_fields(response)


def test_missing_events_key_is_400(http: httpx.Client) -> None:
    assert 400 == http.post("/batch/events", json={"event": [EVENT]}).status_code


def test_1000_events_pass_and_1001_are_400(http: httpx.Client, emulator) -> None:
    assert 200 == http.post("/batch/events", json=events_body(1000)).status_code
    response = http.post("/batch/events", json=events_body(1001))

    assert 400 == response.status_code
    assert 1000 == len(emulator.inspect.events())


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"email": "a@example.com"}, "events[1].type"),
        ({"type": "", "email": "a@example.com"}, "events[1].type"),
        ({"type": 7, "email": "a@example.com"}, "events[1].type"),
        ({"type": "t"}, "events[1].email"),
        ({"type": "t", "email": "not-an-email"}, "events[1].email"),
        ({"type": "t", "email": "a@b"}, "events[1].email"),
        (
            {"type": "t", "email": "a@example.com", "fields": {"x": {"y": 1}}},
            "events[1].fields.x",
        ),
        (
            {"type": "t", "email": "a@example.com", "fields": {"x": [1]}},
            "events[1].fields.x",
        ),
        ({"type": "t", "email": "a@example.com", "fields": [1]}, "events[1].fields"),
        ({"type": "t", "email": "a@example.com", "details": [1]}, "events[1].details"),
        (
            {"type": "t", "email": "a@example.com", "date": "yesterday"},
            "events[1].date",
        ),
        ({"type": "t", "email": "a@example.com", "date": 1700000000}, "events[1].date"),
        ("just a string", "events[1]"),
    ],
)
def test_invalid_event_refuses_the_whole_batch(
    http: httpx.Client, emulator, event: Any, field: str
) -> None:
    response = http.post("/batch/events", json={"events": [EVENT, event]})

    assert 400 == response.status_code
    assert field in error_fields(response)
    assert all(isinstance(e["message"], str) for e in response.json()["errors"])
    assert [] == emulator.inspect.events()


def test_optional_event_keys_and_nulls_are_accepted(
    http: httpx.Client, emulator
) -> None:
    event = {
        "type": "$purchase",
        "email": "ann@example.com",
        "fields": {"plan": "pro", "seats": 3, "vip": True, "note": None},
        "details": {"cart": {"items": [{"sku": "a", "qty": 2}]}},
        "date": "2024-01-02T03:04:05.678Z",
    }
    nulls = {"type": "t", "email": "bob@example.com", "fields": None, "details": None}
    day = {"type": "t", "email": "bob@example.com", "date": "2024-01-02"}

    response = http.post("/batch/events", json={"events": [event, nulls, day]})

    assert 200 == response.status_code
    assert [event, nulls, day] == emulator.inspect.events()


def test_events_carry_request_id_and_received_time(
    http: httpx.Client, emulator
) -> None:
    http.post("/batch/events", json=events_body(2))
    http.post("/batch/events", json=events_body(1))

    stored = emulator.inspect.events(meta=True)
    assert [1, 1, 2] == [e["request_id"] - stored[0]["request_id"] + 1 for e in stored]
    assert all(e["received_at"].endswith("+00:00") for e in stored)
    assert EVENT == stored[0]["data"]


def test_events_apply_to_subscribers(http: httpx.Client, emulator) -> None:
    events = [
        {"type": "signup", "email": "Ann@Example.com", "fields": {"plan": "free"}},
        {"type": "upgrade", "email": "ann@example.com", "fields": {"plan": "pro"}},
        {"type": "$tag", "email": "ann@example.com", "details": {"tag": "vip"}},
        {"type": "$tag", "email": "ann@example.com", "details": {"tag": "beta"}},
        {"type": "$remove_tag", "email": "ann@example.com", "details": {"tag": "beta"}},
        {"type": "$unsubscribe", "email": "ann@example.com"},
    ]
    assert 200 == http.post("/batch/events", json={"events": events}).status_code

    [ann] = emulator.inspect.subscribers()
    assert "ann@example.com" == ann["email"]
    assert {"plan": "pro"} == ann["fields"]
    assert ["vip"] == ann["tags"]
    assert ann["unsubscribed_at"] is not None
    assert ["vip", "beta"] == [t["attributes"]["name"] for t in emulator.inspect.tags()]

    http.post(
        "/batch/events",
        json={"events": [{"type": "$subscribe", "email": "ann@example.com"}]},
    )
    assert emulator.inspect.subscribers()[0]["unsubscribed_at"] is None


# -- /batch/subscribers -------------------------------------------------------------------


def test_subscribers_upsert(http: httpx.Client, emulator) -> None:
    rows = [
        {"email": "ann@example.com", "first_name": "Ann", "tags": "a,b", "plan": "pro"},
        {"email": "bob@example.com", "tags": ["x"]},
    ]
    response = http.post("/batch/subscribers", json={"subscribers": rows})
    again = http.post(
        "/batch/subscribers",
        json={
            "subscribers": [
                {"email": "ann@example.com", "remove_tags": "a", "seats": 2}
            ]
        },
    )

    assert {"results": 2, "failed": 0} == response.json()
    assert 200 == again.status_code
    ann, bob = emulator.inspect.subscribers()
    assert ("Ann", ["b"], {"plan": "pro", "seats": 2}) == (
        ann["first_name"],
        ann["tags"],
        ann["fields"],
    )
    assert ["x"] == bob["tags"]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"first_name": "Ann"}, "subscribers[0].email"),
        ({"email": "nope"}, "subscribers[0].email"),
        (
            {"email": "a@example.com", "address": {"city": "x"}},
            "subscribers[0].address",
        ),
    ],
)
def test_invalid_subscriber_is_400(
    http: httpx.Client, emulator, row: Any, field: str
) -> None:
    response = http.post("/batch/subscribers", json={"subscribers": [row]})

    assert 400 == response.status_code
    assert [field] == error_fields(response)
    assert [] == emulator.inspect.subscribers()


def test_subscriber_limits(http: httpx.Client) -> None:
    many = [{"email": f"u{i}@example.com"} for i in range(1001)]
    assert 400 == http.post("/batch/subscribers", json={"subscribers": []}).status_code
    assert (
        400 == http.post("/batch/subscribers", json={"subscribers": many}).status_code
    )
    assert (
        200
        == http.post(
            "/batch/subscribers", json={"subscribers": many[:1000]}
        ).status_code
    )


# -- /batch/emails ------------------------------------------------------------------------

EMAIL = {
    "to": "ann@example.com",
    "from": "hello@example.com",  # the shared emulator's author
    "subject": "Hi",
    "html_body": "<p>Hi {{ name }}</p>",
    "transactional": True,
    "personalizations": {"name": "Ann"},
}


def test_emails_are_stored(http: httpx.Client, emulator) -> None:
    response = http.post("/batch/emails", json={"emails": [EMAIL] * 60})

    assert {"results": 60} == response.json()
    assert [EMAIL] * 60 == emulator.inspect.emails()


def test_more_than_60_emails_is_400(http: httpx.Client, emulator) -> None:
    response = http.post("/batch/emails", json={"emails": [EMAIL] * 61})

    assert 400 == response.status_code
    assert [] == emulator.inspect.emails()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": ""}, "emails[0].subject"),
        ({"html_body": None}, "emails[0].html_body"),
        ({"to": "nobody"}, "emails[0].to"),
        ({"transactional": "yes"}, "emails[0].transactional"),
        ({"personalizations": [1]}, "emails[0].personalizations"),
    ],
)
def test_invalid_email_is_400(
    http: httpx.Client, change: dict[str, Any], field: str
) -> None:
    response = http.post("/batch/emails", json={"emails": [dict(EMAIL, **change)]})

    assert 400 == response.status_code
    assert field in error_fields(response)


def test_unknown_author_is_422(http: httpx.Client, emulator) -> None:
    stranger = dict(EMAIL, **{"from": "stranger@example.com"})
    response = http.post("/batch/emails", json={"emails": [EMAIL, stranger]})

    assert 422 == response.status_code
    assert {"error": "Author not authorized to send on this account"} == response.json()
    assert [] == emulator.inspect.emails()


# -- /fetch ------------------------------------------------------------------------------


def test_tags_and_fields_create_and_list(http: httpx.Client, emulator) -> None:
    tag = http.post("/fetch/tags", json={"tag": {"name": "vip"}})
    field = http.post("/fetch/fields", json={"field": {"key": "plan_name"}})

    assert 201 == tag.status_code and 201 == field.status_code
    [listed_tag] = http.get("/fetch/tags").json()["data"]
    [listed_field] = http.get("/fetch/fields").json()["data"]
    assert listed_tag == tag.json()["data"]
    assert "tags" == listed_tag["type"]
    assert {"name", "created_at", "discarded_at", "site_id"} == set(
        listed_tag["attributes"]
    )
    assert emulator.site_uuid == listed_tag["attributes"]["site_id"]
    assert "visitors-fields" == listed_field["type"]
    assert {"name": "Plan Name", "key": "plan_name", "whitelisted": None} == {
        k: listed_field["attributes"][k] for k in ("name", "key", "whitelisted")
    }


def test_tag_and_field_need_a_name(http: httpx.Client) -> None:
    assert 400 == http.post("/fetch/tags", json={"tag": {}}).status_code
    assert 400 == http.post("/fetch/tags", json={}).status_code
    assert 400 == http.post("/fetch/fields", json={"field": {"key": " "}}).status_code


def test_fetch_subscriber(http: httpx.Client) -> None:
    assert {"data": None} == http.get(
        "/fetch/subscribers",
        params={"site_uuid": "emulator-site", "email": "ann@example.com"},
    ).json()
    created = http.post(
        "/fetch/subscribers", json={"subscriber": {"email": "ann@example.com"}}
    )
    assert 201 == created.status_code
    data = created.json()["data"]
    assert "visitors" == data["type"]
    attributes = data["attributes"]
    assert {"uuid", "email", "fields", "cached_tag_ids", "unsubscribed_at"} == set(
        attributes
    )

    by_uuid = http.get(
        "/fetch/subscribers",
        params={"site_uuid": "emulator-site", "uuid": attributes["uuid"]},
    )
    assert data == by_uuid.json()["data"]
    assert 400 == http.get("/fetch/subscribers").status_code
    assert (
        400
        == http.post(
            "/fetch/subscribers", json={"subscriber": {"email": "x"}}
        ).status_code
    )


def test_commands_apply_and_are_logged(http: httpx.Client, emulator) -> None:
    email = "ann@example.com"
    commands = [
        {"command": "add_tag", "email": email, "query": "vip"},
        {"command": "add_tag_via_event", "email": email, "query": "beta"},
        {"command": "remove_tag", "email": email, "query": "beta"},
        {
            "command": "add_field",
            "email": email,
            "query": {"key": "plan", "value": "pro"},
        },
        {"command": "add_field", "email": email, "query": {"key": "x", "value": 1}},
        {"command": "remove_field", "email": email, "query": "x"},
        {"command": "unsubscribe", "email": email},
        {"command": "change_email", "email": email, "query": "ann2@example.com"},
    ]
    response = http.post("/fetch/commands", json={"command": commands})
    single = http.post(
        "/fetch/commands",
        json={"command": {"command": "subscribe", "email": "bob@example.com"}},
    )

    assert {"results": 8} == response.json()
    assert {"results": 1} == single.json()
    assert [c["command"] for c in commands] + ["subscribe"] == [
        c["command"] for c in emulator.inspect.commands()
    ]
    people = {p["email"]: p for p in emulator.inspect.subscribers()}
    assert {"ann2@example.com", "bob@example.com"} == set(people)
    ann = people["ann2@example.com"]
    assert (["vip"], {"plan": "pro"}) == (ann["tags"], ann["fields"])
    assert ann["unsubscribed_at"] is not None


def _people(emulator: EmulatorServer) -> dict[str, dict[str, Any]]:
    return {p["email"]: p for p in emulator.inspect.subscribers()}


def _change_email(http: httpx.Client, old: str, new: str) -> httpx.Response:
    return http.post(
        "/fetch/commands",
        json={"command": [{"command": "change_email", "email": old, "query": new}]},
    )


@pytest.mark.parametrize("new", ["ann@example.com", "ANN@Example.com"])
def test_change_email_to_the_same_address_changes_nothing(
    http: httpx.Client, emulator, new: str
) -> None:
    http.post("/batch/subscribers", json={"subscribers": [TAGGED_ANN]})
    before = _people(emulator)

    response = _change_email(http, "ann@example.com", new)

    assert {"results": 1} == response.json()
    assert before == _people(emulator)  # same uuid, tags, fields: nothing lost
    assert "ann@example.com" in before
    assert ["change_email"] == [c["command"] for c in emulator.inspect.commands()]


def test_change_email_to_a_taken_address_leaves_both_subscribers(
    http: httpx.Client, emulator
) -> None:
    """Bento queues commands and keeps one subscriber per address; the
    emulator neither overwrites nor merges the subscriber already there."""
    bob = {"email": "bob@example.com", "first_name": "Bob", "tags": "buyer"}
    http.post("/batch/subscribers", json={"subscribers": [TAGGED_ANN, bob]})
    before = _people(emulator)

    response = _change_email(http, "ann@example.com", "BOB@example.com")

    assert {"results": 1} == response.json()  # queued, as Bento answers
    assert before == _people(emulator)
    assert {"ann@example.com", "bob@example.com"} == set(before)
    assert ["change_email"] == [c["command"] for c in emulator.inspect.commands()]


def test_change_email_keeps_the_subscriber(http: httpx.Client, emulator) -> None:
    http.post("/batch/subscribers", json={"subscribers": [TAGGED_ANN]})
    [ann] = emulator.inspect.subscribers()
    found = http.get("/fetch/subscribers", params={"email": "ann@example.com"})

    _change_email(http, "ann@example.com", "ann.new@example.com")

    moved = http.get("/fetch/subscribers", params={"email": "ann.new@example.com"})
    now = _people(emulator)["ann.new@example.com"]
    # The move is a change: `updated_at` (the inbox's "changed") moves on.
    assert now.pop("updated_at") >= ann.pop("updated_at")
    assert {**ann, "email": "ann.new@example.com"} == now
    assert found.json()["data"]["id"] == moved.json()["data"]["id"]
    assert {"data": None} == http.get(
        "/fetch/subscribers", params={"email": "ann@example.com"}
    ).json()


def test_change_email_of_an_unknown_subscriber_creates_it_at_the_new_address(
    http: httpx.Client, emulator
) -> None:
    _change_email(http, "nobody@example.com", "somebody@example.com")

    assert ["somebody@example.com"] == list(_people(emulator))


@pytest.mark.parametrize(
    "command",
    [
        {"command": "explode", "email": "a@example.com"},
        {"command": "add_tag", "email": "a@example.com"},
        {"command": "add_tag", "query": "vip"},
        {"command": "add_field", "email": "a@example.com", "query": {"key": "k"}},
        {"command": "change_email", "email": "a@example.com", "query": "nope"},
    ],
)
def test_invalid_command_is_400(
    http: httpx.Client, emulator, command: dict[str, Any]
) -> None:
    assert 400 == http.post("/fetch/commands", json={"command": [command]}).status_code
    assert [] == emulator.inspect.commands()


def test_more_than_100_commands_is_400(http: httpx.Client) -> None:
    command = {"command": "add_tag", "email": "a@example.com", "query": "t"}
    assert (
        400
        == http.post("/fetch/commands", json={"command": [command] * 101}).status_code
    )
    assert 400 == http.post("/fetch/commands", json={"command": []}).status_code
    assert (
        200
        == http.post("/fetch/commands", json={"command": [command] * 100}).status_code
    )


def test_experimental_validation(http: httpx.Client) -> None:
    query = {"site_uuid": "emulator-site", "email": "ann@example.com"}
    assert {"valid": True} == http.post("/experimental/validation", params=query).json()
    body = {"email": "not-an-address", "name": "Ann", "ip": "127.0.0.1"}
    assert {"valid": False} == http.post("/experimental/validation", json=body).json()
