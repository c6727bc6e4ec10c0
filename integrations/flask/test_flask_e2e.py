"""A Flask app wired only with `BentoTrack(...)` under gunicorn with 2
workers: concurrent users, each request's event with its own user's email,
rules by URL rule and by endpoint, a login (identity found after the view)
and a logout (found before it), an explicit `track()`, and SIGTERM with a
request in flight losing nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ..conftest import BIN, InFlight, events_by_type, free_port, server_env

HERE = Path(__file__).resolve().parent
USERS = 12


def visit(url: str, n: int) -> int:
    """User n's visit; returns the pid of the worker that served /whoami."""
    email = f"user{n}@example.com"
    with httpx.Client(base_url=url, trust_env=False, timeout=20) as http:
        assert http.post(f"/items/{n}").status_code == 200  # anonymous: no event
        assert http.post("/login", data={"email": email}).text == "in"
        assert http.post(f"/items/{n}").json()["item"] == n
        assert http.post("/checkout").text == "placed"
        pid = int(http.get("/whoami").text)
        assert http.post("/logout").text == "out"
        assert http.post("/checkout").status_code == 200  # anonymous again
    return pid


def test_flask_under_gunicorn(emulator: Any, servers: Any, tmp_path: Path) -> None:
    port = free_port()
    site = servers(
        [
            str(BIN / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "10",
            "store:app",
        ],
        env=server_env(emulator, HOLD_DIR=str(tmp_path)),
        cwd=HERE,
        log=tmp_path / "gunicorn.log",
        url=f"http://127.0.0.1:{port}",
    )
    site.wait_http("/whoami")

    with ThreadPoolExecutor(6) as pool:
        pids = set(pool.map(lambda n: visit(site.url, n), range(USERS)))
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as last:
        last.post("/login", data={"email": "last@example.com"})
        assert emulator.inspect.events() == []  # held until exit (flush_interval 60)
        finish = InFlight(tmp_path).start(lambda: last.get("/held"))
        # A sync worker serves one request at a time: while one holds /held,
        # the other serves everything, so both workers capture something.
        with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as other:
            other.post("/login", data={"email": "other@example.com"})
            other_pid = int(other.get("/whoami").text)
        site.terminate()
        assert finish().text == "exported"
    assert site.stop() == 0, site.output()
    events = emulator.inspect.events()
    got = events_by_type(events)

    expected = {"user.logged_in", "item.updated", "order.placed", "page.viewed"}
    for n in range(USERS):
        mine = sorted(e["type"] for e in events if e["email"] == f"user{n}@example.com")
        assert mine == sorted([*expected, "user.logged_out"]), (n, mine)
    assert [e["email"] for e in got["report.exported"]] == ["last@example.com"]
    # + last's login and export, other's login and page view
    assert len(events) == USERS * 5 + 4
    for event in got["item.updated"]:
        n = int(event["email"][4:].split("@")[0])
        assert event["details"]["path"] == f"/items/{n}"
        assert event["details"]["route"] == "/items/<int:item_id>"
        assert (event["details"]["method"], event["details"]["status"]) == ("POST", 200)
    assert {e["details"]["route"] for e in got["order.placed"]} == {"/checkout"}
    # Each worker's events arrived: the one that held /held and the other
    # (the visits may all have landed on one of them).
    (held_pid,) = {e["details"]["pid"] for e in got["report.exported"]}
    assert other_pid != held_pid
    pids.add(other_pid)
    assert {e["details"]["pid"] for e in got["page.viewed"]} == pids
    assert "Traceback" not in site.output(), site.output()
