"""Per-request and per-task context carried in `contextvars`.

A middleware installs a mutable `RequestContext` at the start of a request;
`identify(email)` anywhere in the request (even in a thread-pool view, which
runs in a copy of the context) writes into that same object, so the
middleware sees the identity when the response is done. Outside a request,
`identify()` binds the email to the current context only.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestContext", "bind_email", "current_email", "current_request"]


@dataclass(slots=True)
class RequestContext:
    """What is known about the request being handled (mutable, one per request)."""

    email: str | None = None
    method: str = ""
    path: str = ""
    route: str | None = None
    status: int | None = None
    duration_ms: float | None = None
    request_id: str | None = None
    user_agent: str | None = None
    #: request facts events tracked inside the request carry in `details`
    extra: dict[str, Any] = field(default_factory=dict)
    #: whether events tracked during the request get the request facts
    attach_facts: bool = False

    def facts(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.route is not None:
            out["route"] = self.route
        if self.status is not None:
            out["status"] = self.status
        if self.duration_ms is not None:
            out["duration_ms"] = round(self.duration_ms, 3)
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.user_agent is not None:
            out["user_agent"] = self.user_agent
        out.update(self.extra)
        return out


_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "bento_track_request", default=None
)
_email: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bento_track_email", default=None
)


def current_request() -> RequestContext | None:
    return _request.get()


def enter_request(ctx: RequestContext) -> contextvars.Token[RequestContext | None]:
    return _request.set(ctx)


def exit_request(token: contextvars.Token[RequestContext | None]) -> None:
    _request.reset(token)


def bind_email(email: str) -> None:
    """Set the identity for the current request (if any) and context."""
    ctx = _request.get()
    if ctx is not None:
        ctx.email = email
    _email.set(email)


def current_email() -> str | None:
    ctx = _request.get()
    if ctx is not None and ctx.email is not None:
        return ctx.email
    return _email.get()
