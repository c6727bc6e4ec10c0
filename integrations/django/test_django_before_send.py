"""`BENTO_TRACK["before_send"]` as a dotted path, under gunicorn: the hook
reads the request (`bento_track.current_request()`) to drop internal
callers' events and tags the others with the release; secrets in the
details arrive scrubbed."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx

from ..conftest import BIN, free_port, server_env, wait_until

SITE = """
import bento_track
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path


def email_of(request):
    return request.headers.get("x-user-email")


def before_send(event):
    request = bento_track.current_request()
    if request is not None and request.header("x-internal") == "1":
        return None
    return event.replace(details={**(event.details or {}), "release": "2026.12"})


def signup(request):
    bento_track.track("account.created", details={"api_key": "k-123", "plan": "pro"})
    return HttpResponse("ok")


urlpatterns = [path("signup/", signup)]

settings.configure(
    SECRET_KEY="not-secret",
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF="hooksite",
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "bento_track.integrations.django",
    ],
    MIDDLEWARE=["bento_track.integrations.django.BentoDjangoMiddleware"],
    BENTO_TRACK={
        "events": {"POST /signup/": "account.signup"},
        "identify": "hooksite.email_of",
        "before_send": "hooksite.before_send",
        "flush_interval": 0.05,
    },
)
application = get_wsgi_application()
"""


def test_before_send_by_dotted_path(
    emulator: Any, servers: Any, tmp_path: Path
) -> None:
    (tmp_path / "hooksite.py").write_text(textwrap.dedent(SITE))
    port = free_port()
    site = servers(
        [
            str(BIN / "gunicorn"),
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "hooksite:application",
        ],
        env=server_env(emulator),
        cwd=tmp_path,
        log=tmp_path / "gunicorn.log",
        url=f"http://127.0.0.1:{port}",
    )
    site.wait_http("/signup/")
    with httpx.Client(base_url=site.url, trust_env=False, timeout=10) as http:
        who = {"x-user-email": "ann@example.com"}
        assert http.post("/signup/", headers={**who, "x-internal": "1"}).text == "ok"
        assert http.post("/signup/", headers=who).text == "ok"
    wait_until(lambda: len(emulator.inspect.events()) >= 2, 20, "two events")
    assert site.stop() == 0, site.output()

    events = {e["type"]: e for e in emulator.inspect.events()}
    assert sorted(events) == ["account.created", "account.signup"]
    assert all(e["email"] == "ann@example.com" for e in events.values())
    assert all(e["details"]["release"] == "2026.12" for e in events.values())
    assert events["account.created"]["details"]["api_key"] == "[Filtered]"
    assert events["account.created"]["details"]["plan"] == "pro"
    assert len(emulator.inspect.events()) == 2  # the internal caller's: dropped


def test_a_before_send_that_cannot_be_imported_is_refused_at_startup() -> None:
    from .test_django_settings import run

    assert run({"before_send": "no.such.hook"}).startswith(
        "ERROR ImproperlyConfigured BENTO_TRACK['before_send']: cannot import"
    )
