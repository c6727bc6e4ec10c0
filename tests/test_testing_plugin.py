"""`bento_track.testing`: the pytest plugin users get with the package.

The user-facing checks run a user's own test file in a fresh pytest process
(the plugin loaded through its `pytest11` entry point, no `BENTO_*` variables
set), as a user's suite would."""

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
    assert names.get("bento_track") == "bento_track.testing"
