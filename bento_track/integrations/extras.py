"""The one-line error an integration raises when its framework is missing.

`import bento_track.integrations.flask` without Flask used to end in
`No module named 'flask'` (or `'asgiref'` for Django), with no word of what
to install. Each integration catches its framework's import and raises this
instead, naming the extra that brings it:

    ModuleNotFoundError: bento_track.integrations.flask needs Flask, which
    is not installed: pip install 'bento-track[flask]'

(one line). Still a `ModuleNotFoundError`, so `except ImportError` works as
before; an import error from inside an installed framework (a broken
install) is raised as it is, since installing the extra would not fix it.
"""

from __future__ import annotations

__all__ = ["FRAMEWORKS", "missing_framework"]

#: integration -> (what it needs, the extra that installs it, its top modules)
FRAMEWORKS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "flask": ("Flask", "flask", ("flask", "werkzeug")),
    "django": ("Django", "django", ("django", "asgiref")),
    "celery": ("Celery", "celery", ("celery", "kombu")),
    "prometheus": ("prometheus-client", "prometheus", ("prometheus_client",)),
    "opentelemetry": ("opentelemetry-api", "opentelemetry", ("opentelemetry",)),
}


def missing_framework(exc: ImportError, integration: str) -> ImportError:
    """The error to raise for `exc`, caught importing the framework of
    `integration` (a key of `FRAMEWORKS`): one naming the extra when the
    framework itself is not installed, else `exc` unchanged."""
    framework, extra, modules = FRAMEWORKS[integration]
    missing = (exc.name or "").partition(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or missing not in modules:
        return exc
    return ModuleNotFoundError(
        f"bento_track.integrations.{integration} needs {framework}, which is "
        f"not installed: pip install 'bento-track[{extra}]'",
        name=exc.name,
    )
