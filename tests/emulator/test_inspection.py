"""The inspection API and `Inspector`, the request log, storage on disk,
throughput, and the in-process app."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from bento_track.emulator import EmulatorServer, Inspector, create_app
from bento_track.emulator.api import ConnectionDropped
from bento_track.emulator.faults import Fault

from .conftest import bento_client

EVENT = {"type": "t", "email": "a@example.com"}


def test_request_log_records_every_api_request(http: httpx.Client, emulator) -> None:
    http.post("/batch/events", json={"events": [EVENT] * 3})
    http.post("/batch/events", json={"events": []})
    http.get("/fetch/tags")
    http.post(
        "/fetch/commands",
        json={"command": {"command": "subscribe", "email": "a@example.com"}},
    )
    http.get("/nope")
    emulator.inspect.events()  # inspection calls are not API requests

    log = emulator.inspect.requests()

    assert [
        ("POST", "/api/v1/batch/events", 200, 3),
        ("POST", "/api/v1/batch/events", 400, 0),
        ("GET", "/api/v1/fetch/tags", 200, 0),
        ("POST", "/api/v1/fetch/commands", 200, 1),
        ("GET", "/api/v1/nope", 404, 0),
    ] == [(r["method"], r["path"], r["status"], r["count"]) for r in log]
    times = [r["time"] for r in log]
    assert times == sorted(times)
    assert {"200": 3, "400": 1, "404": 1} == emulator.inspect.request_counts()


def test_secret_never_appears_in_log_pages_or_reprs() -> None:
    secret = "sk_very_secret_value"
    with EmulatorServer(port=0, secret_key=secret) as server:
        with bento_client(server) as http:
            http.post("/batch/events", json={"events": [EVENT]})
        with bento_client(server, auth=("pk_emulator", "sk_wrong_secret")) as http:
            refused = http.get("/fetch/tags")
        texts = [
            repr(server),
            repr(server.settings),
            repr(server.inspect),
            repr(server.inspect.requests()),
            repr(server.inspect.summary()),
            refused.text,
        ]
        with httpx.Client(base_url=server.url, trust_env=False) as raw:
            texts.append(raw.get("/_emulator/", headers={"Accept": "text/html"}).text)
            texts.append(raw.get("/_emulator/").text)

    assert "<h1>Bento emulator</h1>" in texts[-2]
    for text in texts:
        assert secret not in text
        assert "sk_wrong_secret" not in text
        assert "Authorization" not in text


def test_inspector_lists_and_clears_each_kind(http: httpx.Client, emulator) -> None:
    http.post("/batch/events", json={"events": [EVENT]})
    http.post("/fetch/tags", json={"tag": {"name": "vip"}})
    http.post("/fetch/fields", json={"field": {"key": "plan"}})
    http.post(
        "/batch/emails",
        json={
            "emails": [
                {
                    "to": "a@example.com",
                    "from": "hello@example.com",
                    "subject": "s",
                    "html_body": "b",
                }
            ]
        },
    )
    inspect = emulator.inspect

    assert [1, 1, 1, 1, 1] == [
        len(inspect.events()),
        len(inspect.subscribers()),  # created by the event
        len(inspect.tags()),
        len(inspect.fields()),
        len(inspect.emails()),
    ]
    inspect.clear("events")
    assert [] == inspect.events() and 1 == len(inspect.subscribers())
    inspect.clear("requests")
    assert [] == inspect.requests()
    inspect.clear()
    assert [] == inspect.subscribers() == inspect.tags() == inspect.emails()
    with pytest.raises(httpx.HTTPStatusError):
        inspect.clear("nonsense")


def test_reset_clears_data_faults_and_counters(http: httpx.Client, emulator) -> None:
    http.post("/batch/events", json={"events": [EVENT]})
    emulator.inspect.fail_next(3)
    emulator.inspect.reject_events(type="t")

    emulator.inspect.reset()

    assert [] == emulator.inspect.events()
    assert {} == emulator.inspect.request_counts()
    assert {"queue": [], "reject": []} == emulator.inspect.faults()
    assert 200 == http.post("/batch/events", json={"events": [EVENT]}).status_code


def test_sqlite_file_keeps_data_across_restarts(tmp_path: Path) -> None:
    db = str(tmp_path / "emulator.sqlite3")
    with EmulatorServer(port=0, db_path=db) as first:
        with bento_client(first) as http:
            http.post("/batch/events", json={"events": [EVENT, dict(EVENT, type="u")]})
            http.post("/fetch/tags", json={"tag": {"name": "vip"}})
        first_port = first.port

    with EmulatorServer(port=0, db_path=db) as second:
        events = second.inspect.events()
        tags = [t["attributes"]["name"] for t in second.inspect.tags()]
        requests = second.inspect.requests()

    assert first_port > 0
    assert [EVENT, dict(EVENT, type="u")] == events
    assert ["vip"] == tags
    assert [] == requests  # the request log is per run


def test_20000_events_in_20_requests_are_fast(emulator) -> None:
    emulator.inspect.set_rate_limit(1000, 60)
    slowest = 0.0
    with bento_client(emulator) as http:
        for r in range(20):
            body = {
                "events": [
                    {
                        "type": "page",
                        "email": f"u{i % 250}@example.com",
                        "fields": {"plan": "pro"},
                        "details": {"seq": r * 1000 + i, "cart": {"n": [1, 2]}},
                    }
                    for i in range(1000)
                ]
            }
            started = time.perf_counter()
            assert 200 == http.post("/batch/events", json=body).status_code
            slowest = max(slowest, time.perf_counter() - started)
    events = emulator.inspect.events()

    assert list(range(20000)) == [e["details"]["seq"] for e in events]
    assert 250 == len(emulator.inspect.subscribers())
    assert slowest < 0.5, f"slowest request took {slowest:.3f} s"


def test_server_lifecycle() -> None:
    server = EmulatorServer(port=0)
    assert not server.running
    server.start()
    port = server.port
    try:
        assert server.running and port > 0
        assert f"http://127.0.0.1:{port}/api/v1" == server.base_url
        assert {
            "site_uuid": "emulator-site",
            "publishable_key": "pk_emulator",
            "secret_key": "sk_emulator",
            "base_url": server.base_url,
        } == server.client_kwargs()
        blocked = EmulatorServer(port=port)
        with pytest.raises(RuntimeError, match="could not start"):
            with blocked:  # the port is taken
                pass
        # A failed start still opened the store; `with` has closed it.
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            blocked.state.store.count("events")
    finally:
        server.close()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/_emulator/", timeout=1)


def test_stop_ends_pending_slow_answers_quickly() -> None:
    server = EmulatorServer(port=0).start()
    server.inspect.slow_next(1, 60)
    http = bento_client(server, timeout=10)

    thread = threading.Thread(
        target=lambda: pytest.raises(httpx.HTTPError, http.get, "/fetch/tags")
    )
    thread.start()
    deadline = time.monotonic() + 5
    while server.inspect.faults()["queue"]:
        assert time.monotonic() < deadline
        threading.Event().wait(0.01)
    started = time.monotonic()
    server.close()
    thread.join(5)
    http.close()

    assert time.monotonic() - started < 3
    assert not thread.is_alive()


# -- in process ----------------------------------------------------------------


@pytest.mark.anyio
async def test_in_process_app_accepts_any_author_by_default(inprocess) -> None:
    api = inprocess()
    email = {
        "to": "a@example.com",
        "from": "anyone@example.com",
        "subject": "s",
        "html_body": "b",
    }

    response = await api.post("/batch/emails", json={"emails": [email]})

    assert {"results": 1} == response.json()
    assert [email] == api.app.state.emulator.store.list("emails")


@pytest.mark.anyio
async def test_in_process_drop_raises_connection_dropped(inprocess) -> None:
    api = inprocess()
    api.app.state.emulator.faults.add(Fault("drop", 1))

    with pytest.raises(ConnectionDropped):
        await api.get("/fetch/tags")
    assert 200 == (await api.get("/fetch/tags")).status_code
    assert [0, 200] == [r["status"] for r in api.app.state.emulator.log.entries()]


def test_inspector_request_shapes() -> None:
    """Unit test of pure HTTP handling: the paths and methods `Inspector` uses."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json=[])

    inspector = Inspector("http://127.0.0.1", transport=httpx.MockTransport(handler))
    inspector.events()
    inspector.fail_next(2, status=503)
    inspector.close()

    assert ["GET /_emulator/events", "POST /_emulator/faults"] == seen


def test_create_app_defaults() -> None:
    app = create_app()
    state = app.state.emulator
    state.store.close()  # only the settings are read: no request reaches the store
    assert ("emulator-site", 100, 60.0) == (
        state.settings.site_uuid,
        state.limiter.limit,
        state.limiter.window,
    )
