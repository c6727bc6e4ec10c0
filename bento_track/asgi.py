"""`BentoMiddleware`: pure ASGI middleware that turns requests into Bento
events and gives every request an identity context.

```python
app.add_middleware(
    BentoMiddleware,
    events={"POST /signup": "account.signup"},
    identify=lambda info: info.headers.get("x-user-email"),
)
```

Only `http` scopes are handled. `websocket` scopes pass straight through;
`lifespan` too, except that when the app reports
`lifespan.shutdown.complete` the client is flushed first (in a worker
thread, within its `shutdown_timeout`). `send` is wrapped only to read the
status from `http.response.start`: bodies, streaming included, pass through
unbuffered. The app's exceptions are re-raised unchanged (after being tracked
when `track_exceptions=` is set). Per-request state lives in local variables;
nothing is kept on the middleware between requests.

SIGTERM loses nothing under uvicorn (`--lifespan on/auto/off`), gunicorn's
`UvicornWorker` (lifespan or not) and hypercorn: at lifespan startup and at
each request the middleware chains a SIGTERM handler in front of the
server's (`bento_track.integrations.sigterm`), which flushes every client at
once. The clients' exit (a last flush within `shutdown_timeout`, then a log
line saying how many events were left) runs at the lifespan shutdown, or
without a lifespan when the last request running ends (the others deliver
what they captured before they return).

`identify=` examples (it receives a `RequestInfo`):

```python
identify=lambda info: info.headers.get("x-user-email")   # a trusted proxy header
identify=lambda info: info.scope.get("session", {}).get("email")  # SessionMiddleware
def from_auth(info):                                       # AuthenticationMiddleware
    user = info.scope.get("user")
    return getattr(user, "email", None) if getattr(user, "is_authenticated", False) else None
```

For `scope["session"]` / `scope["user"]`, Starlette's `SessionMiddleware` /
`AuthenticationMiddleware` set them; when they run inside this middleware the
value appears only after the app ran, which the end-of-request retry of
`identify=` covers. Inside a view, `bento_track.identify(email)` sets the
identity for the rest of the request (async and sync views alike).

Route templates come from Starlette's `scope["route"]` (FastAPI too), so
rules are written like the routes: `"GET /users/{user_id}"`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._capture.context import RequestContext, request_var
from ._capture.rules import DEFAULT_STATUS, CaptureFn, CaptureRules, IdentifyFn
from .integrations.sigterm import (
    after_request,
    chain_sigterm,
    lifespan_ended,
    lifespan_started,
    request_finished,
    request_started,
)

if TYPE_CHECKING:
    from .client import Client

__all__ = ["BentoMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BentoMiddleware:
    """Pure ASGI middleware: request context, identity, and rule-based events.

    Args:
        app: the ASGI application to wrap.
        client: the `Client` events go to (default: the process default
            client, `bento_track.get_client()`).
        events: `{"METHOD /route": "event.type"}` rules (see `bento_track._rules`).
        capture: `RequestInfo -> None | str | dict | Event`, called after
            every request.
        status: which statuses let `events` rules fire (default 2xx and 3xx).
        identify: `RequestInfo -> email | None`.
        facts: put request facts in the details of the events made here.
        attach_facts: also give request facts to events tracked in the request.
        track_exceptions: event type tracked when the app raises.
        request_id_header: the header holding the request id.

    Raises:
        ConfigurationError: an option is malformed (the message names it).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: ASGIApp,
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
            where="BentoMiddleware",
            asgi=True,
            route_of=route_template,
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self.app(scope, receive, self._lifespan_send(send))
            else:
                await self.app(scope, receive, send)
            return
        chain_sigterm()  # cheap when done; uvicorn --lifespan off has no startup
        rules = self._rules
        ctx = RequestContext(None, scope["method"], scope["path"])
        token = request_var.set(ctx)

        def send_status(message: Message) -> Awaitable[None]:
            # A plain function returning `send`'s awaitable: no extra coroutine.
            if message["type"] == "http.response.start":
                ctx.status = message["status"]
            return send(message)

        started = perf_counter()
        request_started()
        try:
            rules.begin(ctx, scope)
            try:
                await self.app(scope, receive, send_status)
            except Exception as exc:
                rules.finish(ctx, exc, ctx.status or 500, started)
                raise
            rules.finish(ctx, None, ctx.status, started)
        finally:
            request_var.reset(token)
            if request_finished():  # SIGTERM, no lifespan: deliver before exiting
                await after_request()

    def _lifespan_send(self, send: Send) -> Send:
        client = self.client

        async def lifespan_send(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                chain_sigterm()
                lifespan_started()
            elif kind == "lifespan.shutdown.complete":
                await lifespan_ended(client)
            await send(message)

        return lifespan_send


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The template of the route the framework matched (Starlette and FastAPI
    put it in `scope["route"]`), prefixed by any `Mount` path; None if unknown."""
    route = scope.get("route")
    if route is None:
        return None
    kind = type(route)
    templated = _TEMPLATED.get(kind)
    if templated is None:
        # A Mount (it has sub-routes) has no template of its own: it is in the
        # scope only when nothing inside it matched.
        templated = _TEMPLATED[kind] = isinstance(
            getattr(route, "path", None), str
        ) and not hasattr(kind, "routes")
    if not templated:
        return None
    path: str = route.path
    if "app_root_path" in scope:  # inside a Mount: prefix the mount's path
        root: str = scope.get("root_path", "")
        app_root: str = scope["app_root_path"]
        if root != app_root and root.startswith(app_root):
            return root[len(app_root) :] + path
    return path


#: route classes seen, and whether they carry a template (a per-class fact,
#: not per-request state)
_TEMPLATED: dict[type, bool] = {}
