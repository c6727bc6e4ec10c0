"""`BentoWSGIMiddleware`: PEP 3333 middleware that turns requests into Bento
events and gives every request an identity context.

```python
app.wsgi_app = BentoWSGIMiddleware(                  # Flask
    app.wsgi_app,
    events={"POST /signup": "account.signup"},
    identify=lambda info: info.header("x-user-email"),
)
```

The options are those of `bento_track.asgi.BentoMiddleware` (see
`bento_track._rules`). `start_response` is wrapped to learn the status
(`exc_info` passed through); the response iterable is passed through lazily,
one chunk at a time, with the request context entered around each chunk (so a
streaming generator can still `track()`), and its `close()` called. The event
is produced when the body is exhausted or closed, so the duration covers
streaming; a response that is a plain list is complete already, is returned
as is, and its event produced at once. Nothing is kept on the middleware
between requests: it runs under any PEP 3333 server (wsgiref, gunicorn,
uWSGI, Werkzeug).

Identity: Flask's `session` and `flask.g` are not in the WSGI environ, so
call `bento_track.identify(email)` in the view (or a `before_request` hook)
for a logged-in user; `identify=` suits what the environ carries: a header
from a trusted proxy, `REMOTE_USER`, a cookie.

```python
identify=lambda info: info.header("x-user-email")
identify=lambda info: info.environ.get("REMOTE_USER")
```

Route templates: Flask's matched rule (`/users/<int:user_id>`, read from the
`werkzeug.request` in the environ when `start_response` is called, since
Flask clears it when the request ends) when there is one, else the raw path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._context import RequestContext, _request
from ._rules import DEFAULT_STATUS, CaptureFn, CaptureRules, IdentifyFn

if TYPE_CHECKING:
    from .client import Client

__all__ = ["BentoWSGIMiddleware"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class BentoWSGIMiddleware:
    """PEP 3333 middleware: request context, identity, and rule-based events.

    Args: the same keyword options as `bento_track.asgi.BentoMiddleware`.

    Raises:
        ConfigurationError: an option is malformed (the message names it).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        client: Client | None = None,
        events: Mapping[str, str] | None = None,
        capture: CaptureFn | None = None,
        status: object = DEFAULT_STATUS,
        identify: IdentifyFn | None = None,
        facts: bool = True,
        attach_facts: bool = False,
        track_exceptions: str | None = None,
        request_id_header: str = "x-request-id",
    ) -> None:
        self.app = app
        self.client = client
        self._rules = CaptureRules(
            where="BentoWSGIMiddleware",
            asgi=False,
            route_of=wsgi_route,
            client=client,
            events=events,
            capture=capture,
            status=status,
            identify=identify,
            facts=facts,
            attach_facts=attach_facts,
            track_exceptions=track_exceptions,
            request_id_header=request_id_header,
        )

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        rules = self._rules
        ctx = RequestContext(
            None, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        )
        token = _request.set(ctx)
        needs_route = rules.may_capture

        def start(
            status_line: str,
            headers: list[tuple[str, str]],
            exc_info: ExcInfo | None = None,
        ) -> Callable[[bytes], object]:
            try:
                ctx.status = int(status_line[:3])
            except ValueError:
                pass  # the server will complain; not ours to judge
            if needs_route and ctx.route is None:
                # Flask drops its request from the environ when the app
                # returns; while it answers, its matched rule is there.
                ctx.route = wsgi_route(environ)
            if exc_info is None:
                return start_response(status_line, headers)
            return start_response(status_line, headers, exc_info)

        started = perf_counter()
        try:
            rules.begin(ctx, environ)
            try:
                result = self.app(environ, start)
            except Exception as exc:
                rules.finish(ctx, exc, ctx.status or 500, started)
                raise
            if type(result) is list:  # complete already: nothing to wait for
                rules.finish(ctx, None, ctx.status, started)
                return result
        finally:
            _request.reset(token)
        return _Response(result, rules, ctx, started)


def wsgi_route(environ: Mapping[str, Any]) -> str | None:
    """Flask's matched URL rule (e.g. `/users/<int:user_id>`), found through
    the `werkzeug.request` Werkzeug puts in the environ; None elsewhere."""
    request = environ.get("werkzeug.request")
    if request is None:
        return None
    rule = getattr(getattr(request, "url_rule", None), "rule", None)
    return rule if isinstance(rule, str) else None


class _Response:
    """The app's response iterable, passed through chunk by chunk; produces
    the request's event when exhausted or closed, whichever comes first.

    Iteration is a generator (`__iter__`): its end costs no exception of our
    own. `close()` is a method, so the app's `close()` is called even when
    the server closes without iterating."""

    __slots__ = ("_ctx", "_result", "_rules", "_started")

    def __init__(
        self,
        result: Iterable[bytes],
        rules: CaptureRules,
        ctx: RequestContext,
        started: float,
    ) -> None:
        self._result = result
        self._rules: CaptureRules | None = rules
        self._ctx = ctx
        self._started = started

    def __iter__(self) -> Iterator[bytes]:
        return self._relay()

    def _relay(self) -> Iterator[bytes]:
        ctx = self._ctx
        it = iter(self._result)
        while True:
            # The request context is entered around each chunk, so a streaming
            # generator in the app can still `track()` and `identify()`.
            token = _request.set(ctx)
            try:
                chunk = next(it)
            except StopIteration:
                self._finish(None)
                return
            except Exception as exc:
                self._finish(exc)
                raise
            finally:
                _request.reset(token)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            if self._rules is not None:
                token = _request.set(self._ctx)
                try:
                    self._finish(None)
                finally:
                    _request.reset(token)

    def _finish(self, error: BaseException | None) -> None:
        rules, self._rules = self._rules, None
        if rules is None:
            return
        code = self._ctx.status
        if error is not None and code is None:
            code = 500
        rules.finish(self._ctx, error, code, self._started)
