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
one chunk at a time, and its `close()` called. The app runs in the server's
context with the request entered; the body, read after the app returned, in a
snapshot of that context (so a streaming generator can still `track()` and
sees what the view set in contextvars), as does the app's `close()`. The event
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
from contextvars import Context, copy_context
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._capture.context import RequestContext, request_var
from ._capture.rules import DEFAULT_STATUS, CaptureFn, CaptureRules, IdentifyFn

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
        exchange = _Exchange(self._rules, environ, start_response)
        token = request_var.set(exchange.ctx)
        try:
            return exchange.serve(self.app)
        finally:
            request_var.reset(token)


def wsgi_route(environ: Mapping[str, Any]) -> str | None:
    """Flask's matched URL rule (e.g. `/users/<int:user_id>`), found through
    the `werkzeug.request` Werkzeug puts in the environ; None elsewhere."""
    request = environ.get("werkzeug.request")
    if request is None:
        return None
    rule = getattr(getattr(request, "url_rule", None), "rule", None)
    return rule if isinstance(rule, str) else None


class _Exchange:
    """One request's passage through the middleware: its `start_response`
    wrapper (to learn the status) and then the response iterable handed to
    the server (one object per request, rather than a closure and a
    wrapper).

    The body passes through chunk by chunk, each read inside the request's
    context (so a streaming generator can still `track()` and `identify()`)
    by `Context.run(next, it, _END)`: no contextvar set and reset, no
    `StopIteration` of our own. The request's event is produced when the
    body is exhausted or closed, whichever comes first. `close()` is a
    method, so the app's `close()` is called even when the server closes
    without iterating."""

    __slots__ = (
        "_start_response",
        "context",
        "ctx",
        "environ",
        "result",
        "rules",
        "started",
    )

    def __init__(
        self,
        rules: CaptureRules,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> None:
        self.rules: CaptureRules | None = rules
        self.ctx = RequestContext(
            None, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        )
        self.environ = environ
        self._start_response = start_response
        self.result: Iterable[bytes] = ()
        self.context: Context | None = None
        self.started = perf_counter()

    def serve(self, app: WSGIApp) -> Iterable[bytes]:
        """Run the app, request context entered; return what the server gets."""
        rules = self.rules
        assert rules is not None
        ctx = self.ctx
        rules.begin(ctx, self.environ)
        try:
            result = app(self.environ, self.start_response)
        except Exception as exc:
            rules.finish(ctx, exc, ctx.status or 500, self.started)
            raise
        if type(result) is list:  # complete already: nothing to wait for
            rules.finish(ctx, None, ctx.status, self.started)
            return result
        self.result = result
        # The body is read after the app returned, when the server's context
        # no longer has the request: a snapshot of this one is entered
        # around each chunk (the app's own context changes stay where they
        # were made, in the server's context, as without this middleware).
        self.context = copy_context()
        return self

    def start_response(
        self,
        status_line: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], object]:
        if exc_info is None:
            write = self._start_response(status_line, headers)
        else:
            # Raises if the headers were sent: the status sent stands.
            write = self._start_response(status_line, headers, exc_info)
        ctx = self.ctx
        code = _status_codes.get(status_line)
        ctx.status = code if code is not None else _status_code(status_line)
        rules = self.rules
        if rules is not None and rules.may_capture and ctx.route is None:
            # Flask drops its request from the environ when the app returns;
            # while it answers, its matched rule is there.
            ctx.route = wsgi_route(self.environ)
        return write

    def __iter__(self) -> Iterator[bytes]:
        return self._relay()

    def _relay(self) -> Iterator[bytes]:
        assert self.context is not None
        run = self.context.run
        try:
            it = run(iter, self.result)
            chunk = run(next, it, _END)
            while chunk is not _END:
                yield chunk
                chunk = run(next, it, _END)
        except Exception as exc:
            run(self._finish, exc)
            raise
        run(self._finish, None)

    def close(self) -> None:
        assert self.context is not None
        result, self.result = self.result, ()  # the app's close() runs once
        try:
            close = getattr(result, "close", None)
            if close is not None:
                self.context.run(close)
        finally:
            if self.rules is not None:
                self.context.run(self._finish, None)

    def _finish(self, error: BaseException | None) -> None:
        rules, self.rules = self.rules, None
        if rules is None:
            return
        code = self.ctx.status
        if error is not None and code is None:
            code = 500
        rules.finish(self.ctx, error, code, self.started)


#: what `next()` gives at the end of the body (a chunk is never this object)
_END: Any = object()


#: status line -> code, for the few status lines an app answers with
_status_codes: dict[str, int] = {}


def _status_code(status_line: str) -> int | None:
    """The code of a status line (`"201 Created"` -> 201), remembered; None if
    it has none (the server will complain; not ours to judge)."""
    try:
        code = int(status_line[:3])
    except (TypeError, ValueError):
        return None
    if len(_status_codes) < 256:
        _status_codes[status_line] = code
    return code
