"""`install()` in process: eager tasks run in the caller's context, and the
publish hook puts (only) a present identity in the headers."""

from __future__ import annotations

from typing import Any

from celery import Celery

import bento_track
from bento_track._capture.context import RequestContext, request_var
from bento_track.integrations.celery import HEADER, _on_publish, install


def test_eager_tasks_keep_the_callers_identity(bento_events: Any) -> None:
    app = Celery("units", broker="memory://", backend="cache+memory://")
    app.conf.task_always_eager = True
    install(app)
    install(app)  # once is enough; again is harmless

    @app.task
    def work() -> bool:
        return bento_track.track("eager.ran") is not None

    token = request_var.set(RequestContext("ann@example.com", "POST", "/x"))
    try:
        assert work.delay().get() is True
    finally:
        request_var.reset(token)

    assert [(e.type, e.email) for e in bento_events] == [
        ("eager.ran", "ann@example.com")
    ]


def test_publish_hook_adds_only_a_present_identity() -> None:
    headers: dict[str, Any] = {HEADER: "stale@example.com"}
    _on_publish(headers=headers)
    assert HEADER not in headers
    token = request_var.set(RequestContext("bo@example.com", "GET", "/"))
    try:
        _on_publish(headers=headers)
    finally:
        request_var.reset(token)
    assert headers[HEADER] == "bo@example.com"
