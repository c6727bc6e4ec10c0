"""`track_event`: a decorator that tracks a Bento event when a function runs.

```python
@track_event("invoice.paid", email=lambda call: call["user"].email,
             fields=lambda call: {"amount": call.result.total})
def pay(user, invoice): ...
```

Option values are constants or callables. A callable receives one argument,
a `Call`: `call["name"]` / `call.arguments` (the call's arguments bound to
the function's parameters, defaults applied, `self`/`cls` included),
`call.args` / `call.kwargs` (as passed), `call.result` (on success),
`call.error` (the exception, on error), `call.function`. An omitted `email`
falls back to the identity of the current request or context (see
`bento_track.identify`).

`when` is `"success"` (default: after a normal return), `"error"` (after an
exception) or `"always"`. The decorated function's return value and
exceptions are never changed: building or capturing the event happens after
the call, and any failure in it (an option callable that raises, invalid
event data) is counted and logged on the `bento_track` logger, never raised.

Works on functions, methods, classmethods, staticmethods and `async def`
functions and methods (built on `wrapt`, so `inspect.signature`, docstrings
and `inspect.iscoroutinefunction` survive). Put `@track_event` *outside*
`@classmethod` / `@staticmethod` (either order works, outside is the one
wrapt documents). `enabled=False` (or a callable returning False, checked at
each call) turns it off; `enabled=False` at decoration time returns the
function itself, unwrapped.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import wrapt

from ._capture.build import capture_event, configured_type
from ._capture.context import current_request
from ._internal import internal_error
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .client import Client

__all__ = ["WHEN_VALUES", "Call", "track_event"]

#: allowed values of `when=`
WHEN_VALUES = ("success", "error", "always")

F = TypeVar("F", bound=Callable[..., Any])
_MISSING: Any = object()


class Call:
    """One call of a decorated function, as option callables see it."""

    __slots__ = (
        "_arguments",
        "args",
        "error",
        "function",
        "instance",
        "kwargs",
        "result",
    )

    def __init__(
        self,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any = None,
        error: BaseException | None = None,
        instance: Any = None,
    ) -> None:
        self.function = function
        #: the object (or class) a method was called on, else None
        self.instance = instance
        self.args = args
        self.kwargs = kwargs
        self.result = result
        self.error = error
        self._arguments: dict[str, Any] | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        """Arguments by parameter name, defaults applied (bound lazily, once)."""
        if self._arguments is None:
            function, args = self.function, self.args
            if inspect.ismethod(function):  # bound: give `self`/`cls` a name too
                args = (function.__self__, *args)
                function = function.__func__
            elif self.instance is not None:  # `Class.method(obj, ...)`
                # wrapt passes a partial with `obj` applied: bind the function
                function = getattr(function, "__wrapped__", function)
                args = (self.instance, *args)
            try:
                bound = inspect.signature(function).bind(*args, **self.kwargs)
                bound.apply_defaults()
                self._arguments = dict(bound.arguments)
            except (TypeError, ValueError):  # a call that did not bind
                self._arguments = dict(self.kwargs)
        return self._arguments

    def __getitem__(self, name: str) -> Any:
        return self.arguments[name]

    def __repr__(self) -> str:
        return (
            f"Call(function={getattr(self.function, '__qualname__', self.function)!r})"
        )


def track_event(
    type: str | Callable[[Call], str],
    *,
    email: str | Callable[[Call], str | None] | None = None,
    fields: Mapping[str, Any]
    | Callable[[Call], Mapping[str, Any] | None]
    | None = None,
    details: Mapping[str, Any]
    | Callable[[Call], Mapping[str, Any] | None]
    | None = None,
    when: str = "success",
    enabled: bool | Callable[[], bool] = True,
    client: Client | None = None,
) -> Callable[[F], F]:
    """Track a `type` event each time the decorated function returns (or
    raises, see `when`).

    Args:
        type: the event type (or a callable of the `Call` giving it).
        email: the user's email, or a callable of the `Call`; None uses the
            current request's (or context's) identity.
        fields: flat Bento fields, or a callable giving them.
        details: event details, or a callable giving them. When the request
            middleware has `attach_facts=True`, the request facts are added.
        when: `"success"`, `"error"` or `"always"`.
        enabled: False to turn tracking off (a callable is checked per call).
        client: the `Client` to use (default: the process default client).

    Raises:
        ConfigurationError: `when` or `type` is malformed.

    .. versionadded:: 0.1.0
    """
    if when not in WHEN_VALUES:
        raise ConfigurationError(
            f"when must be one of {', '.join(WHEN_VALUES)}, not {when!r}",
            setting="when",
        )
    if not callable(type):
        type = configured_type(type, setting="type", label="track_event")
    on_success = when != "error"
    on_error = when != "success"
    where = f"@track_event({type!r})" if isinstance(type, str) else "@track_event"

    def emit(
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        error: BaseException | None,
    ) -> None:
        try:
            call = Call(wrapped, args, kwargs, result, error, instance)
            event_type = type(call) if callable(type) else type
            user_details = details(call) if callable(details) else details
            ctx = current_request()
            trusted = ctx.facts() if ctx is not None and ctx.attach_facts else None
            capture_event(
                client,
                event_type,
                email=email(call) if callable(email) else email,
                fields=fields(call) if callable(fields) else fields,
                details=user_details,
                trusted=trusted,
                where=where,
            )
        except Exception:  # an option callable failed
            internal_error(where)

    @wrapt.decorator(enabled=enabled)
    def sync_wrapper(
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            if on_error and isinstance(exc, Exception):
                emit(wrapped, instance, args, kwargs, None, exc)
            raise
        if on_success:
            emit(wrapped, instance, args, kwargs, result, None)
        return result

    @wrapt.decorator(enabled=enabled)
    def async_wrapper(
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        async def run() -> Any:
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                if on_error and isinstance(exc, Exception):
                    emit(wrapped, instance, args, kwargs, None, exc)
                raise
            if on_success:
                emit(wrapped, instance, args, kwargs, result, None)
            return result

        return run()

    def decorate(func: F) -> F:
        target = getattr(func, "__func__", func)  # classmethod / staticmethod
        if inspect.iscoroutinefunction(target):
            return async_wrapper(func)  # type: ignore[return-value]
        return sync_wrapper(func)  # type: ignore[return-value]

    return decorate
