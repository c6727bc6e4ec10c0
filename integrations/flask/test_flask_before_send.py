"""`app.config["BENTO_TRACK"]["before_send"]` as a dotted path, served by
wsgiref on loopback to the emulator: the hook decides by the request."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import flask
import httpx
import pytest

import bento_track
from bento_track import ConfigurationError
from bento_track.integrations.flask import BentoTrack
from bento_track.testing import use_default_client

from ..conftest import wait_until

HOOKS = """
import bento_track


def before_send(event):
    request = bento_track.current_request()
    if request is not None and request.header("x-internal") == "1":
        return None
    return event.replace(fields={"release": "2026.12"})
"""


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_before_send_from_the_app_config(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flask_hooks.py").write_text(textwrap.dedent(HOOKS))
    monkeypatch.syspath_prepend(str(tmp_path))
    app = flask.Flask(__name__)
    app.config["BENTO_TRACK"] = {
        **emulator.client_kwargs(),
        "before_send": "flask_hooks.before_send",
        "flush_interval": 0.05,
        "events": {"POST /signup": "account.signup"},
        "identify": lambda: flask.request.headers.get("x-user-email"),
    }

    @app.post("/signup")
    def signup() -> str:
        return "ok"

    placeholder = bento_track.Client(disabled=True, environ={})
    with use_default_client(placeholder):
        BentoTrack(app)  # init()s the default client with the hook
        server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/signup"
            who = {"x-user-email": "ann@example.com"}
            with httpx.Client(trust_env=False, timeout=10) as http:
                http.post(url, headers={**who, "x-internal": "1"})
                http.post(url, headers=who)
            wait_until(lambda: emulator.inspect.events(), 20, "the event")
            assert bento_track.flush(10)
            stats = bento_track.stats()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
    placeholder.shutdown(0)

    events = emulator.inspect.events()
    assert [(e["type"], e["fields"]) for e in events] == [
        ("account.signup", {"release": "2026.12"})
    ]
    assert stats.dropped == {"filtered": 1}


def test_a_before_send_that_cannot_be_imported() -> None:
    app = flask.Flask(__name__)
    app.config["BENTO_TRACK"] = {"before_send": "no_such_module.hook"}
    with pytest.raises(ConfigurationError) as info:
        BentoTrack(app)
    assert info.value.setting == "before_send"
