"""The rule engine both middlewares share: which requests become events, who
the user is, and what the events say.

Options (the same names on `BentoMiddleware` and `BentoWSGIMiddleware`):

- `events={"POST /signup": "account.signup"}`: a request whose method and
  route template (or, when the framework names no template, its path) match
  a key becomes an event of that type. Keys are `"METHOD /template"`,
  `"/template"` (any method) or `"METHOD *"` (any path); matching is exact,
  by dict lookup, so a thousand rules cost what one does.
- `status=`: which response statuses let an `events=` rule fire. Default
  `("2xx", "3xx")` (a failed signup is not a signup). Classes (`"2xx"`),
  codes (`201`), ranges (`"200-299"`), a comma-separated string or a list of
  those, a callable `status -> bool`, or None for every status.
- `capture=`: a callable `RequestInfo -> None | str | dict | Event`, called
  after every request (whatever the status) for anything richer than a
  lookup: return None for no event, an event type, a dict with `type` and
  optional `email`, `fields`, `details`, or a built `Event`.
- `identify=`: a callable `RequestInfo -> str | None` giving the user's email.
  It is asked when the request starts if an event may come of it (a rule for
  its method, `capture=`, `track_exceptions=`), so a logout event names the
  user who logged out; other requests ask it only when something first needs
  an identity (a `track()` without email in the view). If it gave None, it is
  asked once more at the end (so a login view's new session counts).
- `facts=True`: rule, `capture=` and `track_exceptions=` events carry the
  request facts in `details` (method, path, route, status, duration_ms, and
  request_id / user_agent when the request has them).
- `attach_facts=False`: events tracked *inside* the request (decorators,
  tagged log records) carry the request facts too.
- `track_exceptions=None`: an event type to track when the app raises; its
  details carry the facts and an `exception` summary (type and message).
- `request_id_header="x-request-id"`: where the request id comes from.

Requests whose rule needs an email that nobody provided are skipped (counted
in `anonymous_skipped`, logged at DEBUG): anonymous traffic is normal. Any
other problem (a callable that raises, invalid data) is counted and logged on
the `bento_track` logger; it never reaches the request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .._internal import Counter, internal_error, library_section, logger
from ..errors import ConfigurationError, InvalidEventError
from ..events import Event, validate_email
from .build import (
    capture_event,
    configured_type,
    exception_summary,
    report_invalid,
    resolve_client,
)
from .context import RequestContext
from .request_info import RequestInfo

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "DEFAULT_STATUS",
    "CaptureRules",
    "anonymous_skipped",
    "compile_events",
    "compile_status",
]

DEFAULT_STATUS: tuple[str, ...] = ("2xx", "3xx")
_CAPTURE_KEYS = frozenset({"type", "email", "fields", "details"})
_METHOD = re.compile(r"^[A-Z]+$|^\*$")
_STATUS_PART = re.compile(r"^([1-5])xx$|^(\d{3})(?:-(\d{3}))?$")

StatusFilter = Callable[[int], bool]
IdentifyFn = Callable[[RequestInfo], "str | None"]
CaptureFn = Callable[[RequestInfo], Any]

#: rule events skipped because the request had no identity
anonymous_skipped = Counter()


def compile_events(
    events: Mapping[str, str] | None,
) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """`events=` as `{(METHOD, template): type}` plus `{METHOD: type}` for
    `"METHOD *"` keys; any method is `"*"`.

    Raises:
        ConfigurationError: a key or an event type is malformed.
    """
    table: dict[tuple[str, str], str] = {}
    wild: dict[str, str] = {}
    if events is None:
        return table, wild
    if not isinstance(events, Mapping):
        raise ConfigurationError(
            'events must be a dict such as {"POST /signup": "account.signup"}',
            setting="events",
        )
    for key, event_type in events.items():
        parts = key.split() if isinstance(key, str) else []
        if len(parts) == 1:
            parts = ["*", parts[0]]
        method, target = (parts[0].upper(), parts[1]) if len(parts) == 2 else ("", "")
        if not _METHOD.match(method) or not (target == "*" or target[:1] == "/"):
            raise ConfigurationError(
                f'events key {key!r} must be "METHOD /route", "/route" or '
                '"METHOD *" (e.g. "POST /signup")',
                setting="events",
            )
        checked = configured_type(
            event_type, setting="events", label=f"events[{key!r}]"
        )
        slot = (method, target)
        if (slot in table) or (target == "*" and method in wild):
            raise ConfigurationError(
                f"events key {key!r} repeats another rule", setting="events"
            )
        if target == "*":
            wild[method] = checked
        else:
            table[slot] = checked
    return table, wild


def compile_status(status: object) -> StatusFilter:
    """`status=` as a predicate on the response status.

    Raises:
        ConfigurationError: the filter is malformed.
    """
    if status is None:
        return _any_status
    if callable(status):
        return status
    parts: Iterable[object]
    if isinstance(status, str):
        parts = status.split(",")
    elif isinstance(status, int):
        parts = [status]
    elif isinstance(status, Iterable):
        parts = status
    else:
        parts = [object()]
    allowed: set[int] = set()
    for part in parts:
        text = str(part).strip().lower()
        match = _STATUS_PART.match(text) if not isinstance(part, bool) else None
        if match is None:
            raise ConfigurationError(
                f'status filter {part!r} is not a status class ("2xx"), code '
                '(201) or range ("200-299"); pass None for every status',
                setting="status",
            )
        klass, low, high = match.groups()
        if klass:
            allowed.update(range(int(klass) * 100, int(klass) * 100 + 100))
        else:
            allowed.update(range(int(low), int(high or low) + 1))
    return frozenset(allowed).__contains__


def _any_status(status: int) -> bool:
    return True


def _check_callable(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise ConfigurationError(f"{name} must be a callable or None", setting=name)


class CaptureRules:
    """Compiled middleware options, and what happens at a request's start and
    end. Immutable after construction: nothing is kept between requests."""

    __slots__ = (
        "_eager_methods",
        "_has_rules",
        "_rid_bytes",
        "_rid_environ",
        "_route_of",
        "_status_ok",
        "_table",
        "_wild",
        "asgi",
        "attach_facts",
        "capture",
        "client",
        "facts",
        "identify",
        "may_capture",
        "track_exceptions",
        "where",
    )

    def __init__(
        self,
        *,
        where: str,
        asgi: bool,
        route_of: Callable[[Mapping[str, Any]], str | None],
        client: Client | None,
        events: Mapping[str, str] | None,
        capture: CaptureFn | None,
        status: object,
        identify: IdentifyFn | None,
        facts: bool,
        attach_facts: bool,
        track_exceptions: str | None,
        request_id_header: str,
    ) -> None:
        self.where = where
        self.asgi = asgi
        self._route_of = route_of
        self.client = client
        self._table, self._wild = compile_events(events)
        self._has_rules = bool(self._table or self._wild)
        self._status_ok = compile_status(status)
        _check_callable("capture", capture)
        _check_callable("identify", identify)
        self.capture = capture
        self.identify = identify
        self.facts = bool(facts)
        self.attach_facts = bool(attach_facts)
        if track_exceptions is not None:
            track_exceptions = configured_type(
                track_exceptions, setting="track_exceptions", label="track_exceptions"
            )
        self.track_exceptions = track_exceptions
        #: methods whose requests ask `identify=` at the start (None: all), as
        #: their events may need the identity; routes are not known yet
        self._eager_methods: frozenset[str] | None
        if capture is not None or track_exceptions is not None or "*" in self._wild:
            self._eager_methods = None
        else:
            methods = {method for method, _ in self._table} | set(self._wild)
            self._eager_methods = None if "*" in methods else frozenset(methods)
        #: whether any request can produce an event or attach request facts
        #: (else the route is never needed)
        self.may_capture = bool(
            self._has_rules
            or capture is not None
            or track_exceptions is not None
            or self.attach_facts
        )
        header = str(request_id_header).strip().lower()
        self._rid_bytes = header.encode("latin-1")
        self._rid_environ = "HTTP_" + header.upper().replace("-", "_")

    # -- request start ------------------------------------------------------------

    def begin(self, ctx: RequestContext, source: Mapping[str, Any]) -> None:
        """Call at request start, context entered. `identify=` is asked now
        when an event of this request may need the identity (so a logout
        event names the user who logged out); otherwise only when something
        first needs it (a `track()` without email in the view)."""
        ctx.source = source
        try:
            if self.attach_facts:
                ctx.attach_facts = True
                self._read_headers(ctx, source)
            if self.identify is not None:
                ctx.resolver = self
                eager = self._eager_methods
                if eager is None or ctx.method in eager:
                    ctx.asked = 1
                    self.resolve(ctx)
        except Exception:
            internal_error(self.where)

    def request_info(self, ctx: RequestContext) -> RequestInfo:
        """The request's `RequestInfo`, made on first use."""
        info: RequestInfo | None = ctx.info
        if info is None:
            if self.asgi:
                info = ctx.info = RequestInfo(ctx, ctx.source)
            else:
                info = ctx.info = RequestInfo(ctx, None, ctx.source)
        return info

    def resolve(self, ctx: RequestContext) -> None:
        """Ask `identify=` for the request's email (into `ctx.email`). Callers
        set `ctx.asked` first (1: may ask again at the end, for a login view's
        new session; 2: the last time), so a callable that itself needs the
        identity, or another thread of the request, never asks twice at once.
        A raising callable or a malformed email is reported and not retried."""
        assert self.identify is not None
        try:
            email = self.identify(self.request_info(ctx))
        except Exception:
            ctx.asked = 2
            internal_error(f"{self.where} identify=")
            return
        if email is None:
            return
        try:
            ctx.email = validate_email(email, "identify()")
        except InvalidEventError as exc:
            ctx.asked = 2
            report_invalid(f"{self.where} identify=", exc, self.client)

    def _read_headers(self, ctx: RequestContext, source: Mapping[str, Any]) -> None:
        if self.asgi:
            rid = self._rid_bytes
            for name, value in source.get("headers") or ():
                if name == b"user-agent":
                    ctx.user_agent = value.decode("latin-1")
                elif name == rid:
                    ctx.request_id = value.decode("latin-1")
        else:
            ctx.user_agent = source.get("HTTP_USER_AGENT")
            ctx.request_id = source.get(self._rid_environ)

    # -- request end ----------------------------------------------------------------

    def finish(
        self,
        ctx: RequestContext,
        error: BaseException | None,
        status: int | None,
        started: float,
    ) -> None:
        """Call when the app is done, context still entered, with the response
        status and the `perf_counter()` of the start. Never raises.

        The duration and route are worked out only when something will use
        them: most requests match no rule and end here after a lookup.
        """
        try:
            ctx.status = status
            event_type = None
            source = ctx.source
            if self._has_rules and status is not None and self._status_ok(status):
                route = ctx.route
                if route is None:
                    route = ctx.route = self._route_of(source)
                if route is not None:
                    event_type = self._table.get((ctx.method, route))
                if event_type is None:
                    event_type = self._match_further(ctx.method, route, ctx.path)
            failed = error is not None and self.track_exceptions is not None
            if event_type is None and not failed and self.capture is None:
                return
            # Whole microseconds, in float arithmetic: `round(x, 3)` or `int()`
            # cost more than the rest of this.
            ctx.duration_ms = (perf_counter() - started) * 1e6 // 1 / 1000
            if ctx.route is None:
                ctx.route = self._route_of(source)
            if ctx.email is None and ctx.asked < 2 and self.identify is not None:
                ctx.asked = 2
                self.resolve(ctx)
            facts: dict[str, Any] | None = None
            if self.facts:
                if not self.attach_facts:
                    self._read_headers(ctx, source)
                facts = ctx.facts()
            if event_type is not None:
                self._emit(ctx, event_type, facts)
            if failed:
                assert error is not None and self.track_exceptions is not None
                extra = dict(facts) if facts else {}
                extra["exception"] = exception_summary(error)
                self._emit(ctx, self.track_exceptions, extra)
            if self.capture is not None:
                self._run_capture(ctx, error, facts)
        except Exception:
            internal_error(self.where)
        finally:
            # The request is over: tasks it started may keep the context (and
            # this object) alive, but not the scope or environ, and no later
            # `track()` asks `identify=` about a finished request.
            ctx.resolver = ctx.source = ctx.info = None

    def _match_further(self, method: str, route: str | None, path: str) -> str | None:
        """The rule for a request whose `(method, route)` has none: any
        method on its route, then its raw path, then `"METHOD *"` rules."""
        table = self._table
        if route is not None:
            found = table.get(("*", route))
            if found is not None:
                return found
        if route != path:
            found = table.get((method, path)) or table.get(("*", path))
            if found is not None:
                return found
        wild = self._wild
        return wild.get(method) or wild.get("*") if wild else None

    def _emit(
        self, ctx: RequestContext, event_type: str, facts: dict[str, Any] | None
    ) -> None:
        if ctx.email is None:
            anonymous_skipped.add()
            with library_section():
                logger.debug(
                    "bento_track: %s: %s %s has no identity; %r not tracked",
                    self.where,
                    ctx.method,
                    ctx.path,
                    event_type,
                )
            return
        # The fast path of `capture_event`: the type was checked when the rules
        # were compiled, the facts are plain JSON built here, and the request's
        # email was validated when it was set (`identify()` or `identify=`).
        event = Event(event_type, ctx.email, None, facts)
        client = self.client
        (client if client is not None else resolve_client(None)).capture(
            event, where=self.where
        )

    def _run_capture(
        self,
        ctx: RequestContext,
        error: BaseException | None,
        facts: dict[str, Any] | None,
    ) -> None:
        assert self.capture is not None
        where = f"{self.where} capture="
        info = self.request_info(ctx)
        info.error = error
        try:
            result = self.capture(info)
        except Exception:
            internal_error(where)
            return
        if result is None:
            return
        if isinstance(result, Event):
            try:
                resolve_client(self.client).capture(result, where=where)
            except Exception:
                internal_error(where)
        elif isinstance(result, str):
            capture_event(
                self.client,
                result,
                email=ctx.email,
                trusted=dict(facts) if facts else None,
                where=where,
            )
        elif isinstance(result, Mapping):
            unknown = set(result) - _CAPTURE_KEYS
            if unknown:
                report_invalid(
                    where,
                    InvalidEventError(
                        f"unknown keys {sorted(map(str, unknown))}; use type, "
                        "email, fields, details"
                    ),
                    self.client,
                )
                return
            capture_event(
                self.client,
                result.get("type"),  # type: ignore[arg-type]
                email=result.get("email") or ctx.email,
                fields=result.get("fields"),
                details=result.get("details"),
                trusted=dict(facts) if facts else None,
                where=where,
            )
        else:
            report_invalid(
                where,
                InvalidEventError(
                    "must return None, an event type, a dict or an Event, not "
                    f"{type(result).__name__}"
                ),
                self.client,
            )
