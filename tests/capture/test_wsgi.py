"""`BentoWSGIMiddleware` on Flask (Werkzeug's test client) and on a plain
PEP 3333 app (events recorded in memory; delivery is in `test_e2e.py`)."""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Iterator
from typing import Any

import flask
import pytest
from werkzeug.test import Client as WerkzeugClient

import bento_track
from bento_track import BentoWSGIMiddleware
from bento_track._capture.context import current_request

from .conftest import Failures, Recorder, wsgiref_server

HDR = {"X-User-Email": "ann@example.com"}


def by_header(info: Any) -> str | None:
    return info.header("x-user-email")


def flask_app(**options: Any) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.post("/users/<int:user_id>")
    def update(user_id: int) -> str:
        return f"user {user_id}"

    @app.post("/login")
    def login() -> str:
        bento_track.identify("flask@example.com")
        return "in"

    @app.get("/fail")
    def fail() -> str:
        raise Boom("flask kaput")

    @app.get("/stream")
    def stream() -> flask.Response:
        def chunks() -> Iterator[str]:
            yield "a"
            yield "b"

        return flask.Response(chunks())

    app.wsgi_app = BentoWSGIMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


class Boom(Exception):
    pass


def test_flask_rule_by_url_rule_and_method(recorder: Recorder) -> None:
    """Flask's URL rule is the route template rules match."""
    app = flask_app(
        client=recorder.client,
        events={"POST /users/<int:user_id>": "user.updated"},
        identify=by_header,
    )
    http = app.test_client()

    assert b"user 5" == http.post("/users/5", headers=HDR).data
    assert 405 == http.get("/users/5", headers=HDR).status_code

    [event] = recorder.events
    details = event.details or {}

    assert ("user.updated", "ann@example.com") == (event.type, event.email)
    assert ("/users/<int:user_id>", "/users/5", 200, "POST") == (
        details["route"],
        details["path"],
        details["status"],
        details["method"],
    )


def test_flask_identify_in_view(recorder: Recorder) -> None:
    """`identify()` inside a Flask view sets the request's identity."""
    app = flask_app(client=recorder.client, events={"POST /login": "login"})
    assert b"in" == app.test_client().post("/login").data  # the body is consumed

    assert ["flask@example.com"] == [e.email for e in recorder.events]


def test_flask_exception_tracked(recorder: Recorder) -> None:
    """Flask turns the exception into a 500; that status passes the filter
    only when asked."""
    app = flask_app(
        client=recorder.client,
        events={"GET /fail": "failed"},
        status="5xx",
        identify=by_header,
    )
    with app.test_client().get("/fail", headers=HDR) as answer:
        assert 500 == answer.status_code

    assert [500] == [(e.details or {})["status"] for e in recorder.events]


def plain_app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise PLAIN_ERROR
    if path == "/list":
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"made"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body([b"x", b"y"])


PLAIN_ERROR = Boom("plain kaput")


class Body:
    """A response iterable that records whether `close()` was called."""

    closed = 0

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        Body.closed += 1


def test_plain_wsgi_iterable_closed_and_event_after_body(recorder: Recorder) -> None:
    """The body passes through, `close()` reaches the app's iterable, and the
    event comes when the body is done."""
    app = BentoWSGIMiddleware(
        plain_app, client=recorder.client, events={"/": "home"}, identify=by_header
    )
    closed = Body.closed
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "HTTP_X_USER_EMAIL": "a@example.com",
    }
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    chunks = iter(body)

    assert b"x" == next(chunks)
    assert [] == recorder.events  # the body is not done yet

    assert [b"y"] == list(chunks)
    assert ["home"] == recorder.types()

    body.close()  # type: ignore[attr-defined]
    assert 1 == Body.closed - closed
    assert ["200 OK"] == statuses
    assert ["home"] == recorder.types()  # once


def test_closed_without_iterating_still_closes_and_tracks(recorder: Recorder) -> None:
    """A server that closes the response without reading it (client gone,
    HEAD) still reaches the app's `close()`, and the request still counts;
    closing twice closes the app's iterable and counts the request once."""
    app = BentoWSGIMiddleware(
        plain_app, client=recorder.client, events={"/": "home"}, identify=by_header
    )
    closed = Body.closed
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "HTTP_X_USER_EMAIL": "a@example.com",
    }
    body = app(environ, lambda status, headers, exc_info=None: None)
    body.close()  # type: ignore[attr-defined]
    body.close()  # type: ignore[attr-defined]

    assert 1 == Body.closed - closed
    assert ["home"] == recorder.types()
    assert ["a@example.com"] == [e.email for e in recorder.events]


def test_late_error_keeps_the_status_that_was_sent(recorder: Recorder) -> None:
    """An app that fails mid-body calls `start_response` again with
    `exc_info`; the server re-raises, the headers being sent: the event
    reports the status the client got, not the one that could not be sent."""
    sent: list[str] = []

    def server_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        if exc_info is not None and sent:  # PEP 3333: headers sent, re-raise
            raise exc_info[1].with_traceback(exc_info[2])
        sent.append(status)
        return lambda data: None

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"1"
        try:
            raise Boom("mid-body")
        except Boom:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    wrapped = BentoWSGIMiddleware(
        app,
        client=recorder.client,
        identify=by_header,
        track_exceptions="crash",
    )
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_X_USER_EMAIL": "e@x.io"}
    body = wrapped(environ, server_start_response)
    with pytest.raises(Boom):
        list(body)

    assert ["200 OK"] == sent
    assert [("crash", 200)] == [(e.type, e.details["status"]) for e in recorder.events]


def test_plain_wsgi_list_returned_as_is(recorder: Recorder) -> None:
    """A list body is complete: it is returned itself, the event made at once."""
    app = BentoWSGIMiddleware(
        plain_app,
        client=recorder.client,
        events={"GET /list": "listed"},
        status=201,
        identify=by_header,
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/list",
        "HTTP_X_USER_EMAIL": "b@example.com",
    }
    body = app(environ, lambda *a: None)

    assert [b"made"] == body
    assert ["listed"] == recorder.types()


def test_plain_wsgi_exception_reraised_unchanged(recorder: Recorder) -> None:
    """The app's exception leaves the middleware as the same object."""
    app = BentoWSGIMiddleware(
        plain_app, client=recorder.client, track_exceptions="crash", identify=by_header
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/boom",
        "HTTP_X_USER_EMAIL": "c@example.com",
    }
    with pytest.raises(Boom) as raised:
        app(environ, lambda *a: None)

    assert raised.value is PLAIN_ERROR
    assert ["crash"] == recorder.types()


def test_streaming_generator_sees_request_context(recorder: Recorder) -> None:
    """A generator body runs with the request context entered, so events it
    tracks carry the request's identity."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        bento_track.identify("gen@example.com")
        start_response("200 OK", [])
        yield b"1"
        recorder.client.track("inside.stream")
        yield b"2"

    wrapped = BentoWSGIMiddleware(app, client=recorder.client, events={"/": "done"})
    body = wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda *a: None)

    assert [b"1", b"2"] == list(body)
    assert [("inside.stream", "gen@example.com"), ("done", "gen@example.com")] == [
        (e.type, e.email) for e in recorder.events
    ]


def test_body_and_end_of_request_see_the_views_context(recorder: Recorder) -> None:
    """A streamed body and the end of the request (`identify=` asked again,
    `capture=`) run in the request's context as the view left it: a login
    view's contextvar names the user. What the app set stays in the server
    thread's context, as without the middleware (per-thread state that
    libraries keep in contextvars is not rebuilt on every request); the
    request itself does not."""
    user: contextvars.ContextVar[str | None] = contextvars.ContextVar(
        "user", default=None
    )
    seen: list[tuple[str | None, bool]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        user.set("new@example.com")  # a login view
        start_response("200 OK", [])
        return body()

    def body() -> Iterator[bytes]:
        seen.append((user.get(), current_request() is not None))
        yield b"ok"

    def capture(info: Any) -> None:
        seen.append((user.get(), current_request() is not None))

    wrapped = BentoWSGIMiddleware(
        app,
        client=recorder.client,
        events={"POST /login": "user.login"},
        identify=lambda info: user.get(),
        capture=capture,
    )
    context = contextvars.copy_context()  # the server thread's
    response = context.run(
        wrapped, {"REQUEST_METHOD": "POST", "PATH_INFO": "/login"}, lambda *a: None
    )
    assert [b"ok"] == list(response)  # exhausted: the event comes here
    response.close()  # type: ignore[attr-defined]

    assert [("new@example.com", True), ("new@example.com", True)] == seen
    assert [("user.login", "new@example.com")] == [
        (e.type, e.email) for e in recorder.events
    ]
    assert "new@example.com" == context.run(user.get)
    assert context.run(current_request) is None


def test_never_breaks_the_host(recorder: Recorder, failures: Failures) -> None:
    """A raising `capture=` or `identify=` leaves the response intact."""

    def raising(info: Any) -> Any:
        raise RuntimeError("user bug")

    app = flask_app(client=recorder.client, capture=raising, identify=raising)

    assert b"user 1" == app.test_client().post("/users/1").data
    assert 2 == failures.internal


def test_werkzeug_client_on_the_wrapped_app(recorder: Recorder) -> None:
    """The wrapped WSGI callable works under Werkzeug's own test client."""
    app = BentoWSGIMiddleware(
        plain_app, client=recorder.client, events={"/": "home"}, identify=by_header
    )
    answer = WerkzeugClient(app).get("/", headers=HDR)

    assert b"xy" == answer.data
    assert ["home"] == recorder.types()


def test_wsgiref_server(recorder: Recorder) -> None:
    """Under `wsgiref.simple_server` on loopback, driven by httpx."""
    import httpx

    app = flask_app(
        client=recorder.client,
        events={"POST /users/<int:user_id>": "user.updated"},
        identify=by_header,
    )
    with wsgiref_server(app) as url, httpx.Client(timeout=5) as http:
        assert "user 8" == http.post(f"{url}/users/8", headers=HDR).text
        assert "ab" == http.get(f"{url}/stream").text

    assert ["user.updated"] == recorder.types()
