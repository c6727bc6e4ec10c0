"""`BentoHandler`: tagged records become events, untagged ones do not, and
nothing loops."""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest

import bento_track
from bento_track import signals
from bento_track._capture.context import RequestContext, enter_request, exit_request
from bento_track.logging import BentoHandler

from .conftest import Failures, Recorder


@pytest.fixture
def log(recorder: Recorder) -> Iterator[logging.Logger]:
    logger = logging.getLogger("tests.capture.app")
    handler = BentoHandler(logging.INFO, client=recorder.client)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.removeHandler(handler)


def test_tagged_records_become_events(recorder: Recorder, log: logging.Logger) -> None:
    """Dict, string and True tags; details derived from the record."""
    log.info(
        "upgraded to %s",
        "pro",
        extra={
            "bento": {
                "type": "plan.upgraded",
                "email": "ann@example.com",
                "fields": {"plan": "pro"},
                "details": {"from": "free"},
            }
        },
    )
    log.warning("payment failed", extra={"bento": {"email": "b@example.com"}})
    log.info("short", extra={"bento": "short.form"})
    log.info("untagged")
    log.debug("below the threshold", extra={"bento": "debug.event"})

    first, second = recorder.events[:2]

    assert ["plan.upgraded", "log.warning"] == recorder.types()
    assert {"plan": "pro"} == first.fields
    assert {
        "level": "INFO",
        "logger": "tests.capture.app",
        "message": "upgraded to pro",
        "from": "free",
    } == first.details
    assert "b@example.com" == second.email


def test_identity_from_request_context(recorder: Recorder, log: logging.Logger) -> None:
    """No email in the tag: the request's identity (and facts when asked)."""
    ctx = RequestContext("req@example.com", "POST", "/pay", attach_facts=True)
    token = enter_request(ctx)
    try:
        log.error("card declined", extra={"bento": "payment.declined"})
        try:
            raise ValueError("bad card")
        except ValueError:
            log.exception("charge crashed", extra={"bento": True})
    finally:
        exit_request(token)

    declined, crashed = recorder.events
    details = crashed.details or {}

    assert ("payment.declined", "req@example.com") == (declined.type, declined.email)
    assert "/pay" == (declined.details or {})["path"]
    assert "log.error" == crashed.type
    assert {"type": "ValueError", "message": "bad card"} == details["exception"]
    assert "traceback" not in details


def test_traceback_on_request_and_custom_type(recorder: Recorder) -> None:
    """`include_traceback=True` and `event_type=` templates."""
    handler = BentoHandler(
        client=recorder.client, include_traceback=True, event_type="app.{level}"
    )
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "m", None, None)
    try:
        raise KeyError("k")
    except KeyError:
        import sys

        record.exc_info = sys.exc_info()
    record.bento = {"email": "t@example.com"}
    handler.handle(record)

    [event] = recorder.events

    assert "app.error" == event.type
    assert "KeyError" in (event.details or {})["traceback"]


def test_ignored_loggers_and_guard(recorder: Recorder, failures: Failures) -> None:
    """Records from delivery's loggers and from inside the library are never
    forwarded; a receiver that logs a tagged record does not recurse."""
    handler = BentoHandler(client=recorder.client)
    root = logging.getLogger()
    root.addHandler(handler)
    calls: list[int] = []

    def chatty(sender: Any, **_: Any) -> None:
        calls.append(1)
        logging.getLogger("tests.capture.chatty").warning(
            "captured", extra={"bento": "loop.event"}
        )

    try:
        for name in ("httpx", "httpcore.http11", "bento_track.worker", "urllib3"):
            logging.getLogger(name).warning(
                "x", extra={"bento": {"email": "a@example.com"}}
            )
        with signals.event_captured.connected_to(chatty, sender=recorder.client):
            logging.getLogger("tests.capture.outer").warning(
                "outer", extra={"bento": {"type": "outer", "email": "o@example.com"}}
            )
    finally:
        root.removeHandler(handler)

    # the record logged by the receiver, inside the handler's own emit, is
    # skipped by the thread-local guard: no second event, no recursion
    assert ["outer"] == recorder.types()
    assert [1] == calls


def test_bad_tags_are_reported(recorder: Recorder, failures: Failures) -> None:
    """Malformed tags are counted and logged, never raised."""
    handler = BentoHandler(client=recorder.client)
    for tag in ({"typo": 1}, 42, {"type": "x", "email": "nope"}):
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "m", None, None)
        record.bento = tag
        handler.handle(record)

    assert 3 == failures.invalid
    assert [] == recorder.events


def test_dict_config() -> None:
    """`logging.config.dictConfig` builds it from plain settings."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "bento": {
                    "class": "bento_track.logging.BentoHandler",
                    "level": "WARNING",
                    "event_type": "svc.{level}",
                }
            },
            "loggers": {"tests.capture.dict": {"handlers": ["bento"]}},
        }
    )
    logger = logging.getLogger("tests.capture.dict")
    [handler] = logger.handlers
    logger.removeHandler(handler)

    assert isinstance(handler, BentoHandler)
    assert logging.WARNING == handler.level
    assert "svc.{level}" == handler.event_type
    assert bento_track.BentoHandler is BentoHandler
