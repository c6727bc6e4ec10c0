"""Issue 19: `before_send` on every capture path, against the emulator.

Each path (track, a built `$purchase` through `capture()`, the ASGI
middleware's rules, `capture=` and `track_exceptions=` under a real uvicorn,
the WSGI middleware's rules under wsgiref, the decorator, the log handler)
meets a hook that drops, changes, raises or returns junk, in both modes:
what arrives is exactly what the hook returned, what was dropped is counted
under its reason, and only the direct calls raise in strict mode.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import bento_track
from bento_track import BentoHandler, BentoMiddleware, BentoWSGIMiddleware, signals
from bento_track.events import Event, purchase
from bento_track.testing import use_default_client

from ..helpers import wait_until
from ..support.processes import in_forked_child
from .conftest import delivered, wsgiref_server

EMAIL = "ann@example.com"
HDR = {"x-user-email": EMAIL}
Make = Callable[..., bento_track.Client]


def by_header(info: Any) -> Any:
    return info.header("x-user-email")


# -- the servers: one app each for the module, delivering through the default
# client, which each test swaps for its own (so the hook is the test's) --------


class Broken(Exception):
    pass


async def go(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def fail(request: Request) -> PlainTextResponse:
    raise Broken("the view failed")


def _captured(info: Any) -> str | None:
    return "asgi.captured" if info.path == "/cap" else None


ASGI_APP = Starlette(
    routes=[
        Route("/go", go, methods=["POST"]),
        Route("/cap", go, methods=["POST"]),
        Route("/fail", fail, methods=["POST"]),
    ]
)
ASGI_APP.add_middleware(
    BentoMiddleware,
    events={"POST /go": "asgi.rule"},
    capture=_captured,
    track_exceptions="asgi.failed",
    identify=by_header,
)


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


WSGI_APP = BentoWSGIMiddleware(
    wsgi_app, events={"POST /go": "wsgi.rule"}, identify=by_header
)


@contextlib.contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """`app` under a real uvicorn on loopback, in a thread; yields its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", ws="none", log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started and server.servers)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def asgi_url() -> Iterator[str]:
    with uvicorn_server(ASGI_APP) as url:
        yield url


@pytest.fixture(scope="module")
def wsgi_url() -> Iterator[str]:
    with wsgiref_server(WSGI_APP) as url:
        yield url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


# -- the paths ----------------------------------------------------------------


def via_track(client: bento_track.Client, urls: Any) -> None:
    client.track("app.track", email=EMAIL, details={"password": "hunter2", "n": 1})


def via_purchase(client: bento_track.Client, urls: Any) -> None:
    client.capture(purchase(EMAIL, key="order-1", amount_cents=1999, currency="usd"))


def via_asgi_rule(client: bento_track.Client, urls: Any) -> None:
    assert urls.http.post(f"{urls.asgi}/go", headers=HDR).status_code == 200


def via_asgi_capture(client: bento_track.Client, urls: Any) -> None:
    assert urls.http.post(f"{urls.asgi}/cap", headers=HDR).status_code == 200


def via_asgi_exception(client: bento_track.Client, urls: Any) -> None:
    assert urls.http.post(f"{urls.asgi}/fail", headers=HDR).status_code == 500


def via_wsgi_rule(client: bento_track.Client, urls: Any) -> None:
    assert urls.http.post(f"{urls.wsgi}/go", headers=HDR).status_code == 200


def via_decorator(client: bento_track.Client, urls: Any) -> None:
    @bento_track.track_event(
        "app.decorated", email=EMAIL, details={"token": "t0k"}, client=client
    )
    def work() -> int:
        return 1

    assert work() == 1


def via_log_handler(client: bento_track.Client, urls: Any) -> None:
    log = logging.getLogger("tests.capture.before_send")
    handler = BentoHandler(client=client)
    log.addHandler(handler)
    try:
        log.warning("hello", extra={"bento": {"type": "app.logged", "email": EMAIL}})
    finally:
        log.removeHandler(handler)


#: path name -> (trigger, whether it is a direct call that strict mode raises from)
PATHS: dict[str, tuple[Callable[[bento_track.Client, Any], None], bool]] = {
    "track": (via_track, True),
    "purchase": (via_purchase, True),
    "asgi rule": (via_asgi_rule, False),
    "asgi capture=": (via_asgi_capture, False),
    "asgi track_exceptions=": (via_asgi_exception, False),
    "wsgi rule": (via_wsgi_rule, False),
    "decorator": (via_decorator, False),
    "log handler": (via_log_handler, False),
}


class Hook:
    """A `before_send` that does `kind` to every event, and remembers what it
    was given and what it returned."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.given: list[Event] = []
        self.returned: list[Event] = []

    def __call__(self, event: Event) -> Any:
        self.given.append(event)
        if self.kind == "drop":
            return None
        if self.kind == "raise":
            raise RuntimeError("the hook is broken")
        if self.kind == "junk":
            return {"type": event.type}
        changed = event.replace(
            fields={"release": "2026.12"},
            details={**(event.details or {}), "hooked": True},
        )
        self.returned.append(changed)
        return changed


class Urls:
    def __init__(self, asgi: str, wsgi: str, http: httpx.Client) -> None:
        self.asgi = asgi
        self.wsgi = wsgi
        self.http = http


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("kind", ["drop", "change", "raise", "junk"])
@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_meets_the_hook(
    emulator: Any,
    delivering: Make,
    asgi_url: str,
    wsgi_url: str,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    path: str,
    kind: str,
    strict: bool,
) -> None:
    trigger, direct = PATHS[path]
    hook = Hook(kind)
    client = delivering(before_send=hook, strict=strict)
    dropped: list[dict[str, Any]] = []

    def on_drop(sender: Any, **kwargs: Any) -> None:
        dropped.append(kwargs)

    raises = strict and direct and kind in ("raise", "junk")
    with (
        use_default_client(client),
        signals.event_dropped.connected_to(on_drop, sender=client),
        caplog.at_level(logging.DEBUG, logger="bento_track"),
    ):
        if raises:
            error = RuntimeError if kind == "raise" else TypeError
            with pytest.raises(error, match="hook is broken|returned dict"):
                trigger(client, Urls(asgi_url, wsgi_url, http))
        else:
            trigger(client, Urls(asgi_url, wsgi_url, http))
        # A middleware's event is captured as the response ends, which the
        # HTTP client may see first.
        wait_until(lambda: len(hook.given) == 1)
        arrived = delivered(emulator, client)

    assert arrived == [event.to_dict() for event in hook.returned]
    stats = client.stats()
    if kind == "change":
        assert len(arrived) == 1 and arrived[0]["details"]["hooked"] is True
        assert arrived[0]["fields"] == {"release": "2026.12"}
        assert stats.dropped == {}
    elif raises:  # said by the exception, as an invalid event in strict mode
        assert stats.dropped == {}
    else:
        reason = "filtered" if kind == "drop" else "hook_error"
        assert stats.dropped == {reason: 1}
        assert [(d["reason"], d["events"]) for d in dropped] == [(reason, hook.given)]
        records = [r for r in caplog.records if reason in r.getMessage()]
        assert len(records) == 1
        if kind == "drop":  # a deliberate filter is not a problem
            assert records[0].levelno == logging.DEBUG
        else:
            assert records[0].levelno == logging.ERROR
            assert (records[0].exc_info is not None) == (kind == "raise")
            if kind == "junk":
                assert "returned dict {'type'" in records[0].getMessage()


def test_the_hook_sees_the_request_and_scrubbed_values(
    emulator: Any, delivering: Make, asgi_url: str, http: httpx.Client
) -> None:
    """`bento_track.current_request()` in the hook: drop what internal
    callers make; the hook gets the event already scrubbed."""
    seen: list[tuple[str | None, Any]] = []

    def hook(event: Event) -> Event | None:
        request = bento_track.current_request()
        seen.append((request.path if request else None, event.details))
        if request is not None and request.header("x-internal") == "1":
            return None
        return event

    client = delivering(before_send=hook)
    with use_default_client(client):
        http.post(f"{asgi_url}/go", headers={**HDR, "x-internal": "1"})
        http.post(f"{asgi_url}/go", headers=HDR)
        client.track("outside", email=EMAIL, details={"Set-Cookie": "sid=1"})
        wait_until(lambda: len(seen) == 3)
        arrived = delivered(emulator, client)
    assert [e["type"] for e in arrived] == ["asgi.rule", "outside"]
    assert [path for path, _ in seen] == ["/go", "/go", None]
    assert seen[2][1] == {"Set-Cookie": "[Filtered]"}
    assert client.stats().dropped == {"filtered": 1}


def test_a_hook_that_returns_an_invalid_event(clients: Make) -> None:
    """A new `Event` the hook built itself is validated again."""
    bad = Event("t", "not-an-email", None, None)
    lenient = clients(disabled=True, environ={}, before_send=lambda e: bad)
    assert lenient.track("t", email=EMAIL) is None
    assert lenient.stats().dropped == {"invalid": 1}
    strict = clients(disabled=True, environ={}, strict=True, before_send=lambda e: bad)
    with pytest.raises(bento_track.InvalidEventError, match="before_send returned"):
        strict.track("t", email=EMAIL)
    fine = Event("t2", " b@example.com ", {"x": 1}, None, captured_at=5.0)
    kept = clients(disabled=True, environ={}, before_send=lambda e: fine)
    sent = kept.track("t", email=EMAIL)
    assert sent is not None and sent.email == "b@example.com"
    assert sent.captured_at == 5.0


def test_hook_tracebacks_are_said_once_a_minute(clients: Make, caplog: Any) -> None:
    from bento_track._core.clock import FakeClock

    clock = FakeClock()

    def hook(event: Event) -> Event:
        raise ValueError(f"no {event.type}")

    client = clients(disabled=True, environ={}, before_send=hook, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bento_track"):
        for i in range(3):
            assert client.track(f"t{i}", email=EMAIL) is None
        clock.advance(61)
        client.track("t3", email=EMAIL)
    said = [r for r in caplog.records if "hook_error" in r.getMessage()]
    assert len(said) == 2 and all(r.exc_info for r in said)
    assert "2 more since the last such message" in said[1].getMessage()
    assert client.stats().dropped == {"hook_error": 4}


def test_the_hook_logging_a_tagged_record_does_not_loop(clients: Make) -> None:
    log = logging.getLogger("tests.capture.before_send.loop")
    calls: list[str] = []

    def hook(event: Event) -> Event:
        calls.append(event.type)
        log.warning("seen", extra={"bento": {"type": "loop", "email": EMAIL}})
        return event

    client = clients(disabled=True, environ={}, before_send=hook)
    handler = BentoHandler(client=client)
    log.addHandler(handler)
    try:
        client.track("once", email=EMAIL)
    finally:
        log.removeHandler(handler)
    assert calls == ["once"]


# -- scrubbing -----------------------------------------------------------------


NESTED: dict[str, Any] = {
    "order": {
        "payment": {
            "gateway": {
                "Authorization": "Bearer abc",
                "card-number": "4242424242424242",
            },
            "items": [{"sku": "a", "apiKey": "k1"}],
        }
    },
    "note": "kept",
}


def test_nested_secrets_arrive_filtered(emulator: Any, delivering: Make) -> None:
    client = delivering()
    client.track(
        "order.paid",
        email=EMAIL,
        fields={"plan": "pro", "Session-Id": "s1"},
        details=NESTED,
    )
    arrived = delivered(emulator, client)
    assert arrived[0]["details"] == {
        "order": {
            "payment": {
                "gateway": {"Authorization": "[Filtered]", "card-number": "[Filtered]"},
                "items": [{"sku": "a", "apiKey": "[Filtered]"}],
            }
        },
        "note": "kept",
    }
    assert arrived[0]["fields"] == {"plan": "pro", "Session-Id": "[Filtered]"}
    assert arrived[0]["email"] == EMAIL and arrived[0]["type"] == "order.paid"
    assert client.stats().scrubbed == 4
    assert NESTED["order"]["payment"]["gateway"]["Authorization"] == "Bearer abc"


def test_a_forked_child_counts_only_what_it_scrubbed(clients: Make) -> None:
    # A counter the parent had already raised would be counted twice by
    # anything that adds up the processes' figures (Prometheus' multiprocess
    # mode): the child starts from 0, the parent keeps its own.
    client = clients(disabled=True, environ={})
    client.track("login", email=EMAIL, details={"password": "hunter2"})
    assert client.stats().scrubbed == 1

    def child() -> str:
        before = client.stats().scrubbed
        client.track("login", email=EMAIL, details={"token": "t", "secret": "s"})
        return f"{before} {client.stats().scrubbed}"

    assert in_forked_child(child) == "0 2"
    assert client.stats().scrubbed == 1


def test_scrub_false_sends_them_as_they_were(emulator: Any, delivering: Make) -> None:
    client = delivering(scrub=False)
    client.track("order.paid", email=EMAIL, details=NESTED)
    assert delivered(emulator, client)[0]["details"] == NESTED
    assert client.stats().scrubbed == 0


def test_every_capture_path_is_scrubbed(emulator: Any, delivering: Make) -> None:
    client = delivering()
    via_decorator(client, None)  # details={"token": ...}
    log = logging.getLogger("tests.capture.before_send.scrub")
    handler = BentoHandler(client=client)
    log.addHandler(handler)
    try:
        log.warning(
            "x", extra={"bento": {"type": "l", "email": EMAIL, "details": {"csrf": 1}}}
        )
    finally:
        log.removeHandler(handler)
    client.capture(Event("built", EMAIL, {"password": "p"}, None))
    arrived = {e["type"]: e for e in delivered(emulator, client)}
    assert arrived["app.decorated"]["details"] == {"token": "[Filtered]"}
    assert arrived["l"]["details"]["csrf"] == "[Filtered]"
    assert arrived["built"]["fields"] == {"password": "[Filtered]"}
    assert client.stats().scrubbed == 3


def test_a_scrubber_tuned(clients: Make) -> None:
    scrubber = bento_track.Scrubber(extra_keys=["Plan"], allow_keys=["session"])
    client = clients(disabled=True, environ={}, scrub=scrubber)
    event = client.track(
        "t",
        email=EMAIL,
        fields={"plan": "pro", "session": "gym"},
        details={"PASSWORD": "x", "plan_id": 3},
    )
    assert event is not None
    assert event.fields == {"plan": "[Filtered]", "session": "gym"}
    assert event.details == {"PASSWORD": "[Filtered]", "plan_id": 3}
    assert scrubber.denies("p-l-a-n") and not scrubber.denies("plans")


def test_clean_events_are_not_copied(clients: Make) -> None:
    client = clients(disabled=True, environ={})
    details = {"a": {"b": [1, {"c": 2}]}}
    # An explicit date: two events built a moment apart may fall either side
    # of a millisecond, and an event's date is part of its equality.
    date = "2026-12-04T00:00:00Z"
    built = Event.build("t", email=EMAIL, details=details, date=date)
    assert client.capture(built) is built
    assert client.track("t", email=EMAIL, details=details, date=date) == built


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"before_send": "not callable"}, "before_send"),
        ({"scrub": "yes"}, "scrub"),
        ({"scrub": None}, "scrub"),
    ],
)
def test_bad_options(options: dict[str, Any], setting: str) -> None:
    with pytest.raises(bento_track.ConfigurationError) as info:
        bento_track.Client(disabled=True, environ={}, **options)
    assert info.value.setting == setting


@pytest.mark.parametrize(
    "kwargs", [{"extra_keys": "token"}, {"allow_keys": [1]}, {"extra_keys": [""]}]
)
def test_bad_scrubber(kwargs: dict[str, Any]) -> None:
    with pytest.raises(bento_track.ConfigurationError):
        bento_track.Scrubber(**kwargs)


def test_event_replace() -> None:
    event = Event.build("t", email=EMAIL, details={"a": 1})
    changed = event.replace(type="t2", details={"a": 2})
    assert (changed.type, changed.email, changed.details) == ("t2", EMAIL, {"a": 2})
    assert changed.captured_at == event.captured_at
    assert event.details == {"a": 1}
    with pytest.raises(bento_track.InvalidEventError) as info:
        event.replace(fields={"x": {"nested": 1}})
    assert info.value.field == "fields.x"
    with pytest.raises(TypeError, match="colour"):
        event.replace(colour="red")


def test_init_passes_the_options_on() -> None:
    from bento_track import _default

    hook = lambda event: event  # noqa: E731
    with use_default_client(bento_track.Client(disabled=True, environ={})):
        client = bento_track.init(
            disabled=True, environ={}, before_send=hook, scrub=False
        )
        assert _default.get_client() is client
        sent = bento_track.track("t", email=EMAIL, details={"token": "x"})
        assert sent is not None and sent.details == {"token": "x"}
        assert bento_track.stats().scrubbed == 0


def test_known_clean_events_skip_the_scrubber(
    clients: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation looks each key up among the names known clean (one set
    lookup per key); only an event with a name not seen yet, or a denied
    one, goes to the scrubber."""
    client = clients(disabled=True, environ={})
    scrubber = client._filter.scrubber
    assert scrubber is not None
    calls: list[str] = []
    scrub = scrubber.scrub

    def counting(event: Event) -> Any:
        calls.append(event.type)
        return scrub(event)

    monkeypatch.setattr(scrubber, "scrub", counting)
    details = {"cart": {"items": [{"sku": "a"}]}, "n": 1}
    for i in range(3):
        client.track(f"clean{i}", email=EMAIL, fields={"plan": "pro"}, details=details)
    client.track("new", email=EMAIL, details={"cart": {"coupon": "X"}})
    client.track("secret", email=EMAIL, details={"cart": {"token": "t"}})
    client.track("secret again", email=EMAIL, details={"cart": {"token": "t"}})
    assert calls == ["clean0", "new", "secret", "secret again"]
    assert client.stats().scrubbed == 2


def test_big_containers_are_scrubbed_too(clients: Make) -> None:
    """Containers of hundreds of items are measured, not counted, by
    validation; their keys are still looked at."""
    client = clients(disabled=True, environ={})
    many = {f"k{i}": i for i in range(300)}
    rows = [{"id": i} for i in range(300)]
    event = client.track(
        "t",
        email=EMAIL,
        details={"many": {**many, "password": "p"}, "rows": [*rows, {"ssn": "1"}]},
    )
    assert event is not None and event.details is not None
    assert event.details["many"]["password"] == "[Filtered]"
    assert event.details["rows"][-1] == {"ssn": "[Filtered]"}
    assert event.details["many"]["k7"] == 7
