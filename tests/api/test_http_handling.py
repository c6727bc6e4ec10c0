"""HTTP handling of both clients, unit-tested with `httpx.MockTransport`:
headers, query, retries, `partial`, secrets. Delivery itself is proven against
the emulator in `test_against_emulator.py`."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bento_track._transport.http import USER_AGENT
from bento_track.api import AsyncBentoAPI, BentoAPI
from bento_track.config import Config
from bento_track.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnprocessableError,
)
from bento_track.models import BatchResult, Command

from .conftest import KINDS, SECRET, UNIT_SETTINGS, Sleeps

pytestmark = pytest.mark.parametrize("kind", KINDS)


def replies(
    *answers: httpx.Response | Exception,
) -> tuple[list[httpx.Request], Callable[..., Any]]:
    """A handler answering in order (the last answer repeats) and its request log."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return seen, handler


def ok(doc: Any = None) -> httpx.Response:
    return httpx.Response(200, json={"results": 1, "failed": 0} if doc is None else doc)


def test_every_request_has_auth_ua_json_and_site_uuid(kind: str, make_api: Any) -> None:
    """Basic auth, the library's User-Agent, JSON headers and `site_uuid` on each call."""
    seen, handler = replies(ok())
    api = make_api(kind, handler, **UNIT_SETTINGS)

    api.batch_events([{"type": "t", "email": "a@example.com"}])
    api.get_subscriber("a@example.com")

    post, get = seen
    expected_auth = "Basic " + base64.b64encode(f"pk_unit:{SECRET}".encode()).decode()
    assert expected_auth == post.headers["authorization"]
    assert USER_AGENT == post.headers["user-agent"]
    assert "application/json" == post.headers["content-type"]
    assert "/api/v1/batch/events" == post.url.path
    assert {"site_uuid": "site-unit"} == dict(post.url.params)
    assert {"site_uuid": "site-unit", "email": "a@example.com"} == dict(get.url.params)
    assert "/api/v1/fetch/subscribers" == get.url.path


def test_429_waits_retry_after_then_succeeds(
    kind: str, make_api: Any, sleeps: Sleeps
) -> None:
    """The wait honours Retry-After even when backoff would be shorter."""
    seen, handler = replies(
        httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"}),
        ok({"results": 1}),
    )
    api = make_api(kind, handler, **UNIT_SETTINGS)

    result = api.batch_events([{"type": "t", "email": "a@example.com"}])

    assert BatchResult(1, 0, 1) == result
    assert 2 == len(seen)
    assert [7.0] == sleeps


def test_5xx_exhausted_raises_server_error(
    kind: str, make_api: Any, sleeps: Sleeps
) -> None:
    """max_retries=2 means three attempts, two jittered exponential waits."""
    seen, handler = replies(httpx.Response(503, text="down"))
    api = make_api(kind, handler, max_retries=2, **UNIT_SETTINGS)

    with pytest.raises(ServerError) as info:
        api.get_tags()

    assert 3 == len(seen)
    assert [0.5, 1.0] == sleeps
    assert 503 == info.value.status


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (422, UnprocessableError),
    ],
)
def test_client_errors_are_never_retried(
    kind: str, make_api: Any, sleeps: Sleeps, status: int, error: type[APIError]
) -> None:
    """400/401/403/404/422 fail at once with the typed error."""
    seen, handler = replies(httpx.Response(status, json={"error": "no"}))
    api = make_api(kind, handler, **UNIT_SETTINGS)

    with pytest.raises(error) as info:
        api.create_tag("vip")

    assert 1 == len(seen)
    assert [] == sleeps
    assert status == info.value.status
    assert "no" in str(info.value)


def test_network_errors_are_retried(kind: str, make_api: Any, sleeps: Sleeps) -> None:
    """A dropped connection is retried, then reported as NetworkError."""
    seen, handler = replies(httpx.RemoteProtocolError("Server disconnected"), ok())
    api = make_api(kind, handler, **UNIT_SETTINGS)

    assert BatchResult(1) == api.post_events(
        b'{"events":[{"type":"t","email":"a@example.com"}]}'
    )
    assert 2 == len(seen)

    seen, handler = replies(httpx.ConnectError("refused"))
    api = make_api(kind, handler, max_retries=1, **UNIT_SETTINGS)
    with pytest.raises(NetworkError) as info:
        api.get_fields()
    assert "/api/v1/fetch/fields" == info.value.path


def test_post_events_with_no_retries_sends_once(
    kind: str, make_api: Any, sleeps: Sleeps
) -> None:
    """The delivery worker runs its own retries: retries=0 is exactly one request."""
    seen, handler = replies(httpx.Response(429, headers={"Retry-After": "3"}))
    api = make_api(kind, handler, **UNIT_SETTINGS)
    body = b'{"events":[{"type":"t","email":"a@example.com"}]}'

    with pytest.raises(RateLimitedError) as info:
        api.post_events(body, retries=0)

    assert 1 == len(seen)
    assert body == seen[0].content
    assert 3.0 == info.value.retry_after
    assert [] == sleeps


def test_failure_on_a_later_chunk_reports_partial(kind: str, make_api: Any) -> None:
    """Chunk 3 of 3 fails: the error's `partial` counts chunks 1 and 2."""
    seen, handler = replies(
        ok({"results": 1000}),
        ok({"results": 999, "failed": 1}),
        httpx.Response(
            400, json={"errors": [{"field": "email", "message": "is invalid"}]}
        ),
    )
    api = make_api(kind, handler, **UNIT_SETTINGS)

    with pytest.raises(BadRequestError) as info:
        api.import_subscribers([{"email": f"u{i}@example.com"} for i in range(2500)])

    assert BatchResult(1999, 1, 2) == info.value.partial  # type: ignore[attr-defined]
    assert 3 == len(seen)
    assert "email is invalid" in str(info.value)


def test_invalid_record_sends_nothing(kind: str, make_api: Any) -> None:
    """Validation of every record happens before the first request."""
    seen, handler = replies(ok())
    api = make_api(kind, handler, **UNIT_SETTINGS)
    rows: list[Any] = [{"email": f"u{i}@example.com"} for i in range(1500)] + [
        {"email": "bad"}
    ]

    with pytest.raises(ValueError, match=r"subscribers\[1500\]\.email"):
        api.import_subscribers(rows)

    assert [] == seen


def test_secret_never_in_repr_or_errors(kind: str, make_api: Any) -> None:
    """Even when the server echoes the secret or the Basic credential back."""
    basic = base64.b64encode(f"pk_unit:{SECRET}".encode()).decode()
    seen, handler = replies(
        httpx.Response(401, json={"error": f"bad key {SECRET}", "auth": basic}),
    )
    api = make_api(kind, handler, **UNIT_SETTINGS)

    with pytest.raises(AuthenticationError) as info:
        api.subscribe("a@example.com")

    error = info.value
    for text in (repr(api), str(error), repr(error), error.body, repr(api.config)):
        assert SECRET not in text
        assert basic not in text
    assert "bad key ***" in str(error)


def test_2xx_that_is_not_json_is_an_api_error(kind: str, make_api: Any) -> None:
    """A proxy's HTML page with a 200 is not mistaken for success."""
    seen, handler = replies(httpx.Response(200, text="<html>captive portal</html>"))
    api = make_api(kind, handler, **UNIT_SETTINGS)

    with pytest.raises(APIError, match="not JSON"):
        api.get_tags()


def test_commands_and_validation_bodies(kind: str, make_api: Any) -> None:
    """Command helpers post `{"command": [...]}`; validation sends query and body."""
    seen, handler = replies(ok({"results": 1}), ok({"valid": True}))
    api = make_api(kind, handler, **UNIT_SETTINGS)

    assert 1 == api.add_field("a@example.com", "plan", "pro").results
    assert api.validate_email("a@example.com", name="Ann") is True

    commands, validation = seen
    assert {
        "command": [Command.add_field("a@example.com", "plan", "pro").to_dict()]
    } == json.loads(commands.content)
    assert {"email": "a@example.com", "name": "Ann"} == json.loads(validation.content)
    assert "Ann" == validation.url.params["name"]


def test_settings_come_from_arguments_then_environment(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Missing settings raise ConfigurationError; config= and settings exclude each other."""
    for name in (
        "BENTO_SITE_UUID",
        "BENTO_PUBLISHABLE_KEY",
        "BENTO_SECRET_KEY",
        "BENTO_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    cls: Any = BentoAPI if kind == "sync" else AsyncBentoAPI

    with pytest.raises(ConfigurationError, match="BENTO_SITE_UUID"):
        cls()
    with pytest.raises(ConfigurationError, match="either config"):
        cls(config=Config.resolve(**UNIT_SETTINGS), site_uuid="x")
    with pytest.raises(ConfigurationError, match="max_retries"):
        cls(max_retries=-1, **UNIT_SETTINGS)
    monkeypatch.setenv("BENTO_SITE_UUID", "from-env")
    monkeypatch.setenv("BENTO_PUBLISHABLE_KEY", "pk_env")
    monkeypatch.setenv("BENTO_SECRET_KEY", "sk_env")
    api = cls(read_timeout=2.5)
    assert "from-env" == api.config.site_uuid
    assert 2.5 == api.config.read_timeout
    assert "sk_env" not in repr(api)
    if kind == "sync":
        api.close()
    else:
        asyncio.run(api.aclose())
