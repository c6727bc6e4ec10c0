"""Who the user of a Django request is, without touching the database from
the event loop.

`request.user` is a lazy object: reading it queries the session and user
tables, which Django refuses inside an event loop (`SynchronousOnlyOperation`).
So under ASGI the middleware loads the user with `await request.auser()` when
a request starts that an event rule may match, and later reads only what is
already loaded (the evaluated `request.user`, the user `login()` or
`logout()` put there, or what `auser()` cached). In a thread (WSGI, or a sync
view under ASGI) the user is simply read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.utils.functional import LazyObject, empty

__all__ = [
    "NOT_LOADED",
    "email_of_user",
    "loaded_user",
    "request_email",
    "in_event_loop",
]

#: `loaded_user`'s answer when the user is not loaded yet
NOT_LOADED: Any = object()


def email_of_user(user: Any) -> str | None:
    """The email of an authenticated user (its model's email field), else None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    name = "email"
    get_name = getattr(user, "get_email_field_name", None)
    if get_name is not None:
        try:
            name = get_name()
        except Exception:  # a custom user model's own bug: fall back
            name = "email"
    email = getattr(user, name, None)
    return email if isinstance(email, str) and email else None


def request_email(request: Any) -> str | None:
    """The default `identify`: `request.user.email` when authenticated."""
    return email_of_user(getattr(request, "user", None))


def loaded_user(request: Any) -> Any:
    """`request.user` if reading it needs no query, else `NOT_LOADED`."""
    found = request.__dict__
    user = found.get("user")
    if isinstance(user, LazyObject):
        wrapped = user._wrapped
        if wrapped is not empty:
            return wrapped
        for key in ("_acached_user", "_cached_user"):
            if key in found:
                return found[key]
        return NOT_LOADED
    return user


def in_event_loop() -> bool:
    """Whether this thread runs an event loop (where Django forbids queries)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
