"""`BentoDjangoMiddleware` for Django: the core rule engine and identity, fed with
what Django knows (the resolved URL pattern, `request.user`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation

from ..._capture.context import RequestContext, request_var
from ..._capture.request_info import RequestInfo
from ..._capture.rules import DEFAULT_STATUS, CaptureRules, compile_events
from ..._internal import library_section, logger
from ...errors import ConfigurationError
from ..sigterm import chain_sigterm, flush_all, terminating
from .identity import (
    NOT_LOADED,
    email_of_user,
    in_event_loop,
    loaded_user,
    request_email,
)
from .options import load_options

__all__ = ["BentoDjangoMiddleware", "route_of_request"]

WHERE = "bento_track Django middleware"

#: the Django request being handled (for `identify` and the route)
_request: ContextVar[Any] = ContextVar("bento_track_django_request", default=None)
#: what the async path found before the rules asked (set on the request)
_PRESET = "_bento_track_identity"


def route_of_request(request: Any) -> str | None:
    """The route of the URL pattern Django resolved, as a rule names it:
    `"/orders/<int:pk>/"` (includes joined); None before resolution or when
    nothing matched."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    return "/" + route if isinstance(route, str) else None


def _route_of(source: Any) -> str | None:
    return route_of_request(_request.get())


class BentoDjangoMiddleware:
    """Turns Django requests into Bento events (`BENTO_TRACK["events"]`) and
    gives each request its user's identity. Sync and async capable: under
    ASGI it runs in the event loop, with no thread hop of its own.

    Place it after `AuthenticationMiddleware`.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        options = load_options()
        self._identify = options.identify or request_email
        self._default_identify = options.identify is None
        middleware = options.middleware
        try:
            self._rules = CaptureRules(
                where=WHERE,
                asgi=False,
                route_of=_route_of,
                client=None,
                events=middleware.get("events"),
                capture=None,
                status=middleware.get("status", DEFAULT_STATUS),
                identify=self._identify_info,
                facts=middleware.get("facts", True),
                attach_facts=middleware.get("attach_facts", False),
                track_exceptions=None,
                request_id_header=middleware.get("request_id_header", "x-request-id"),
            )
            table, wild = compile_events(middleware.get("events"))
        except ConfigurationError as exc:
            raise ImproperlyConfigured(f"BENTO_TRACK: {exc}") from exc
        methods = {method for method, _ in table} | set(wild)
        #: methods whose requests need the identity when they start (a rule
        #: may fire: a logout event names who logged out); None: all
        self._eager: frozenset[str] | None = (
            None if "*" in methods else frozenset(methods)
        )

    # -- sync (WSGI, or a sync chain) -------------------------------------------

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        ctx = RequestContext(None, request.method or "GET", request.path_info)
        token = request_var.set(ctx)
        current = _request.set(request)
        rules = self._rules
        started = perf_counter()
        try:
            rules.begin(ctx, request.META)
            try:
                response = self.get_response(request)
            except Exception as exc:
                rules.finish(ctx, exc, 500, started)
                raise
            rules.finish(ctx, None, response.status_code, started)
            return response
        finally:
            _request.reset(current)
            request_var.reset(token)

    # -- async (ASGI) ---------------------------------------------------------------

    async def _acall(self, request: Any) -> Any:
        # Django's ASGI handler has no lifespan shutdown to flush at, and
        # uvicorn runs no atexit hook after SIGTERM: flush on SIGTERM.
        chain_sigterm()
        ctx = RequestContext(None, request.method or "GET", request.path_info)
        token = request_var.set(ctx)
        current = _request.set(request)
        rules = self._rules
        started = perf_counter()
        try:
            eager = self._eager
            if eager is None or ctx.method in eager:
                # Queries may be needed: do them now, awaited, so the rules'
                # call below finds the answer without one.
                await self._preload(request)
            rules.begin(ctx, request.META)
            try:
                response = await self.get_response(request)
            except Exception as exc:
                rules.finish(ctx, exc, 500, started)
                raise
            rules.finish(ctx, None, response.status_code, started)
            if terminating():  # the server is draining: deliver this one now
                await asyncio.to_thread(flush_all)
            return response
        finally:
            _request.reset(current)
            request_var.reset(token)

    async def _preload(self, request: Any) -> None:
        try:
            if self._default_identify:
                auser: Callable[[], Awaitable[Any]] | None = getattr(
                    request, "auser", None
                )
                if auser is not None and loaded_user(request) is NOT_LOADED:
                    await auser()
                return
            try:
                email = self._identify(request)
            except SynchronousOnlyOperation:
                email = await sync_to_async(self._identify)(request)
            setattr(request, _PRESET, email)
        except Exception:
            # Reported by the rules when they ask (below, in `_identify_info`).
            return

    # -- identity, as the rule engine asks for it ------------------------------------

    def _identify_info(self, info: RequestInfo) -> str | None:
        request = _request.get()
        if request is None:
            return None
        preset = request.__dict__.pop(_PRESET, NOT_LOADED)
        if preset is not NOT_LOADED:
            return preset  # type: ignore[no-any-return]
        if not in_event_loop():
            return self._identify(request)
        # In the event loop (an async view, or the end of an ASGI request):
        # only what needs no query.
        if self._default_identify:
            user = loaded_user(request)
            if user is NOT_LOADED:
                _no_identity_yet()
                return None
            return email_of_user(user)
        try:
            return self._identify(request)
        except SynchronousOnlyOperation:
            _no_identity_yet()
            return None


def _no_identity_yet() -> None:
    with library_section():
        logger.debug(
            "bento_track: the user is not loaded in this async view; "
            "`await request.auser()` first, or pass email= to track()"
        )
