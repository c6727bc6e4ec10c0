"""Fault injection over loopback: failures, slow answers, dropped
connections, 429 storms and rejected events, consumed in order."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from bento_track.emulator import EmulatorServer

from .conftest import bento_client

BODY = {"events": [{"type": "t", "email": "a@example.com"}]}


def statuses(emulator: EmulatorServer) -> list[int]:
    return [r["status"] for r in emulator.inspect.requests()]


def test_fail_next_with_status_retry_after_and_body(
    http: httpx.Client, emulator
) -> None:
    emulator.inspect.fail_next(1, status=503, retry_after=9, body={"error": "down"})
    emulator.inspect.fail_next(1, status=502, body="bad gateway")
    emulator.inspect.fail_next(1)

    first = http.post("/batch/events", json=BODY)
    second = http.post("/batch/events", json=BODY)
    third = http.post("/batch/events", json=BODY)
    fourth = http.post("/batch/events", json=BODY)

    assert (503, "9", {"error": "down"}) == (
        first.status_code,
        first.headers["retry-after"],
        first.json(),
    )
    assert (502, "bad gateway") == (second.status_code, second.text)
    assert "retry-after" not in second.headers
    assert (500, {"error": "Internal Server Error"}) == (
        third.status_code,
        third.json(),
    )
    assert 200 == fourth.status_code
    assert [503, 502, 500, 200] == statuses(emulator)
    assert 1 == len(emulator.inspect.events())


def test_faults_come_before_every_other_check(emulator: EmulatorServer) -> None:
    """A fault answers even a request with no User-Agent and no auth."""
    emulator.inspect.fail_next(1, status=500)
    with bento_client(emulator, auth=None, headers={"User-Agent": ""}) as http:
        assert 500 == http.get("/fetch/tags").status_code
        assert 403 == http.get("/fetch/tags").status_code


def test_rate_limit_storm(http: httpx.Client, emulator) -> None:
    emulator.inspect.rate_limit_storm(2, retry_after=7)

    answers = [http.post("/batch/events", json=BODY) for _ in range(3)]

    assert [429, 429, 200] == [a.status_code for a in answers]
    assert ["7", "7"] == [a.headers["retry-after"] for a in answers[:2]]
    assert {"error": "Too many requests"} == answers[0].json()
    assert {"429": 2, "200": 1} == emulator.inspect.request_counts()


def test_drop_next_closes_the_connection_without_an_answer(
    http: httpx.Client, emulator
) -> None:
    emulator.inspect.drop_next(1)

    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/batch/events", json=BODY)
    after = http.post("/batch/events", json=BODY)

    assert 200 == after.status_code
    assert [0, 200] == statuses(emulator)  # 0 = dropped, no HTTP status sent
    assert 1 == len(emulator.inspect.events())


def test_slow_next_delays_one_answer_while_others_proceed(emulator) -> None:
    emulator.inspect.slow_next(1, 0.6)
    slow: dict[str, float] = {}

    def post_slowly() -> None:
        with bento_client(emulator) as http:
            started = time.monotonic()
            slow["status"] = http.post("/batch/events", json=BODY).status_code
            slow["took"] = time.monotonic() - started

    thread = threading.Thread(target=post_slowly)
    thread.start()
    # Once the slow request has arrived (its fault is consumed), a second
    # request is answered at once.
    deadline = time.monotonic() + 5
    while emulator.inspect.faults()["queue"]:
        assert time.monotonic() < deadline
        threading.Event().wait(0.01)
    with bento_client(emulator) as http:
        started = time.monotonic()
        assert 200 == http.get("/fetch/tags").status_code
        fast = time.monotonic() - started
    thread.join(5)

    assert 200 == slow["status"]
    assert slow["took"] >= 0.6
    assert fast < 0.3
    # Logged in arrival order: the slow POST first although it finished last.
    assert ["POST", "GET"] == [r["method"] for r in emulator.inspect.requests()]
    assert 1 == len(emulator.inspect.events())


def test_slow_answer_times_out_the_client(http: httpx.Client, emulator) -> None:
    emulator.inspect.slow_next(1, 5)

    with pytest.raises(httpx.ReadTimeout):
        http.post("/batch/events", json=BODY, timeout=0.2)


def test_a_slow_answer_pending_at_reset_is_abandoned(emulator) -> None:
    """It must not write into the data of whatever runs after the reset."""
    emulator.inspect.slow_next(1, 30)
    outcome: dict[str, object] = {}

    def post_slowly() -> None:
        with bento_client(emulator) as http:
            try:
                http.post("/batch/events", json=BODY)
            except httpx.HTTPError as exc:
                outcome["error"] = exc

    thread = threading.Thread(target=post_slowly)
    thread.start()
    deadline = time.monotonic() + 5
    while emulator.inspect.faults()["queue"]:
        assert time.monotonic() < deadline
        threading.Event().wait(0.01)
    started = time.monotonic()
    emulator.inspect.reset()
    thread.join(5)

    assert not thread.is_alive() and time.monotonic() - started < 2
    assert isinstance(outcome["error"], httpx.RemoteProtocolError)
    assert [] == emulator.inspect.events()
    assert [] == emulator.inspect.requests()


def test_reject_events_refuses_the_whole_batch(http: httpx.Client, emulator) -> None:
    emulator.inspect.reject_events(email="poison@example.com")
    emulator.inspect.reject_events(type="boom")
    good = {"type": "t", "email": "a@example.com"}
    poison = {"type": "t", "email": "Poison@example.com"}
    boom = {"type": "boom", "email": "b@example.com"}

    refused = http.post("/batch/events", json={"events": [good, poison, good, boom]})
    accepted = http.post("/batch/events", json={"events": [good, good]})

    assert 400 == refused.status_code
    assert ["events[1]", "events[3]"] == [e["field"] for e in refused.json()["errors"]]
    assert 200 == accepted.status_code
    assert [good, good] == emulator.inspect.events()
    # A standing rule, not a queued one: it stays until reset.
    assert 400 == http.post("/batch/events", json={"events": [poison]}).status_code
    emulator.inspect.reset()
    assert 200 == http.post("/batch/events", json={"events": [poison]}).status_code


def test_faults_are_consumed_in_the_order_added(http: httpx.Client, emulator) -> None:
    emulator.inspect.fail_next(2, status=500)
    emulator.inspect.rate_limit_storm(1)
    emulator.inspect.fail_next(1, status=503)

    answers = [http.get("/fetch/tags").status_code for _ in range(5)]

    assert [500, 500, 429, 503, 200] == answers
    assert {"queue": [], "reject": []} == emulator.inspect.faults()


def test_faults_do_not_touch_the_inspection_api(http: httpx.Client, emulator) -> None:
    emulator.inspect.fail_next(1)

    assert [] == emulator.inspect.events()
    assert 500 == http.get("/fetch/tags").status_code


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "explode"},
        {"kind": "fail", "n": 0},
        {"kind": "fail", "status": 200},
        {"kind": "slow", "n": 1},
        {"kind": "slow", "n": 1, "seconds": -1},
        {"kind": "reject"},
        [],
    ],
)
def test_invalid_fault_rules_are_400(emulator, rule: object) -> None:
    with httpx.Client(base_url=emulator.url, trust_env=False) as raw:
        response = raw.post("/_emulator/faults", json=rule)
    assert 400 == response.status_code
    assert {"queue": [], "reject": []} == emulator.inspect.faults()
