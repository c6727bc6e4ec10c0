"""The Django app: reads `settings.BENTO_TRACK` when Django starts."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ...errors import ConfigurationError
from ..setup import configure_default_client
from .options import load_options

__all__ = ["BentoTrackConfig"]

MIDDLEWARE_PATH = "bento_track.integrations.django.BentoDjangoMiddleware"
#: the name before 0.2, kept as a deprecated alias
OLD_MIDDLEWARE_PATH = "bento_track.integrations.django.BentoMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


class BentoTrackConfig(AppConfig):  # type: ignore[misc]
    """Configures the default client from the `Client` options in
    `BENTO_TRACK` (if any; otherwise it is built from the `BENTO_*`
    variables on first use) and connects `auth_events` and `subscribers`."""

    name = "bento_track.integrations.django"
    label = "bento_track"
    verbose_name = "Bento"
    default = True

    def ready(self) -> None:
        """Called by Django at startup: read `BENTO_TRACK`, configure the
        default client, connect the auth and subscriber signals if asked,
        and register the middleware-order check. Raises
        `ImproperlyConfigured` for bad settings."""
        options = load_options()
        if options.client:
            configure_client(options.client)
        if options.auth_events:
            from . import auth

            auth.connect()
        if options.subscribers is not None:
            from . import subscribers

            subscribers.connect(subscribers.load_config(options.subscribers))
        checks.register(check_middleware_order)


def configure_client(options: dict[str, Any]) -> None:
    """`bento_track.init(**options)` (see `configure_default_client`)."""
    try:
        configure_default_client(options)
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"BENTO_TRACK: {exc}") from exc


def check_middleware_order(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """`BentoDjangoMiddleware` needs `request.user`: warn when it comes before
    `AuthenticationMiddleware` (or is missing)."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if OLD_MIDDLEWARE_PATH in middleware:
        return [
            checks.Warning(
                f"{OLD_MIDDLEWARE_PATH} is renamed {MIDDLEWARE_PATH} (the old "
                "name still works, with a DeprecationWarning)",
                hint=f'Write "{MIDDLEWARE_PATH}" in MIDDLEWARE.',
                id="bento_track.W003",
            )
        ]
    if MIDDLEWARE_PATH not in middleware:
        return [
            checks.Warning(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE: requests are not tracked",
                hint=f'MIDDLEWARE += ["{MIDDLEWARE_PATH}"]',
                id="bento_track.W001",
            )
        ]
    if AUTH_MIDDLEWARE in middleware and middleware.index(
        AUTH_MIDDLEWARE
    ) > middleware.index(MIDDLEWARE_PATH):
        return [
            checks.Warning(
                f"{MIDDLEWARE_PATH} comes before {AUTH_MIDDLEWARE}: requests have "
                "no user when it asks who they are",
                hint="Move it after AuthenticationMiddleware.",
                id="bento_track.W002",
            )
        ]
    return []
