"""`bento_track.testing` and the pytest plugin users get with the package.

The user-facing checks run a user's own test file in a fresh pytest process
(the plugin loaded through its `pytest11` entry point, no `BENTO_*` variables
set), as a user's suite would; the other runners (unittest, Django's) run in
a fresh interpreter where pytest cannot be imported, as where it is not
installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bento_track
from bento_track import InvalidEventError
from bento_track.client import live_clients
from bento_track.testing import capture_events

USER_TESTS = """
import threading

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import bento_track
from bento_track import BentoMiddleware, Event, InvalidEventError


def signup(request):
    bento_track.track("welcome.shown", details={"step": 1})
    return PlainTextResponse("ok", status_code=201)


app = Starlette(routes=[Route("/signup", signup, methods=["POST"])])
app.add_middleware(
    BentoMiddleware,
    events={"POST /signup": "account.signup"},
    identify=lambda info: info.header("x-email"),
)


def test_events_of_a_request(bento_events):
    assert bento_events == []
    with TestClient(app) as http:
        http.post("/signup", headers={"x-email": "ann@example.com"})
    assert [e.type for e in bento_events] == ["welcome.shown", "account.signup"]
    assert all(isinstance(e, Event) for e in bento_events)
    assert {e.email for e in bento_events} == {"ann@example.com"}
    assert bento_events[0].details == {"step": 1}


def test_empty_at_start_and_any_client(bento_events):
    assert bento_events == []
    mine = bento_track.Client(disabled=True)
    mine.track("from.mine", email="b@example.com")
    thread = threading.Thread(
        target=bento_track.track, args=("from.thread",), kwargs={"email": "c@example.com"}
    )
    thread.start()
    thread.join()
    assert bento_events.types() == ["from.mine", "from.thread"]


def test_invalid_track_raises(bento_events):
    with pytest.raises(InvalidEventError, match="fields.plan"):
        bento_track.track("x.y", email="a@example.com", fields={"plan": {"nested": 1}})
    with pytest.raises(InvalidEventError, match="email"):
        bento_track.track("no.identity")


def test_invalid_track_fails_the_test(bento_events):
    bento_track.track("bad", email="not-an-email")
"""


def run_user_suite(
    tmp_path: Path, source: str, *args: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user_app.py").write_text(textwrap.dedent(source))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BENTO_", "PYTEST_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_users_suite_with_no_credentials(tmp_path: Path) -> None:
    """Three tests pass with no `BENTO_*` set; the invalid `track()` fails the
    fourth, at the line that tracked it."""
    result = run_user_suite(tmp_path, USER_TESTS)
    out = result.stdout + result.stderr

    assert result.returncode == 1, out
    assert "3 passed, 1 failed" in out or "1 failed, 3 passed" in out, out
    assert "FAILED test_user_app.py::test_invalid_track_fails_the_test" in out, out
    assert 'bento_track.track("bad", email="not-an-email")' in out, out
    assert "InvalidEventError" in out, out


def test_the_emulator_fixture_takes_the_http_path(tmp_path: Path) -> None:
    source = """
    import bento_track

    def test_delivered(emulator):
        bento_track.track("order.paid", email="ann@example.com", fields={"plan": "pro"})
        assert bento_track.flush(10)
        [event] = emulator.inspect.events()
        assert event["type"] == "order.paid"
        assert event["fields"] == {"plan": "pro"}

    def test_reset_between_tests(emulator):
        assert emulator.inspect.events() == []
        client = bento_track.Client()  # from the BENTO_* variables the fixture set
        client.track("from.env", email="b@example.com")
        assert client.flush(10)
        assert [e["type"] for e in emulator.inspect.events()] == ["from.env"]
    """
    result = run_user_suite(tmp_path, source)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_capture_restores_what_it_changed() -> None:
    """The default client, every client's strict flag and `BENTO_STRICT` are
    as they were after the block; events by any client were collected."""
    before = bento_track.get_client()
    mine = bento_track.Client(disabled=True)
    strict_before = {id(c): c.strict for c in live_clients()}
    env_before = os.environ.get("BENTO_STRICT")

    with capture_events() as events:
        assert bento_track.get_client() is not before
        assert mine.strict
        bento_track.track("a.b", email="a@example.com")
        mine.track("c.d", email="c@example.com")
        with pytest.raises(InvalidEventError):
            mine.track("e.f", email="nope")
        assert bento_track.Client(disabled=True).strict  # built from the env
        assert os.environ["BENTO_STRICT"] == "1"

    assert ["a.b", "c.d"] == events.types()
    assert bento_track.get_client() is before
    assert os.environ.get("BENTO_STRICT") == env_before
    assert {
        id(c): c.strict for c in live_clients() if id(c) in strict_before
    } == strict_before
    mine.shutdown(0)


def test_the_plugin_is_registered() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("bento_track") == "_bento_track_pytestplugin"


def test_a_run_that_uses_no_fixture_never_imports_bento_track(tmp_path: Path) -> None:
    """The plugin is loaded (its fixtures listed) yet bento_track is not
    imported until a test asks for one of them."""
    source = """
    import sys

    def test_unrelated():
        assert "_bento_track_pytestplugin" in sys.modules
        assert not [m for m in sys.modules if m.split(".")[0] == "bento_track"]
    """
    result = run_user_suite(tmp_path, source)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = run_user_suite(tmp_path, source, "--fixtures")
    for fixture in ("bento_events", "emulator", "bento_emulator_server"):
        assert f"{fixture} -- " in listed.stdout or fixture in listed.stdout
    off = run_user_suite(tmp_path, source, "-p", "no:bento_track")
    assert "1 failed" in off.stdout  # the plugin module is not loaded at all


NO_PYTEST = """
import sys

# As if pytest were not installed: any import of it fails.
sys.modules["pytest"] = None
sys.modules["_pytest"] = None
"""

UNITTEST_TESTS = """
import threading
import unittest

import bento_track
from bento_track import InvalidEventError
from bento_track.testing import capture_events


class TrackingTests(unittest.TestCase):
    def test_events_of_any_client_and_thread(self):
        with capture_events() as events:
            bento_track.track("report.exported", email="ann@example.com")
            mine = bento_track.Client(disabled=True)
            thread = threading.Thread(
                target=mine.track, args=("from.thread",), kwargs={"email": "b@example.com"}
            )
            thread.start()
            thread.join()
            mine.shutdown(0)
        self.assertEqual(events.types(), ["report.exported", "from.thread"])
        self.assertEqual(events[0].email, "ann@example.com")

    def test_strict_inside_the_block(self):
        with capture_events():
            with self.assertRaisesRegex(InvalidEventError, "email"):
                bento_track.track("no.identity")


unittest.main(argv=["unittest", "-v"])
"""


def run_without_pytest(
    folder: Path, script: str, **files: str
) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    (folder / "run.py").write_text(NO_PYTEST + textwrap.dedent(script))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BENTO_", "PYTEST_"))
    }
    return subprocess.run(
        [sys.executable, "run.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_capture_events_under_unittest_without_pytest(tmp_path: Path) -> None:
    result = run_without_pytest(tmp_path, UNITTEST_TESTS)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Ran 2 tests" in out and "OK" in out, out


DJANGO_URLS = """
from django.http import HttpResponse
from django.urls import path


def email_of(request):
    return request.headers.get("x-user-email")


def update_item(request, pk):
    return HttpResponse(f"item {pk}")


urlpatterns = [path("items/<int:pk>/", update_item)]
"""

DJANGO_TESTS = """
from django.test import SimpleTestCase

from bento_track.testing import capture_events


class ItemTests(SimpleTestCase):
    def test_a_rule_event_is_captured(self):
        with capture_events() as events:
            response = self.client.post(
                "/items/3/", HTTP_X_USER_EMAIL="ann@example.com"
            )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(events.types(), ["item.updated"])
        self.assertEqual(events[0].email, "ann@example.com")
        self.assertEqual(events[0].details["route"], "/items/<int:pk>/")
"""

DJANGO_RUNNER = """
import django
from django.conf import settings

settings.configure(
    SECRET_KEY="tests-only",
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF="urls",
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "bento_track.integrations.django",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "bento_track.integrations.django.BentoDjangoMiddleware",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    BENTO_TRACK={
        "events": {"POST /items/<int:pk>/": "item.updated"},
        "identify": "urls.email_of",
    },
)
django.setup()

from django.test.utils import get_runner  # what `manage.py test` runs

failures = get_runner(settings)(verbosity=2).run_tests(["test_items"])
sys.exit(1 if failures else 0)
"""


def test_capture_events_under_djangos_test_runner_without_pytest(
    tmp_path: Path,
) -> None:
    result = run_without_pytest(
        tmp_path,
        DJANGO_RUNNER,
        **{"urls.py": DJANGO_URLS, "test_items.py": DJANGO_TESTS},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "test_a_rule_event_is_captured" in out and "OK" in out, out


def test_flasks_test_client_sees_rule_events_with_the_buffered_line() -> None:
    """Werkzeug's test client leaves the body unread, and the WSGI middleware
    makes a request's rule event when its response ends: nothing until the
    body is read or closed. The README's one line (`buffered=True` for every
    request of the client) makes the event there when `post()` returns."""
    import functools

    from flask import Flask

    from bento_track.integrations.flask import BentoTrack

    app = Flask(__name__)
    BentoTrack(
        app,
        events={"POST /items/<int:item_id>": "item.updated"},
        identify=lambda: "ann@example.com",
    )
    app.add_url_rule(
        "/items/<int:item_id>",
        "item",
        lambda item_id: {"item": item_id},
        methods=["POST"],
    )

    with capture_events() as events:
        plain = app.test_client()
        response = plain.post("/items/3")
        assert events.types() == []  # the body was never read
        response.close()
        assert events.types() == ["item.updated"]

        client = app.test_client()
        client.open = functools.partial(client.open, buffered=True)  # the README's line
        client.post("/items/4")
        assert events.types() == ["item.updated", "item.updated"]
        client.post("/items/5", follow_redirects=True)
        assert len(events) == 3
    assert [e.details["path"] for e in events] == ["/items/3", "/items/4", "/items/5"]
