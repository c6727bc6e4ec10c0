"""Per-request and per-task context carried in `contextvars`.

A middleware installs a mutable `RequestContext` at the start of a request;
`identify(email)` anywhere in the request (even in a thread-pool view, which
runs in a copy of the context) writes into that same object, so the
middleware sees the identity when the response is done. Outside a request,
`identify()` binds the email to the current context only.
"""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = [
    "RequestContext",
    "bind_email",
    "current_email",
    "current_request",
    "enter_request",
    "exit_request",
    "request_var",
]


class RequestContext:
    """What is known about the request being handled (mutable, one per request).

    A plain slotted class rather than a dataclass: one is built per request, so
    its construction is on every request's path.
    """

    __slots__ = (
        "asked",
        "attach_facts",
        "duration_ms",
        "email",
        "info",
        "method",
        "path",
        "request_id",
        "resolver",
        "route",
        "source",
        "status",
        "user_agent",
    )

    def __init__(
        self,
        email: str | None = None,
        method: str = "",
        path: str = "",
        route: str | None = None,
        status: int | None = None,
        duration_ms: float | None = None,
        request_id: str | None = None,
        user_agent: str | None = None,
        attach_facts: bool = False,
    ) -> None:
        self.email = email
        self.method = method
        self.path = path
        self.route = route
        self.status = status
        self.duration_ms = duration_ms
        self.request_id = request_id
        self.user_agent = user_agent
        #: whether events tracked during the request get the request facts
        self.attach_facts = attach_facts
        #: the middleware's rules when it has an `identify=` callable, asked
        #: the first time an identity is needed (see `current_email`)
        self.resolver: Any = None
        #: the ASGI scope or WSGI environ, for `resolver`
        self.source: Any = None
        #: 0: `identify=` not asked yet; 1: it gave no email (ask once more at
        #: the end); 2: asked for the last time
        self.asked = 0
        #: the `RequestInfo` made for `identify=` / `capture=` (made once)
        self.info: Any = None

    def facts(self) -> dict[str, Any]:
        """The request facts as a `details` dict: method, path, route, status
        and duration_ms (None while unknown), then request_id and user_agent
        when the request has them."""
        # One literal, absent ones deleted after: cheaper than growing the dict.
        out: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "request_id": self.request_id,
            "user_agent": self.user_agent,
        }
        if self.request_id is None:
            del out["request_id"]
        if self.user_agent is None:
            del out["user_agent"]
        return out

    def __repr__(self) -> str:
        return (
            f"RequestContext(method={self.method!r}, path={self.path!r}, "
            f"route={self.route!r}, status={self.status!r}, email={self.email!r})"
        )


#: the request being handled; the middlewares set and reset it directly
#: (`enter_request`/`exit_request` cost a call each, on every request)
request_var: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "bento_track_request", default=None
)
_email: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bento_track_email", default=None
)


def current_request() -> RequestContext | None:
    """The context of the request being handled in this context, or None
    outside a request (or in a task that did not inherit one)."""
    return request_var.get()


def enter_request(ctx: RequestContext) -> contextvars.Token[RequestContext | None]:
    """Make `ctx` the current request; return the token `exit_request` needs
    to restore the previous one."""
    return request_var.set(ctx)


def exit_request(token: contextvars.Token[RequestContext | None]) -> None:
    """Restore the request that was current before the `enter_request` call
    that returned `token` (to be called in the same context)."""
    request_var.reset(token)


def bind_email(email: str) -> None:
    """Set the identity for the current request, or (outside a request) for the
    current context.

    Inside a request only the request object changes: a test client or server
    that runs several requests in one context must not carry one request's
    identity into the next, nor into the code around them.
    """
    ctx = request_var.get()
    if ctx is not None:
        ctx.email = email
    else:
        _email.set(email)


def current_email() -> str | None:
    """The identity of the current request; outside a request, the one bound
    to the current context (None if there is none)."""
    ctx = request_var.get()
    if ctx is not None:
        if ctx.email is None and ctx.resolver is not None and not ctx.asked:
            # The middleware's `identify=`, asked only when someone needs it;
            # claimed first, so it is never asked twice at once.
            ctx.asked = 1
            ctx.resolver.resolve(ctx)
        return ctx.email
    return _email.get()
