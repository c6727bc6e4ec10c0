"""`python manage.py bento_sync_subscribers` on 20,000 users, against the
emulator, while the app (gunicorn, 2 workers) keeps tracking events: one
request budget (20 requests per 6 s, Bento's 100 per minute scaled down,
the emulator enforcing the same) shared through the app's SQLite store.
The backfill is SIGKILLed at about 60 % and run again: it finishes, every
user arrives, at most one batch is sent twice, nobody gets a 429, and the
backfill's share of the budget (80 %) leaves the app's events a request in
every window."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import max_in_window
from tests.helpers import wait_until as poll

from ..conftest import free_port, server_env, wait_until
from .sites import HERE as SITE
from .sites import command as serve_command

USERS = 20_000
LIMIT, WINDOW = 20, 6.0


def subscriber_posts(emulator: Any) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.inspect.requests()
        if r["path"].endswith("/batch/subscribers")
    ]


def event_posts(emulator: Any) -> list[dict[str, Any]]:
    return [
        r for r in emulator.inspect.requests() if r["path"].endswith("/batch/events")
    ]


def rows_in(posts: list[dict[str, Any]]) -> int:
    return sum(r["count"] for r in posts if r["status"] == 200)


class Traffic:
    """The app's visitors: a request tracking 5 events every 0.1 s."""

    def __init__(self, url: str) -> None:
        self.tracked = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as http:
            while not self._stop.wait(0.1):
                self.tracked += http.post("/track/?n=5").json()["tracked"]

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.tracked


def test_a_killed_backfill_resumes_within_the_apps_budget(
    emulator: Any, servers: Any, tmp_path: Path
) -> None:
    db = str(tmp_path / "members.sqlite3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    subprocess.run(
        [sys.executable, "-m", "members.setup_db"],
        cwd=SITE,
        env={**env, "MEMBERS_DB": db, "MEMBERS_USERS": str(USERS)},
        check=True,
        timeout=300,
    )
    site_env = dict(
        MEMBERS_DB=db,
        MEMBERS_RPM=str(LIMIT),
        MEMBERS_WINDOW=str(WINDOW),
        MEMBERS_FLUSH="1",
        BENTO_STORE=f"sqlite:///{tmp_path / 'bento.db'}",
        DJANGO_SETTINGS_MODULE="members.settings",
    )
    checkpoint = tmp_path / "sync.json"
    command = [
        sys.executable,
        "-m",
        "django",
        "bento_sync_subscribers",
        "--checkpoint",
        str(checkpoint),
        "--progress",
        "lines",
    ]
    emulator.inspect.set_rate_limit(LIMIT, WINDOW)
    try:
        port = free_port()
        app = servers(
            serve_command("members", "gunicorn", port, lifespan=False),
            env=server_env(emulator, **site_env),
            cwd=SITE,
            log=tmp_path / "gunicorn.log",
            url=f"http://127.0.0.1:{port}",
        )
        app.wait_http("/track/?n=0")
        traffic = Traffic(app.url)
        began = time.monotonic()
        first = servers(
            command,
            env=server_env(emulator, **site_env),
            cwd=SITE,
            log=tmp_path / "sync-1.log",
        )
        # Polled every 10 ms: a batch takes about as long to send.
        poll(
            lambda: (
                rows_in(subscriber_posts(emulator)) >= USERS * 6 // 10
                or not first.alive()
            ),
            120,
        )
        assert first.alive(), first.output()
        first.kill()  # SIGKILL
        killed_at = rows_in(subscriber_posts(emulator))
        saved = checkpoint.read_text()
        second = servers(
            command,
            env=server_env(emulator, **site_env),
            cwd=SITE,
            log=tmp_path / "sync-2.log",
        )
        assert second.process.wait(180) == 0, second.output()
        took = time.monotonic() - began
        tracked = traffic.stop()
        wait_until(
            lambda: (
                sum(r["count"] for r in event_posts(emulator) if r["status"] == 200)
                >= tracked
            ),
            60,
            "the app's events",
        )
        assert app.stop() == 0, app.output()
    finally:
        emulator.inspect.set_rate_limit(10_000, 60.0)

    posts = subscriber_posts(emulator)
    sent = rows_in(posts)
    log = emulator.inspect.requests()
    assert {r["status"] for r in log} == {200}, emulator.inspect.request_counts()
    assert max_in_window([r["time"] for r in log], WINDOW) <= LIMIT
    assert all(r["count"] == 1000 for r in posts), [r["count"] for r in posts]
    emails = {s["email"] for s in emulator.inspect.subscribers()}
    assert {f"user{i}@example.com" for i in range(USERS)} <= emails
    again = sent - USERS
    assert 0 <= again <= 1000, f"{again} rows sent twice"  # at most one batch
    output = second.output()
    assert "resuming after row" in output, output
    assert "rows read (resumed after row" in output, output
    assert not checkpoint.exists()
    # The app's events kept flowing while the backfill ran: the fifth of each
    # window the backfill leaves them (budget_share) came every second or
    # so (flush_interval 1 s); taking every free request, the backfill made
    # them wait most of a window (5.3 s).
    events = [r["time"] for r in event_posts(emulator)]
    start, end = posts[0]["time"], posts[-1]["time"]
    during = [t for t in events if start <= t <= end]
    marks = [start, *during, end]
    gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    assert max(gaps) < WINDOW / 2, gaps
    print(
        f"\n{USERS:,} users in {len(posts)} requests of 1,000 ({again} rows sent "
        f"twice), killed after {killed_at:,} rows (checkpoint then: {saved.strip()}); "
        f"{len(events)} event requests ({tracked:,} events) beside them, longest "
        f"gap {max(gaps):.2f} s; {len(log)} requests, 0 x 429, at most "
        f"{max_in_window([r['time'] for r in log], WINDOW)} per {WINDOW:g} s; "
        f"{took:.1f} s from the first start to the rerun's end"
    )
