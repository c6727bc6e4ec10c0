"""`BentoMiddleware` on Starlette, FastAPI and raw ASGI apps (events recorded
in memory; delivery to the emulator is in `test_e2e.py`)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import bento_track
from bento_track import BentoMiddleware
from bento_track._capture.rules import anonymous_skipped
from bento_track.errors import ConfigurationError

from .conftest import Failures, Recorder, TestClient

HDR = {"x-user-email": "ann@example.com"}


def by_header(info: Any) -> str | None:
    return info.header("x-user-email")


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def login_async(request: Request) -> PlainTextResponse:
    bento_track.identify("async@example.com")
    return PlainTextResponse("in")


def login_sync(request: Request) -> PlainTextResponse:  # runs in a thread pool
    bento_track.identify("sync@example.com")
    return PlainTextResponse("in")


async def bad(request: Request) -> PlainTextResponse:
    return PlainTextResponse("no", status_code=400)


def starlette_app(**options: Any) -> Starlette:
    app = Starlette(
        routes=[
            Route("/users/{user_id}", ok, methods=["GET", "POST"]),
            Route("/login-async", login_async, methods=["POST"]),
            Route("/login-sync", login_sync, methods=["POST"]),
            Route("/bad", bad, methods=["POST"]),
            Mount("/api", routes=[Route("/items/{item_id}", ok, methods=["PUT"])]),
        ]
    )
    app.add_middleware(BentoMiddleware, **options)
    return app


def test_rule_matches_route_template_and_method(recorder: Recorder) -> None:
    """A rule keyed by method and route template fires once, with the facts."""
    app = starlette_app(
        client=recorder.client,
        events={"POST /users/{user_id}": "user.updated"},
        identify=by_header,
    )
    with TestClient(app) as http:
        assert http.post("/users/42", headers=HDR).text == "ok"
        http.get("/users/42", headers=HDR)

    [event] = recorder.events
    details = event.details or {}

    assert ("user.updated", "ann@example.com") == (event.type, event.email)
    assert "/users/{user_id}" == details["route"]
    assert ("POST", "/users/42", 200) == (
        details["method"],
        details["path"],
        details["status"],
    )
    assert details["duration_ms"] >= 0
    assert "testclient" == details["user_agent"]


def test_any_method_and_wildcard_rules(recorder: Recorder) -> None:
    """`/route` matches any method; `METHOD *` matches any path."""
    app = starlette_app(
        client=recorder.client,
        events={"/users/{user_id}": "user.seen", "PUT *": "thing.put"},
        identify=by_header,
    )
    with TestClient(app) as http:
        http.get("/users/1", headers=HDR)
        http.post("/users/2", headers=HDR)
        http.put("/api/items/7", headers=HDR)

    assert ["user.seen", "user.seen", "thing.put"] == recorder.types()
    assert "/api/items/{item_id}" == (recorder.events[2].details or {})["route"]


def test_mount_prefix_in_route_template(recorder: Recorder) -> None:
    """A route inside a Mount is matched by its full template."""
    app = starlette_app(
        client=recorder.client,
        events={"PUT /api/items/{item_id}": "item.saved"},
        identify=by_header,
    )
    with TestClient(app) as http:
        http.put("/api/items/9", headers=HDR)

    assert ["item.saved"] == recorder.types()


@pytest.mark.parametrize("path", ["/login-async", "/login-sync"])
def test_identify_inside_view(recorder: Recorder, path: str) -> None:
    """`identify()` in an async view and in a thread-pool sync view sets the
    identity of the request's event."""
    app = starlette_app(client=recorder.client, events={f"POST {path}": "login"})
    with TestClient(app) as http:
        http.post(path)

    expected = "async@example.com" if "async" in path else "sync@example.com"

    assert [expected] == [e.email for e in recorder.events]


def test_identity_does_not_leak_between_requests(recorder: Recorder) -> None:
    """An identity set in one request is gone in the next, and outside."""
    app = starlette_app(
        client=recorder.client,
        events={"POST /login-async": "login", "GET /users/{user_id}": "seen"},
    )
    before = anonymous_skipped.count
    with TestClient(app) as http:
        http.post("/login-async")
        http.get("/users/1")

    assert ["login"] == recorder.types()
    assert 1 == anonymous_skipped.count - before
    assert bento_track._capture.context.current_email() is None


def test_identify_option_asked_when_needed_and_retried_at_the_end(
    recorder: Recorder,
) -> None:
    """`identify=` is asked at the start of a request a rule may match (its
    method), and again at the end if it gave None (a login view's session);
    for other requests only when something needs an identity, and never for
    a request that needs none."""
    calls: list[tuple[str, int | None]] = []

    def identify(info: Any) -> str | None:
        calls.append((info.path, info.status))
        return None if info.status is None else "late@example.com"

    async def view(request: Request) -> PlainTextResponse:
        # What `track()` without email asks; identify= has no email yet.
        assert bento_track._capture.context.current_email() is None
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/view", view),
            Route("/plain", ok),
            Route("/submit", ok, methods=["POST"]),
        ]
    )
    app.add_middleware(
        BentoMiddleware,
        client=recorder.client,
        events={"POST /submit": "submitted"},
        identify=identify,
    )
    with TestClient(app) as http:
        http.get("/plain")
        http.get("/view")
        http.post("/submit")

    assert [("/view", None), ("/submit", None), ("/submit", 200)] == calls
    assert ["late@example.com"] == [e.email for e in recorder.events]


def test_rule_event_names_who_the_request_started_as(recorder: Recorder) -> None:
    """A logout view clears the session; its event still names the user."""

    async def logout(request: Request) -> PlainTextResponse:
        request.scope["session"].clear()
        return PlainTextResponse("bye")

    inner = Starlette(routes=[Route("/logout", logout, methods=["POST"])])
    inner.add_middleware(
        BentoMiddleware,
        client=recorder.client,
        events={"POST /logout": "account.logout"},
        identify=lambda info: info.scope["session"].get("email"),
    )

    async def with_session(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["session"] = {"email": "ann@example.com"}
        await inner(scope, receive, send)

    with TestClient(with_session) as http:
        assert 200 == http.post("/logout").status_code

    assert [("account.logout", "ann@example.com")] == [
        (e.type, e.email) for e in recorder.events
    ]


def test_status_filter(recorder: Recorder) -> None:
    """Rules fire on 2xx/3xx by default; `status=` changes that."""
    rules = {"POST /bad": "bad.request"}
    with TestClient(
        starlette_app(client=recorder.client, events=rules, identify=by_header)
    ) as http:
        http.post("/bad", headers=HDR)
    assert [] == recorder.events

    with TestClient(
        starlette_app(
            client=recorder.client, events=rules, identify=by_header, status="4xx"
        )
    ) as http:
        http.post("/bad", headers=HDR)

    assert [400] == [(e.details or {})["status"] for e in recorder.events]


def test_capture_callable(recorder: Recorder) -> None:
    """`capture=` sees the request facts and status and returns the event."""

    def capture(info: Any) -> Any:
        if info.route == "/users/{user_id}" and info.status == 200:
            return {
                "type": "user.viewed",
                "fields": {"last_user": info.path.rsplit("/", 1)[1]},
                "details": {"q": info.query.get("q")},
            }
        return None

    app = starlette_app(client=recorder.client, capture=capture, identify=by_header)
    with TestClient(app) as http:
        http.get("/users/5?q=x", headers=HDR)
        http.post("/bad", headers=HDR)

    [event] = recorder.events

    assert "user.viewed" == event.type
    assert {"last_user": "5"} == event.fields
    assert "x" == (event.details or {})["q"]
    assert "/users/5" == (event.details or {})["path"]


def test_fastapi_route_template(recorder: Recorder) -> None:
    """FastAPI's route template is matched too."""
    api = FastAPI()

    @api.post("/orders/{order_id}")
    async def create(order_id: int) -> dict[str, int]:
        return {"id": order_id}

    api.add_middleware(
        BentoMiddleware,
        client=recorder.client,
        events={"POST /orders/{order_id}": "order.created"},
        identify=by_header,
    )
    with TestClient(api) as http:
        assert {"id": 3} == http.post("/orders/3", headers=HDR).json()

    [event] = recorder.events

    assert "/orders/{order_id}" == (event.details or {})["route"]


async def _call(app: Any, scope: dict[str, Any], messages: list[Any]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)


def _scope(path: str = "/", method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"x-user-email", b"ann@example.com")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }


@pytest.mark.anyio
async def test_streaming_is_not_buffered(recorder: Recorder) -> None:
    """The first chunk reaches the server before the body generator finishes."""
    first_chunk_sent = anyio.Event()

    async def body() -> Any:
        yield b"one"
        with anyio.fail_after(5):  # a buffering middleware would hang here
            await first_chunk_sent.wait()
        yield b"two"

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(body())

    app = BentoMiddleware(
        Starlette(routes=[Route("/s", stream)]),
        client=recorder.client,
        events={"GET /s": "streamed"},
        identify=by_header,
    )
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            chunks.append(message["body"])
            first_chunk_sent.set()

    await app(_scope("/s"), receive, send)

    assert [b"one", b"two"] == chunks
    assert ["streamed"] == recorder.types()


class Boom(Exception):
    pass


@pytest.mark.anyio
async def test_app_exception_reraised_unchanged(recorder: Recorder) -> None:
    """The app's exception comes out as the same object, tracked first when
    `track_exceptions=` is set."""
    error = Boom("kaput")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise error

    wrapped = BentoMiddleware(
        app, client=recorder.client, track_exceptions="app.error", identify=by_header
    )
    with pytest.raises(Boom) as raised:
        await _call(wrapped, _scope("/x"), [])

    [event] = recorder.events
    details = event.details or {}

    assert raised.value is error
    assert "app.error" == event.type
    assert "kaput" == details["exception"]["message"]
    assert details["exception"]["type"].endswith("test_asgi.Boom")
    assert 500 == details["status"]


@pytest.mark.anyio
async def test_websocket_and_lifespan_pass_through(recorder: Recorder) -> None:
    """Non-http scopes reach the app with the very receive/send (websocket)
    and every lifespan message unchanged."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["type"], receive, send))
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete", "x": 1})
                    return

    wrapped = BentoMiddleware(app, client=recorder.client, events={"GET *": "x"})

    async def ws_receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def ws_send(message: dict[str, Any]) -> None:
        pass

    await wrapped({"type": "websocket", "path": "/ws"}, ws_receive, ws_send)
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def ls_receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def ls_send(message: dict[str, Any]) -> None:
        sent.append(message)

    await wrapped({"type": "lifespan"}, ls_receive, ls_send)

    assert ("websocket", ws_receive, ws_send) == seen[0]
    assert [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete", "x": 1},
    ] == sent
    assert [] == recorder.events


def test_starlette_websocket_through_testclient(recorder: Recorder) -> None:
    """A Starlette websocket endpoint works unchanged under the middleware."""

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(await ws.receive_text())
        await ws.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app.add_middleware(BentoMiddleware, client=recorder.client, events={"GET *": "x"})
    with TestClient(app) as http, http.websocket_connect("/ws") as ws:
        ws.send_text("hi")
        assert "hi" == ws.receive_text()

    assert [] == recorder.events


def test_never_breaks_the_host(recorder: Recorder, failures: Failures) -> None:
    """A raising `capture=`, a raising `identify=` and invalid event data are
    counted and logged; every request still succeeds."""

    def raising(info: Any) -> Any:
        raise RuntimeError("bug in user code")

    bad_data = {"type": "x", "fields": {"nested": {"no": 1}}}
    with TestClient(
        starlette_app(client=recorder.client, capture=raising, identify=raising)
    ) as http:
        assert 200 == http.get("/users/1").status_code
    with TestClient(
        starlette_app(
            client=recorder.client, capture=lambda info: bad_data, identify=by_header
        )
    ) as http:
        assert 200 == http.get("/users/1", headers=HDR).status_code
    with TestClient(
        starlette_app(
            client=recorder.client,
            events={"GET /users/{user_id}": "seen"},
            identify=lambda info: "not an email",
        )
    ) as http:
        assert 200 == http.get("/users/1").status_code

    assert 2 == failures.internal  # capture= and identify= raised
    assert 2 == failures.invalid  # nested field, malformed identify email
    assert [] == recorder.events


def test_bad_options_raise_at_construction() -> None:
    """Malformed options fail loudly when the middleware is built."""
    for options in (
        {"events": {"POST": "x"}},
        {"events": {"post signup": "x"}},
        {"events": {"POST /a": ""}},
        {"status": "2yy"},
        {"status": 3.5},
        {"capture": "nope"},
        {"track_exceptions": ""},
    ):
        with pytest.raises(ConfigurationError):
            BentoMiddleware(ok, **options)  # type: ignore[arg-type]


def test_json_view_and_no_rules_cost_nothing(recorder: Recorder) -> None:
    """Without rules nothing is captured, and the response is untouched."""

    async def data(request: Request) -> JSONResponse:
        return JSONResponse({"a": 1}, headers={"x-k": "v"})

    app = Starlette(routes=[Route("/d", data)])
    app.add_middleware(BentoMiddleware, client=recorder.client)
    with TestClient(app) as http:
        answer = http.get("/d")

    assert ({"a": 1}, "v") == (answer.json(), answer.headers["x-k"])
    assert [] == recorder.events


def test_track_inside_a_request_carries_facts_when_attach_facts_is_set() -> None:
    """`attach_facts=True` adds the request facts to events tracked by `track()`."""
    import asyncio

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from bento_track import BentoMiddleware, Client, signals

    client = Client(disabled=True)
    seen: list = []

    def receiver(sender, *, event, **_):
        seen.append(event)

    signals.event_captured.connect(receiver, sender=client)

    async def view(request: object) -> PlainTextResponse:
        client.track("report.viewed", email="a@example.com", details={"rows": 3})
        return PlainTextResponse("ok")

    app = BentoMiddleware(
        Starlette(routes=[Route("/reports/{id}", view)]),
        client=client,
        attach_facts=True,
    )

    async def drive() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/reports/7")).status_code == 200

    asyncio.run(drive())
    signals.event_captured.disconnect(receiver, sender=client)

    [event] = seen
    assert event.details["rows"] == 3
    assert event.details["method"] == "GET"
    assert event.details["path"] == "/reports/7"


def test_finished_request_lets_go_of_the_scope(recorder: Recorder) -> None:
    """A context kept after the request (a task it started) keeps its identity
    but not the scope, and no longer asks `identify=`."""
    seen: list[Any] = []

    async def view(request: Request) -> PlainTextResponse:
        seen.append(bento_track._capture.context.current_request())
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/signup", view, methods=["POST"])])
    app.add_middleware(
        BentoMiddleware,
        client=recorder.client,
        events={"POST /signup": "account.signup"},
        identify=by_header,
    )
    with TestClient(app) as http:
        http.post("/signup", headers=HDR)

    (ctx,) = seen
    assert (None, None, None) == (ctx.source, ctx.resolver, ctx.info)
    assert "ann@example.com" == ctx.email
    assert ["account.signup"] == recorder.types()
