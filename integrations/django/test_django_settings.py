"""`settings.BENTO_TRACK` mistakes and the middleware-order check, in a
fresh Python per case (Django's settings are configured once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = """
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "bento_track.integrations.django"],
    MIDDLEWARE={middleware!r},
    BENTO_TRACK={options!r},
    DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}},
)
try:
    django.setup()
    from django.core import checks
    from bento_track.integrations.django import BentoDjangoMiddleware
    BentoDjangoMiddleware(lambda request: None)
    print("CHECKS", sorted(m.id for m in checks.run_checks() if m.id.startswith("bento")))
except Exception as exc:
    print("ERROR", type(exc).__name__, exc)
"""
GOOD_ORDER = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "bento_track.integrations.django.BentoDjangoMiddleware",
]


def run(options: dict[str, object], middleware: list[str] = GOOD_ORDER) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(SCRIPT).format(options=options, middleware=middleware),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"evnets": {}},
            "ERROR ImproperlyConfigured BENTO_TRACK: unknown option(s) evnets",
        ),
        (
            {"events": {"POST signup": "x"}},
            "ERROR ImproperlyConfigured BENTO_TRACK: events key",
        ),
        (
            {"identify": "no.such.thing"},
            "ERROR ImproperlyConfigured BENTO_TRACK['identify']",
        ),
        (
            {"flush_interval": 0},
            "ERROR ImproperlyConfigured BENTO_TRACK: flush_interval",
        ),
        ({"events": {"GET /": "home"}, "auth_events": True}, "CHECKS []"),
    ],
)
def test_settings(options: dict[str, object], expected: str) -> None:
    if "flush_interval" in options:  # client options apply only with credentials
        options = {
            **options,
            "site_uuid": "s",
            "publishable_key": "p",
            "secret_key": "k",
        }
    assert run(options).startswith(expected)


def test_middleware_before_authentication_is_reported() -> None:
    wrong = [GOOD_ORDER[0], GOOD_ORDER[2], GOOD_ORDER[1]]
    assert run({}, wrong) == "CHECKS ['bento_track.W002']"
    assert run({}, GOOD_ORDER[:2]) == "CHECKS ['bento_track.W001']"


OLD_NAME = """
import warnings
import django
from django.conf import settings

OLD = "bento_track.integrations.django.BentoMiddleware"
settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "bento_track.integrations.django"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware", OLD],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
)
django.setup()
from django.core import checks
from django.utils.module_loading import import_string
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    middleware = import_string(OLD)  # as Django loads MIDDLEWARE
print(middleware.__name__, [w.category.__name__ for w in caught])
print(sorted(m.id for m in checks.run_checks() if m.id.startswith("bento")))
"""


def test_the_old_middleware_name_works_with_a_deprecation_warning() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    result = subprocess.run(
        [sys.executable, "-c", OLD_NAME],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "BentoDjangoMiddleware ['DeprecationWarning']",
        "['bento_track.W003']",
    ]
