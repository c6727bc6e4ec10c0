"""Flask: `BentoTrack(app, events=..., identify=...)`, or `init_app(app)`.

```python
from flask import Flask, session
from bento_track.integrations.flask import BentoTrack

app = Flask(__name__)
BentoTrack(
    app,
    events={
        "POST /items/<int:item_id>": "item.updated",   # a URL rule, as written in the route
        "POST signup": "account.signup",               # or an endpoint name
    },
    identify=lambda: session.get("email"),             # no arguments, in the request context
)
```

Options also come from `app.config["BENTO_TRACK"]` (arguments win): the
ones above, `status`, `facts`, `attach_facts`, `request_id_header`, `client`,
and any `bento_track.Client` option (`flush_interval`, `strict`, ...), which
configure the default client. `identify` may be a callable or its dotted
path, e.g. `lambda: current_user.email if current_user.is_authenticated else
None` with Flask-Login.

The app's WSGI callable is wrapped by the core `BentoWSGIMiddleware` (rules,
request context, facts); `identify` runs in `before_request` when an event
rule may fire for the request (so a logout event names who logged out),
else only when something needs the identity (a `track()` without `email=`
in a view), and once more in `after_request` when a rule fires and no one
was found yet (a login view). Endpoint rules are resolved to their URL rules
when the first request arrives, as Flask allows no new routes after that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .extras import missing_framework

try:
    from flask import Flask, Response, has_request_context, request
    from werkzeug.utils import import_string
except ImportError as exc:
    raise missing_framework(exc, "flask") from None

from .._capture.build import report_invalid
from .._capture.context import RequestContext, request_var
from .._capture.rules import DEFAULT_STATUS, compile_events, compile_status
from .._internal import internal_error
from ..client import Client
from ..errors import ConfigurationError, InvalidEventError
from ..events import validate_email
from ..wsgi import BentoWSGIMiddleware
from .setup import configure_default_client, split_client_options

__all__ = ["BentoTrack"]

WHERE = "BentoTrack (Flask)"
EXTENSION = "bento_track"
OPTIONS = frozenset(
    {
        "events",
        "identify",
        "client",
        "status",
        "facts",
        "attach_facts",
        "request_id_header",
    }
)

IdentifyFn = Callable[[], "str | None"]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BentoTrack:
    """Wires a Flask app: events from its requests, identity from `identify`.

    Args:
        app: the app (or call `init_app(app)` later, e.g. in a factory).
        events: `{"METHOD /url/<rule>": type}` or `{"METHOD endpoint": type}`
            (`"/rule"` or `"endpoint"` alone: any method).
        identify: a callable of no arguments returning the request's email
            (or None), run inside the request context.
        client: the `Client` events go to (default: the process default).
        status, facts, attach_facts, request_id_header: as for
            `BentoWSGIMiddleware`.

    Raises:
        ConfigurationError: an option is malformed (at `init_app`), or an
            endpoint rule names no endpoint (at the first request).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        events: Mapping[str, str] | None = None,
        identify: IdentifyFn | str | None = None,
        client: Client | None = None,
        status: object = DEFAULT_STATUS,
        facts: bool | None = None,
        attach_facts: bool | None = None,
        request_id_header: str | None = None,
    ) -> None:
        given: dict[str, object] = {
            "events": events,
            "identify": identify,
            "client": client,
            "facts": facts,
            "attach_facts": attach_facts,
            "request_id_header": request_id_header,
        }
        self._given = {k: v for k, v in given.items() if v is not None}
        if status is not DEFAULT_STATUS:  # None is a value here: every status
            self._given["status"] = status
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Wire `app` (once; a second call for the same app does nothing)."""
        if EXTENSION in app.extensions:
            return
        configured = app.config.get("BENTO_TRACK") or {}
        if not isinstance(configured, Mapping):
            raise ConfigurationError(
                'app.config["BENTO_TRACK"] must be a dict of bento_track options',
                setting="BENTO_TRACK",
            )
        client_options, own = split_client_options(configured)
        unknown = sorted(str(k) for k in own if k not in OPTIONS)
        if unknown:
            raise ConfigurationError(
                f'app.config["BENTO_TRACK"]: unknown option(s) {", ".join(unknown)}',
                setting="BENTO_TRACK",
            )
        options = {**own, **self._given}
        if isinstance(client_options.get("before_send"), str):
            client_options["before_send"] = _imported(
                "before_send", client_options["before_send"]
            )
        configure_default_client(client_options)
        state = _AppState(app, options)
        app.extensions[EXTENSION] = state
        app.wsgi_app = state.wrap(app.wsgi_app)  # type: ignore[method-assign,assignment]
        app.before_request(state.before_request)
        app.after_request(state.after_request)
        app.teardown_request(state.teardown_request)


def _imported(setting: str, path: str) -> Any:
    """The object a dotted-path option names."""
    try:
        return import_string(path)
    except ImportError as exc:
        raise ConfigurationError(
            f"{setting}: cannot import {path!r}: {exc}", setting=setting
        ) from exc


def _identify_option(value: object) -> IdentifyFn | None:
    if isinstance(value, str):
        value = _imported("identify", value)
    if value is not None and not callable(value):
        raise ConfigurationError(
            "identify must be a callable of no arguments (or its dotted path)",
            setting="identify",
        )
    return value


def _is_path_rule(key: object) -> bool:
    parts = key.split() if isinstance(key, str) else []
    target = parts[-1] if parts else ""
    return target == "*" or target.startswith("/")


class _AppState:
    """One app's wiring (kept in `app.extensions["bento_track"]`)."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.app = app
        self.identify = _identify_option(options.get("identify"))
        self.client: Client | None = options.get("client")
        self.status = options.get("status", DEFAULT_STATUS)
        self._status_ok = compile_status(self.status)
        self.facts = options.get("facts", True)
        self.attach_facts = options.get("attach_facts", False)
        self.request_id_header = options.get("request_id_header", "x-request-id")
        events = options.get("events") or {}
        if not isinstance(events, Mapping):
            compile_events(events)  # raises the engine's own message
        self._path_events = {k: v for k, v in events.items() if _is_path_rule(k)}
        self._endpoint_events = {
            k: v for k, v in events.items() if not _is_path_rule(k)
        }
        for key in self._endpoint_events:
            if not isinstance(key, str) or not 1 <= len(key.split()) <= 2:
                raise ConfigurationError(
                    f'events key {key!r} must be "METHOD /rule", "METHOD endpoint", '
                    '"/rule" or "endpoint"',
                    setting="events",
                )
        # Checked now (a bad key or type fails at init_app, not later).
        compile_events(self._path_events)
        self._table: dict[tuple[str, str], str] = {}
        self._wild: dict[str, str] = {}
        self._middleware: BentoWSGIMiddleware | None = None
        self._lock = threading.Lock()
        self._inner: WSGIApp | None = None

    # -- the WSGI side -----------------------------------------------------------------

    def wrap(self, inner: WSGIApp) -> WSGIApp:
        self._inner = inner
        if not self._endpoint_events:
            self._build()
        return self

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        middleware = self._middleware
        if middleware is None:
            middleware = self._build()
        return middleware(environ, start_response)

    def _build(self) -> BentoWSGIMiddleware:
        """The middleware, endpoint rules resolved against the URL map."""
        with self._lock:
            if self._middleware is not None:
                return self._middleware
            events = dict(self._path_events)
            for key, event_type in self._endpoint_events.items():
                parts = key.split()
                method, endpoint = (
                    (parts[0], parts[1]) if len(parts) == 2 else ("", key)
                )
                try:
                    rules = list(self.app.url_map.iter_rules(endpoint=endpoint))
                except KeyError:
                    rules = []
                if not rules:
                    raise ConfigurationError(
                        f"events key {key!r}: the app has no endpoint {endpoint!r}",
                        setting="events",
                    )
                for rule in rules:
                    resolved = f"{method} {rule.rule}".strip()
                    if resolved in events and events[resolved] != event_type:
                        raise ConfigurationError(
                            f"events key {key!r} repeats the rule {resolved!r}",
                            setting="events",
                        )
                    events[resolved] = event_type
            assert self._inner is not None
            middleware = BentoWSGIMiddleware(
                self._inner,
                client=self.client,
                events=events,
                status=self.status,
                identify=None,  # asked in the request context (below)
                facts=self.facts,
                attach_facts=self.attach_facts,
                request_id_header=self.request_id_header,
            )
            self._table, self._wild = compile_events(events)
            self._middleware = middleware
            return middleware

    # -- the request context side ---------------------------------------------------------

    def _may_fire(self, ctx: RequestContext, status: int | None = None) -> bool:
        """Whether an event rule matches this request (and its status)."""
        if status is not None and not self._status_ok(status):
            return False
        table, method, route, path = self._table, ctx.method, ctx.route, ctx.path
        if route is not None and ((method, route) in table or ("*", route) in table):
            return True
        if (method, path) in table or ("*", path) in table:
            return True
        return method in self._wild or "*" in self._wild

    def before_request(self) -> None:
        ctx = request_var.get()
        if ctx is None:
            return
        rule = request.url_rule
        if rule is not None:
            ctx.route = rule.rule
        if self.identify is None:
            return
        if self._may_fire(ctx):
            ctx.asked = 1
            self.resolve(ctx)
        else:
            ctx.resolver = self  # asked when something needs the identity

    def after_request(self, response: Response) -> Response:
        ctx = request_var.get()
        if (
            ctx is not None
            and self.identify is not None
            and ctx.email is None
            and ctx.asked < 2
            and self._may_fire(ctx, response.status_code)
        ):
            ctx.asked = 2  # a login view: its new session names the user
            self.resolve(ctx)
        return response

    def teardown_request(self, error: BaseException | None) -> None:
        ctx = request_var.get()
        if ctx is not None and ctx.resolver is self:
            ctx.resolver = None  # `identify` needs the request context

    def resolve(self, ctx: RequestContext) -> None:
        """Ask `identify` (inside the request context only) into `ctx.email`."""
        if self.identify is None or not has_request_context():
            return
        try:
            email = self.identify()
        except Exception:
            ctx.asked = 2
            internal_error(f"{WHERE} identify")
            return
        if email is None:
            return
        try:
            ctx.email = validate_email(email, "identify()")
        except InvalidEventError as exc:
            ctx.asked = 2
            report_invalid(f"{WHERE} identify", exc, self.client)
