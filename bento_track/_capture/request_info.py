"""`RequestInfo`: a framework-neutral view of one request, handed to the
middlewares' `identify=` and `capture=` callables.

It is built only when such a callable is configured, and its headers, query
parameters and cookies are parsed on first access, so a request that nobody
asks about pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from .context import RequestContext, request_var

__all__ = ["Headers", "RequestInfo", "current_request_info"]


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively; repeated headers are
    joined with ", " (cookies with "; ")."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        items: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            if key in items:
                items[key] += ("; " if key == "cookie" else ", ") + value
            else:
                items[key] = value
        self._items = items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        # Header values may carry credentials (Authorization, Cookie).
        return f"Headers({sorted(self._items)!r})"


#: header name -> its ASGI / WSGI environ key (the few names `identify=` asks for)
_scope_keys: dict[str, bytes] = {}
_environ_keys: dict[str, str] = {}


class RequestInfo:
    """One request, as the `identify=` and `capture=` callables see it.

    Attributes:
        method: the HTTP method, upper case.
        path: the request path (ASGI `path`, WSGI `PATH_INFO`).
        route: the route template the framework matched (e.g. `/users/{id}`
            for Starlette/FastAPI, `/users/<int:id>` for Flask), or None when
            unknown (before the app ran, or a framework that does not say).
        status: the response status; None until the response started.
        duration_ms: time spent in the app; None until it returned.
        error: the exception the app raised, if any.
        email: the identity known so far.
        scope: the ASGI scope (ASGI only; e.g. `scope["session"]`,
            `scope["user"]` set by Starlette's middlewares).
        environ: the WSGI environ (WSGI only).
    """

    __slots__ = (
        "_cookies",
        "_ctx",
        "_headers",
        "_query",
        "environ",
        "error",
        "scope",
    )

    def __init__(
        self,
        ctx: RequestContext,
        scope: Mapping[str, Any] | None = None,
        environ: Mapping[str, Any] | None = None,
        error: BaseException | None = None,
    ) -> None:
        # Positional: a keyword call to a class builds a dict of them first.
        self._ctx = ctx
        self.scope = scope
        self.environ = environ
        self.error = error
        self._headers: Headers | None = None
        self._query: dict[str, str] | None = None
        self._cookies: dict[str, str] | None = None

    # The request facts are read from the live request context, so they are
    # current whenever a callable looks (status and duration at the end).
    @property
    def method(self) -> str:
        """The HTTP method as the server gave it, upper case (`"GET"`,
        `"POST"`, ...); never None."""
        return self._ctx.method

    @property
    def path(self) -> str:
        """The request path, percent-decoded and without the query string:
        ASGI `scope["path"]`, WSGI `PATH_INFO` (below any mount point), or
        Django's `request.path_info`. Never None; `""` if the server gave none.
        """
        return self._ctx.path

    @property
    def route(self) -> str | None:
        """The template of the route the framework matched, as event rules
        name it: `/users/{user_id}` (Starlette, FastAPI), `/users/<int:id>`
        (Flask, Django).

        None while unknown: in `identify=` during the request it is None
        except under Flask (the others resolve it at the end); in `capture=`
        it is None only when no route matched (a 404) or the framework does
        not say (a plain ASGI/WSGI app).
        """
        return self._ctx.route

    @property
    def status(self) -> int | None:
        """The response status code, or None until the app started its
        response (so usually None in `identify=`). Set in `capture=`: 500
        when the app raised before it responded."""
        return self._ctx.status

    @property
    def duration_ms(self) -> float | None:
        """Milliseconds the app took (whole microseconds), or None until the
        app returned: None in `identify=` asked during the request, set in
        `capture=` and when `identify=` is asked once more at the end."""
        return self._ctx.duration_ms

    @property
    def email(self) -> str | None:
        """The request's identity so far (a validated, stripped address),
        from `identify()` called during the request or an `identify=` answer;
        None while the request is anonymous. In `identify=` it is normally
        None, as that is the question being asked; in `capture=` it is the
        email an event returned without one is tracked for."""
        return self._ctx.email

    def header(self, name: str, default: str | None = None) -> str | None:
        """One header's value (the first, if repeated), found without parsing
        the others: the cheapest lookup, e.g. for `identify=`."""
        if self._headers is not None:
            return self._headers.get(name, default)
        if self.scope is not None:
            wanted = _scope_keys.get(name)
            if wanted is None:
                wanted = name.lower().encode("latin-1")
                if len(_scope_keys) < 256:
                    _scope_keys[name] = wanted
            for key, value in self.scope.get("headers") or ():
                if key == wanted:
                    return value.decode("latin-1")  # type: ignore[no-any-return]
            return default
        key = _environ_keys.get(name)
        if key is None:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            if len(_environ_keys) < 256:
                _environ_keys[name] = key
        found = (self.environ or {}).get(key)
        return default if found is None else str(found)

    @property
    def headers(self) -> Headers:
        """Request headers (case-insensitive)."""
        if self._headers is None:
            if self.scope is not None:
                raw = self.scope.get("headers") or ()
                self._headers = Headers(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in raw
                )
            else:
                self._headers = Headers(_environ_headers(self.environ or {}))
        return self._headers

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the first value of each name)."""
        if self._query is None:
            if self.scope is not None:
                raw = self.scope.get("query_string", b"").decode("latin-1")
            else:
                raw = (self.environ or {}).get("QUERY_STRING", "")
            out: dict[str, str] = {}
            for key, value in parse_qsl(raw, keep_blank_values=True):
                out.setdefault(key, value)
            self._query = out
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        """Request cookies (malformed cookie headers give an empty dict)."""
        if self._cookies is None:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(self.headers.get("cookie", ""))
            except CookieError:
                jar = SimpleCookie()
            self._cookies = {key: morsel.value for key, morsel in jar.items()}
        return self._cookies

    @property
    def client_host(self) -> str | None:
        """The peer address as the server reports it (proxies not resolved)."""
        if self.scope is not None:
            client = self.scope.get("client")
            return str(client[0]) if client else None
        host = (self.environ or {}).get("REMOTE_ADDR")
        return str(host) if host else None

    def __repr__(self) -> str:
        return (
            f"RequestInfo(method={self.method!r}, path={self.path!r}, "
            f"route={self.route!r}, status={self.status!r})"
        )


def _environ_headers(environ: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-"), str(value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            yield key.replace("_", "-"), str(value)


def current_request_info() -> RequestInfo | None:
    """The request being handled, as a `RequestInfo` (`bento_track.current_request()`),
    or None outside a request that one of bento_track's middlewares wraps.

    For `before_send` hooks and views: decide by path, user or header. The
    same object the middleware's `identify=` and `capture=` get; its headers,
    query and cookies are parsed on first access. After the request has
    ended (a task it started), the method, path, route and status remain,
    headers do not.
    """
    ctx = request_var.get()
    if ctx is None:
        return None
    info: RequestInfo | None = ctx.info
    if info is not None:
        return info
    source = ctx.source
    if source is None:  # the request is over: facts only
        return RequestInfo(ctx)
    # A WSGI environ always has REQUEST_METHOD (PEP 3333); an ASGI scope never.
    if "REQUEST_METHOD" in source:
        info = ctx.info = RequestInfo(ctx, None, source)
    else:
        info = ctx.info = RequestInfo(ctx, source)
    return info
