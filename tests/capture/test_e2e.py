"""Capture paths delivered to the emulator over loopback HTTP by a real
client: what the issue's acceptance asks for, end to end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import flask
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import bento_track
from bento_track import BentoHandler, BentoMiddleware, BentoWSGIMiddleware, track_event

from .conftest import TestClient, delivered, wsgiref_server

Make = Callable[..., bento_track.Client]
HDR = {"x-user-email": "ann@example.com"}


def by_header(info: Any) -> str | None:
    return info.header("x-user-email")


def test_starlette_events_delivered(emulator: Any, delivering: Make) -> None:
    """Rules, `identify=`, `identify()` in sync and async views, a tracked
    decorator and a tagged log record inside a request, all delivered."""
    client = delivering()
    log = logging.getLogger("tests.capture.e2e")
    handler = BentoHandler(client=client)
    log.addHandler(handler)

    @track_event("report.built", client=client)
    def build_report() -> str:
        return "r"

    async def signup(request: Request) -> PlainTextResponse:
        build_report()
        log.warning("welcome", extra={"bento": "welcome.logged"})
        return PlainTextResponse("ok", status_code=201)

    def login(request: Request) -> PlainTextResponse:
        bento_track.identify("sync@example.com")
        return PlainTextResponse("in")

    async def alogin(request: Request) -> PlainTextResponse:
        bento_track.identify("async@example.com")
        client.track("in.view")  # the identity set just above
        return PlainTextResponse("in")

    app = Starlette(
        routes=[
            Route("/signup/{plan}", signup, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
            Route("/alogin", alogin, methods=["POST"]),
        ]
    )
    app.add_middleware(
        BentoMiddleware,
        client=client,
        events={
            "POST /signup/{plan}": "account.signup",
            "POST /login": "login.sync",
            "POST /alogin": "login.async",
        },
        identify=lambda info: info.header("x-user-email"),
    )
    try:
        with TestClient(app) as http:
            assert 201 == http.post("/signup/pro", headers=HDR).status_code
            http.post("/login")
            http.post("/alogin")
            http.get("/signup/pro", headers=HDR)  # 405: no rule fires
        events = delivered(emulator, client)
    finally:
        log.removeHandler(handler)

    got = sorted((e["type"], e["email"]) for e in events)
    signup_event = next(e for e in events if e["type"] == "account.signup")

    assert (
        sorted(
            [
                ("account.signup", "ann@example.com"),
                ("report.built", "ann@example.com"),
                ("welcome.logged", "ann@example.com"),
                ("login.sync", "sync@example.com"),
                ("login.async", "async@example.com"),
                ("in.view", "async@example.com"),
            ]
        )
        == got
    )
    assert "/signup/{plan}" == signup_event["details"]["route"]
    assert 201 == signup_event["details"]["status"]


@pytest.mark.anyio
async def test_fastapi_through_asgi_transport(emulator: Any, delivering: Make) -> None:
    """FastAPI via `httpx.ASGITransport`: template rule, status filter."""
    client = delivering()
    api = FastAPI()

    @api.post("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        if order_id == 0:
            from fastapi import HTTPException

            raise HTTPException(status_code=404)
        return {"id": order_id}

    api.add_middleware(
        BentoMiddleware,
        client=client,
        events={"POST /orders/{order_id}": "order.created"},
        identify=by_header,
    )
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert 200 == (await http.post("/orders/7", headers=HDR)).status_code
        assert 404 == (await http.post("/orders/0", headers=HDR)).status_code
    events = delivered(emulator, client)

    assert [("order.created", "/orders/7")] == [
        (e["type"], e["details"]["path"]) for e in events
    ]


def test_flask_under_wsgiref_delivered(emulator: Any, delivering: Make) -> None:
    """A Flask app under `wsgiref` on loopback, driven by httpx: rule by URL
    rule, `identify()` in a view, a streamed body intact."""
    client = delivering()
    app = flask.Flask(__name__)

    @app.post("/users/<int:user_id>")
    def update(user_id: int) -> str:
        bento_track.identify(f"u{user_id}@example.com")
        return "saved"

    @app.get("/export")
    def export() -> flask.Response:
        return flask.Response(str(i).encode() for i in range(100))

    app.wsgi_app = BentoWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        client=client,
        events={"POST /users/<int:user_id>": "user.saved", "GET /export": "exported"},
        identify=by_header,
    )

    with wsgiref_server(app) as url, httpx.Client(timeout=5) as http:
        assert "saved" == http.post(f"{url}/users/3").text
        body = http.get(f"{url}/export", headers=HDR).text
    events = delivered(emulator, client)

    assert "".join(str(i) for i in range(100)) == body
    assert [("user.saved", "u3@example.com"), ("exported", "ann@example.com")] == [
        (e["type"], e["email"]) for e in events
    ]
    assert "/users/<int:user_id>" == events[0]["details"]["route"]


def test_werkzeug_test_client_delivered(emulator: Any, delivering: Make) -> None:
    """A plain WSGI app through Werkzeug's test client."""
    from werkzeug.test import Client as WerkzeugClient

    client = delivering()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hi"]

    wrapped = BentoWSGIMiddleware(
        app, client=client, events={"GET /hello": "hello"}, identify=by_header
    )
    assert b"hi" == WerkzeugClient(wrapped).get("/hello", headers=HDR).data

    assert ["hello"] == [e["type"] for e in delivered(emulator, client)]


@pytest.mark.anyio
async def test_lifespan_shutdown_flushes(emulator: Any, delivering: Make) -> None:
    """Events still queued are delivered when the app's lifespan shuts down,
    before `lifespan.shutdown.complete` reaches the server."""
    client = delivering(flush_interval=3600)  # never sent on its own
    client.track("queued.event", email="q@example.com")
    seen_at_complete: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            seen_at_complete.append(len(emulator.inspect.events()))

    await BentoMiddleware(app, client=client)({"type": "lifespan"}, receive, send)

    assert [1] == seen_at_complete


def test_logging_from_delivery_neither_recurses_nor_deadlocks(
    emulator: Any, delivering: Make
) -> None:
    """Root logger at DEBUG with the handler on it, while the worker delivers
    (httpx/httpcore debug logging active): tagged records are delivered once,
    nothing loops, flush finishes within its deadline."""
    client = delivering()
    root = logging.getLogger()
    handler = BentoHandler(logging.DEBUG, client=client)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    seen: list[str] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.name)

    spy = Spy()
    root.addHandler(spy)
    try:
        log = logging.getLogger("tests.capture.loop")
        started = time.monotonic()
        for i in range(20):
            log.debug("tick %d", i, extra={"bento": {"email": "loop@example.com"}})
            if i % 5 == 0:
                assert client.flush(5)
        ok = client.flush(5)
        elapsed = time.monotonic() - started
    finally:
        root.removeHandler(handler)
        root.removeHandler(spy)
        root.setLevel(old_level)
    events = emulator.inspect.events()

    assert ok and elapsed < 10
    assert 20 == len(events)
    assert {"log.debug"} == {e["type"] for e in events}
    assert any(name.startswith(("httpx", "httpcore")) for name in seen)
