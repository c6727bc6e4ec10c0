"""Reference middlewares: the least any middleware meeting issue 4's list must
do per request, with nothing else. Not a product; the capture benchmark runs
them beside `BentoMiddleware` / `BentoWSGIMiddleware` so every run shows how
much of our cost is the job itself on the machine at hand.

Per request each one: puts a per-request object in a contextvar (views must
find the request's identity), wraps `send` / `start_response` to learn the
status, looks the method and route up in a dict, reads the identity from a
header, and appends a tuple to a bounded deque. No validation, no facts, no
error handling, no signals.
"""

from __future__ import annotations

import contextvars
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

_current: contextvars.ContextVar[Any] = contextvars.ContextVar("floor")
_sink: deque[tuple[Any, ...]] = deque(maxlen=1000)
_RULES = {("POST", "/signup"): "account.signup"}


class _Request:
    __slots__ = ("email", "send", "status")

    def __init__(self, send: Any) -> None:
        self.email: str | None = None
        self.status = 0
        self.send = send

    def send_status(self, message: dict[str, Any]) -> Any:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        return self.send(message)


class FloorASGI:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(send)
        token = _current.set(request)
        try:
            await self.app(scope, receive, request.send_status)
        finally:
            _current.reset(token)
        route = scope.get("route")
        if route is None or not 200 <= request.status < 400:
            return
        event_type = _RULES.get((scope["method"], route.path))
        if event_type is None:
            return
        for name, value in scope["headers"]:
            if name == b"x-user-email":
                _sink.append((event_type, value.decode("latin-1"), time.time()))
                return


class FloorWSGI:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = _Request(None)
        token = _current.set(request)

        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            request.status = int(status[:3])
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, start)
        finally:
            _current.reset(token)
        if 200 <= request.status < 400:
            path = environ.get("PATH_INFO", "")
            event_type = _RULES.get((environ["REQUEST_METHOD"], path))
            email = environ.get("HTTP_X_USER_EMAIL")
            if event_type is not None and email:
                _sink.append((event_type, email, time.time()))
        return result
