"""Django: settings, one app and one middleware, WSGI and ASGI alike.

```python
INSTALLED_APPS += ["bento_track.integrations.django"]
MIDDLEWARE += ["bento_track.integrations.django.BentoDjangoMiddleware"]  # after AuthenticationMiddleware

BENTO_TRACK = {
    "events": {"POST /orders/<int:pk>/": "order.updated"},  # URL pattern routes or paths
    "auth_events": True,          # user.logged_in, user.logged_out, user.login_failed
    # "identify": "myproject.tracking.email_of",  # a callable of the request
    # and any `bento_track.Client` option: "flush_interval": 5, "strict": True, ...
}
```

Credentials come from the `BENTO_*` variables (or `BENTO_TRACK["site_uuid"]`
and friends). The identity of a request is `request.user.email` when the user
is authenticated, unless `identify` names another callable. Views call
`bento_track.track(...)` without `email=` and get it. The default client is
flushed when the process exits (gunicorn, uWSGI and uvicorn workers alike).

`EMAIL_BACKEND = "bento_track.integrations.django.EmailBackend"` sends
Django's mail as Bento transactional emails (see `.email`).

`BentoDjangoMiddleware` and `EmailBackend` are imported lazily so that listing the
app in `INSTALLED_APPS` does not import Django's request machinery early.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..extras import missing_framework

if TYPE_CHECKING:
    from .email import EmailBackend
    from .middleware import BentoDjangoMiddleware

__all__ = ["BentoDjangoMiddleware", "EmailBackend"]


#: the middleware's name before 0.2 (the ASGI middleware has the same name)
OLD_MIDDLEWARE_NAME = "BentoMiddleware"


def __getattr__(name: str) -> Any:
    if name == OLD_MIDDLEWARE_NAME:
        warnings.warn(
            "bento_track.integrations.django.BentoMiddleware is renamed "
            "BentoDjangoMiddleware (bento_track.BentoMiddleware is the ASGI "
            "middleware); change MIDDLEWARE to "
            '"bento_track.integrations.django.BentoDjangoMiddleware"',
            DeprecationWarning,
            stacklevel=2,
        )
        name = "BentoDjangoMiddleware"
    try:
        if name == "BentoDjangoMiddleware":
            from .middleware import BentoDjangoMiddleware

            return BentoDjangoMiddleware
        if name == "EmailBackend":
            from .email import EmailBackend

            return EmailBackend
    except ImportError as exc:
        raise missing_framework(exc, "django") from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
