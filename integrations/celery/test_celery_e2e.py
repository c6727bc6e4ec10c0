"""Celery with a real Redis broker and a prefork worker (2 children): a task
enqueued inside an identified request tracks with that identity; a task
enqueued without one tracks with none, even right after a task that bound
another identity in the same child; SIGTERM to the worker, a task in flight,
loses nothing (each child flushes as it shuts down)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery

from tests.support.redis_server import RedisServer

from ..conftest import BIN, InFlight, free_port, server_env

HERE = Path(__file__).resolve().parent
USERS = 8


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a free port (stopped after)."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield f"redis://127.0.0.1:{server.port}"
    finally:
        server.kill()


def test_identity_travels_with_tasks(
    emulator: Any, servers: Any, redis_url: str, tmp_path: Path
) -> None:
    env = server_env(
        emulator,
        CELERY_BROKER_URL=f"{redis_url}/0",
        CELERY_RESULT_BACKEND=f"{redis_url}/1",
        HOLD_DIR=str(tmp_path),
    )
    worker = servers(
        [
            str(BIN / "celery"),
            "-A",
            "shop_tasks",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "--loglevel",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            "w1@%h",
        ],
        env=env,
        cwd=HERE,
        log=tmp_path / "worker.log",
    )
    port = free_port()
    web = servers(
        [
            str(BIN / "uvicorn"),
            "shop_tasks:web",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=HERE,
        log=tmp_path / "web.log",
        url=f"http://127.0.0.1:{port}",
    )
    web.wait_http("/")
    results = Celery(broker=f"{redis_url}/0", backend=f"{redis_url}/1")

    ids: list[tuple[str, str | None]] = []
    with httpx.Client(base_url=web.url, trust_env=False, timeout=20) as http:
        for n in range(USERS):
            who = f"user{n}@example.com"
            answer = http.post(
                f"/enqueue/t{n}",
                params={"bind": "leak@example.com"},
                headers={"x-user-email": who},
            )
            ids.append((answer.json()["id"], who))
            for k in range(2):  # two per identified one: both children get both kinds
                answer = http.post(f"/enqueue/anon{n}-{k}")  # no identity
                ids.append((answer.json()["id"], None))
        outcomes = [
            (who, results.AsyncResult(task_id).get(timeout=60)) for task_id, who in ids
        ]
        assert worker.alive(), worker.output()

        assert [o["tracked"] for _, o in outcomes] == [
            w is not None for w, _ in outcomes
        ]
        identified_in = {o["pid"] for who, o in outcomes if who}
        # A child that ran a task which bound an identity then ran anonymous
        # ones (which tracked nothing, as asserted above).
        assert identified_in & {o["pid"] for who, o in outcomes if not who}
        assert emulator.inspect.events() == []  # held until the children exit

        finish = InFlight(tmp_path).start(
            lambda: http.post(
                "/enqueue/held1", headers={"x-user-email": "h@example.com"}
            )
        )
        # The task is running in a child (it made `entered`): stop the worker.
        worker.terminate()
        finish()
    assert worker.stop(60) == 0, worker.output()
    web.stop()

    events = emulator.inspect.events()
    ran = sorted(
        (e["details"]["tag"], e["email"]) for e in events if e["type"] == "task.ran"
    )
    assert ran == sorted((f"t{n}", f"user{n}@example.com") for n in range(USERS))
    assert [(e["type"], e["email"]) for e in events if e["type"] != "task.ran"] == [
        ("task.held", "h@example.com")
    ]
    assert not any(e["email"] == "leak@example.com" for e in events)
    assert {
        e["details"]["pid"] for e in events if e["type"] == "task.ran"
    } == identified_in
    assert "Traceback" not in worker.output(), worker.output()
