"""Both clients against the running emulator over loopback HTTP: every
endpoint, request splitting, and each error the API can answer with."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bento_track._transport.http import headers
from bento_track.api import AsyncBentoAPI
from bento_track.config import Config
from bento_track.errors import (
    AuthenticationError,
    BadRequestError,
    ForbiddenError,
    NetworkError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    UnprocessableError,
)
from bento_track.events import Event, dumps, purchase
from bento_track.models import BatchResult, Command, CommandResult, Email

from .conftest import KINDS, Sleeps

AUTHOR = "hello@example.com"  # an author the emulator knows


def posts(emulator: Any, suffix: str) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.inspect.requests()
        if r["method"] == "POST" and r["path"].endswith(suffix)
    ]


def statuses(emulator: Any) -> list[int]:
    return [int(r["status"]) for r in emulator.inspect.requests()]


@pytest.fixture(params=KINDS)
def api(request: pytest.FixtureRequest, emulator: Any, make_api: Any) -> Any:
    """A client of each kind, talking to the emulator."""
    return make_api(request.param, **emulator.client_kwargs())


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- success, every endpoint -----------------------------------------------------


def test_batch_events_are_stored(api: Any, emulator: Any) -> None:
    """Events and dicts alike arrive as Bento's JSON."""
    result = api.batch_events(
        [
            Event.build("signup", email="a@example.com", fields={"plan": "pro"}),
            {"type": "viewed", "email": "b@example.com", "details": {"page": "/"}},
            purchase("a@example.com", key="o-1", amount_cents=1999, currency="usd"),
        ]
    )

    stored = emulator.inspect.events()
    assert BatchResult(3, 0, 1) == result
    assert ["signup", "viewed", "$purchase"] == [e["type"] for e in stored]
    assert {"plan": "pro"} == stored[0]["fields"]
    assert {"amount": 1999, "currency": "USD"} == stored[2]["details"]["value"]


def test_post_events_sends_an_encoded_body(api: Any, emulator: Any) -> None:
    """The worker's low-level call: one request, the body as given."""
    body = dumps({"events": [Event.build("t", email="a@example.com").to_dict()] * 2})

    assert BatchResult(2, 0, 1) == api.post_events(body, retries=0)
    assert 2 == len(emulator.inspect.events())


def test_2500_subscribers_take_exactly_3_requests(api: Any, emulator: Any) -> None:
    """import_subscribers splits at 1,000."""
    rows = [
        {"email": f"u{i}@example.com", "first_name": f"U{i}", "tags": ["a", "b"]}
        for i in range(2500)
    ]

    result = api.import_subscribers(rows)

    assert BatchResult(2500, 0, 3) == result
    assert [1000, 1000, 500] == [
        r["count"] for r in posts(emulator, "/batch/subscribers")
    ]
    assert 2500 == len(emulator.inspect.subscribers())


def test_130_emails_take_exactly_3_requests(api: Any, emulator: Any) -> None:
    """send_emails splits at 60."""
    email = Email(
        "a@example.com",
        AUTHOR,
        "Hi",
        "<p>Hi {{ name }}</p>",
        personalizations={"name": "Ann"},
    )

    result = api.send_emails([email] * 129 + [email.to_dict()])

    assert BatchResult(130, 0, 3) == result
    assert [60, 60, 10] == [r["count"] for r in posts(emulator, "/batch/emails")]
    stored = emulator.inspect.emails()
    assert 130 == len(stored)
    assert {"name": "Ann"} == stored[0]["personalizations"]


def test_tags_and_fields(api: Any) -> None:
    """Create, then read back."""
    tag = api.create_tag("vip")
    field = api.create_field("plan")

    assert "vip" == tag.name and tag.id
    assert "plan" == field.key and field.id
    assert ["vip"] == [t.name for t in api.get_tags()]
    assert ["plan"] == [f.key for f in api.get_fields()]


def test_subscribers_create_get_and_missing(api: Any) -> None:
    """A missing subscriber is None; a created one can be read by email or uuid."""
    assert api.get_subscriber("nobody@example.com") is None

    created = api.create_subscriber("ann@example.com")
    by_email = api.get_subscriber("ann@example.com")
    by_uuid = api.get_subscriber(uuid=created.uuid)

    assert "ann@example.com" == created.email
    assert by_email is not None and by_email.uuid == created.uuid
    assert by_uuid is not None and by_uuid.email == "ann@example.com"


def test_commands(api: Any, emulator: Any) -> None:
    """Each command helper queues one command; run_commands splits at 100."""
    email = "ann@example.com"
    api.create_subscriber(email)

    results = [
        api.add_tag(email, "vip"),
        api.add_field(email, "plan", "pro"),
        api.remove_tag(email, "vip"),
        api.remove_field(email, "plan"),
        api.unsubscribe(email),
        api.subscribe(email),
        api.change_email(email, "ann2@example.com"),
    ]
    many = api.run_commands(
        [Command.add_tag("bob@example.com", f"t{i}") for i in range(150)]
    )

    assert [CommandResult(1, 0, 1)] * 7 == results
    assert CommandResult(150, 0, 2) == many
    assert [100, 50] == [r["count"] for r in posts(emulator, "/fetch/commands")][-2:]
    names = [c["command"] for c in emulator.inspect.commands()][:7]
    assert [
        "add_tag",
        "add_field",
        "remove_tag",
        "remove_field",
        "unsubscribe",
        "subscribe",
        "change_email",
    ] == names


def test_validate_email(api: Any) -> None:
    """`/experimental/validation` answers a bool."""
    assert api.validate_email("ann@example.com", name="Ann", ip="127.0.0.1") is True
    assert api.validate_email("not-an-address") is False


# -- errors ----------------------------------------------------------------------


def test_400_bad_batch_is_not_retried(api: Any, emulator: Any, sleeps: Sleeps) -> None:
    """An empty events array is a 400 at once."""
    with pytest.raises(BadRequestError) as info:
        api.post_events(b'{"events":[]}')

    assert 400 == info.value.status
    assert [400] == statuses(emulator)
    assert [] == sleeps


def test_401_wrong_key(kind: str, emulator: Any, make_api: Any) -> None:
    """A wrong secret is a 401, and the wrong secret is not in the error."""
    wrong = "sk_wrong_but_secret"
    api = make_api(kind, **{**emulator.client_kwargs(), "secret_key": wrong})

    with pytest.raises(AuthenticationError) as info:
        api.get_tags()

    assert 401 == info.value.status
    for text in (str(info.value), repr(info.value), info.value.body, repr(api)):
        assert wrong not in text


def test_403_is_not_retried(api: Any, emulator: Any, sleeps: Sleeps) -> None:
    """An injected 403 surfaces as ForbiddenError after one request."""
    emulator.inspect.fail_next(1, status=403)

    with pytest.raises(ForbiddenError):
        api.batch_events([{"type": "t", "email": "a@example.com"}])

    assert [403] == statuses(emulator)
    assert [] == sleeps


def test_generic_user_agent_gets_403_and_ours_does_not(emulator: Any) -> None:
    """The emulator's User-Agent rule, with raw httpx: the default UA is blocked."""
    config = Config.resolve(**emulator.client_kwargs())
    url = config.base_url + "/fetch/tags"
    params = {"site_uuid": config.site_uuid}
    generic = {k: v for k, v in headers(config).items() if k != "User-Agent"}

    with httpx.Client() as http:
        blocked = http.get(url, params=params, headers=generic)
        allowed = http.get(url, params=params, headers=headers(config))

    assert 403 == blocked.status_code
    assert 200 == allowed.status_code


def test_422_unknown_author(api: Any, emulator: Any) -> None:
    """An author Bento does not know is a business-rule error, not retried."""
    email = Email("a@example.com", "stranger@example.com", "Hi", "<p>x</p>")

    with pytest.raises(UnprocessableError) as info:
        api.send_emails([email])

    assert "author" in str(info.value).lower()
    assert [] == emulator.inspect.emails()
    assert BatchResult(0, 0, 0) == info.value.partial  # type: ignore[attr-defined]


def test_429_honours_retry_after_then_succeeds(
    api: Any, emulator: Any, sleeps: Sleeps
) -> None:
    """The injected sleep waits at least Retry-After, then the retry lands."""
    emulator.inspect.rate_limit_storm(1, retry_after=2)

    result = api.batch_events([{"type": "t", "email": "a@example.com"}])

    assert BatchResult(1) == result
    assert [429, 200] == statuses(emulator)
    assert 1 == len(sleeps) and sleeps[0] >= 2
    assert 1 == len(emulator.inspect.events())


def test_429_storm_outlasting_retries_raises_rate_limited(
    kind: str, emulator: Any, make_api: Any, sleeps: Sleeps
) -> None:
    """When every attempt is rate limited, RateLimitedError carries Retry-After."""
    api = make_api(kind, max_retries=2, **emulator.client_kwargs())
    emulator.inspect.rate_limit_storm(10, retry_after=3)

    with pytest.raises(RateLimitedError) as info:
        api.get_fields()

    assert 3.0 == info.value.retry_after
    assert [429, 429, 429] == statuses(emulator)
    assert 2 == len(sleeps) and min(sleeps) >= 3


def test_500_retried_then_succeeds(api: Any, emulator: Any, sleeps: Sleeps) -> None:
    """Two 500s, then success on the third attempt."""
    emulator.inspect.fail_next(2, status=500)

    assert BatchResult(1) == api.import_subscribers([{"email": "a@example.com"}])
    assert [500, 500, 200] == statuses(emulator)
    assert 2 == len(sleeps)


def test_500_exhausted_raises_server_error(
    kind: str, emulator: Any, make_api: Any, sleeps: Sleeps
) -> None:
    """max_retries=1: two 500s and the ServerError surfaces."""
    api = make_api(kind, max_retries=1, **emulator.client_kwargs())
    emulator.inspect.fail_next(5, status=500)

    with pytest.raises(ServerError) as info:
        api.import_subscribers([{"email": "a@example.com"}])

    assert 500 == info.value.status
    assert [500, 500] == statuses(emulator)
    assert 1 == len(sleeps)
    assert [] == emulator.inspect.subscribers()


def test_rejected_second_chunk_reports_partial(api: Any, emulator: Any) -> None:
    """Chunk 1 is accepted, chunk 2 is rejected: `partial` says 1,000 delivered."""
    emulator.inspect.reject_events(email="bad@example.com")
    events = [{"type": "t", "email": f"u{i}@example.com"} for i in range(1000)]
    events.append({"type": "t", "email": "bad@example.com"})

    with pytest.raises((BadRequestError, UnprocessableError)) as info:
        api.batch_events(events)

    assert BatchResult(1000, 0, 1) == info.value.partial  # type: ignore[attr-defined]
    assert 1000 == len(emulator.inspect.events())


def test_timeout_is_request_timeout_error(
    kind: str, emulator: Any, make_api: Any
) -> None:
    """A server slower than the read timeout raises RequestTimeoutError."""
    emulator.inspect.slow_next(1, 1.0)
    config = Config.resolve(**emulator.client_kwargs(), read_timeout=0.2)
    api = make_api(kind, config=config, max_retries=0)

    with pytest.raises(RequestTimeoutError) as info:
        api.get_tags()

    assert isinstance(info.value, TimeoutError)
    assert info.value.path.endswith("/fetch/tags")


def test_dropped_connection_is_network_error_then_retried(
    kind: str, emulator: Any, make_api: Any, sleeps: Sleeps
) -> None:
    """No retries: NetworkError. With retries: the next attempt succeeds."""
    no_retry = make_api(kind, max_retries=0, **emulator.client_kwargs())
    emulator.inspect.drop_next(1)
    with pytest.raises(NetworkError):
        no_retry.batch_events([{"type": "t", "email": "a@example.com"}])

    retrying = make_api(kind, **emulator.client_kwargs())
    emulator.inspect.drop_next(1)
    assert BatchResult(1) == retrying.batch_events(
        [{"type": "t", "email": "a@example.com"}]
    )
    assert 1 == len(sleeps)
    assert 1 == len(emulator.inspect.events())


# -- native async ------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_with_anyio(emulator: Any) -> None:
    """`async with` and awaited calls, with the real asyncio.sleep default."""
    async with AsyncBentoAPI(**emulator.client_kwargs()) as api:
        result = await api.batch_events(
            [{"type": "t", "email": "a@example.com"}] * 1001
        )
        tag = await api.create_tag("async")
        missing = await api.get_subscriber("nobody@example.com")

    assert BatchResult(1001, 0, 2) == result
    assert "async" == tag.name
    assert missing is None
    assert 1001 == len(emulator.inspect.events())
