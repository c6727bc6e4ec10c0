"""`auth_events`: Django's login, logout and failed-login signals as events.

- `user.logged_in`: the user's email; the rest of the request is identified
  as that user too.
- `user.logged_out`: the email of the user who logged out.
- `user.login_failed`: the email typed, when what was typed is an email
  (the `email` credential, else the username); otherwise nothing, as a
  failed login with no address names nobody Bento knows.
"""

from __future__ import annotations

from typing import Any

from ..._capture.build import capture_event
from ..._capture.context import bind_email, current_request
from ...errors import InvalidEventError
from ...events import validate_email
from .identity import email_of_user

__all__ = ["LOGGED_IN", "LOGGED_OUT", "LOGIN_FAILED", "connect", "disconnect"]

LOGGED_IN = "user.logged_in"
LOGGED_OUT = "user.logged_out"
LOGIN_FAILED = "user.login_failed"
WHERE = "bento_track Django auth_events"


def _valid(email: object) -> str | None:
    try:
        return validate_email(email)
    except InvalidEventError:
        return None


def on_logged_in(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    """`user_logged_in` receiver: track `user.logged_in` for the user's email
    and identify the rest of the request as them; a user without a valid
    email is skipped."""
    email = _valid(email_of_user(user))
    if email is None:
        return
    if current_request() is not None:
        bind_email(email)
    capture_event(None, LOGGED_IN, email=email, where=WHERE)


def on_logged_out(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    """`user_logged_out` receiver: track `user.logged_out` for the email of
    the user who logged out (none for an anonymous user or no valid email)."""
    email = _valid(email_of_user(user))
    if email is not None:
        capture_event(None, LOGGED_OUT, email=email, where=WHERE)


def on_login_failed(
    sender: Any, credentials: Any = None, request: Any = None, **_: Any
) -> None:
    """`user_login_failed` receiver: track `user.login_failed` for the first
    valid email among the `email`, `USERNAME_FIELD` and `username`
    credentials; nothing when none is an email."""
    if not isinstance(credentials, dict):
        return
    from django.contrib.auth import get_user_model

    names = [
        "email",
        getattr(get_user_model(), "USERNAME_FIELD", "username"),
        "username",
    ]
    for name in names:
        email = _valid(credentials.get(name))
        if email is not None:
            capture_event(None, LOGIN_FAILED, email=email, where=WHERE)
            return


_UID = "bento_track.integrations.django.auth"


def connect() -> None:
    """Connect the receivers (idempotent)."""
    from django.contrib.auth.signals import (
        user_logged_in,
        user_logged_out,
        user_login_failed,
    )

    user_logged_in.connect(on_logged_in, dispatch_uid=_UID + ".in")
    user_logged_out.connect(on_logged_out, dispatch_uid=_UID + ".out")
    user_login_failed.connect(on_login_failed, dispatch_uid=_UID + ".failed")


def disconnect() -> None:
    """Disconnect the receivers `connect` added (harmless if not connected)."""
    from django.contrib.auth.signals import (
        user_logged_in,
        user_logged_out,
        user_login_failed,
    )

    user_logged_in.disconnect(dispatch_uid=_UID + ".in")
    user_logged_out.disconnect(dispatch_uid=_UID + ".out")
    user_login_failed.disconnect(dispatch_uid=_UID + ".failed")
