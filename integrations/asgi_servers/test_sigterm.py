"""SIGTERM loses nothing under any ASGI server setup, lifespan or not, and
what could not be delivered is said.

One Starlette app wrapped in `BentoMiddleware` as the README shows
(`shop.py`, no lifespan of its own, a client that flushes every 60 s), served
by each setup as a real subprocess against the emulator: N requests that
capture events (the last one still running when SIGTERM arrives), SIGTERM,
a wait for the exit with a deadline. Then the emulator holds exactly those N
events, and the log says nothing was lost. With Bento failing every request
the emulator holds none, the log says exactly N were left undelivered, and
the exit came within the client's `shutdown_timeout` (not twice it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import BIN, InFlight, Server, free_port, server_env, wait_until

HERE = Path(__file__).resolve().parent
N = 30
#: the client's shutdown_timeout in these runs (SHOP_SHUTDOWN_TIMEOUT)
SHUTDOWN_TIMEOUT = 3.0
#: seconds a server may take to exit after SIGTERM (a loaded 2-core machine)
EXIT_DEADLINE = 30.0
UNDELIVERED = re.compile(r"shut down with (\d+) events undelivered")


@dataclass(frozen=True)
class Setup:
    """An ASGI server setup: its command (`{port}` filled in), the exit code
    its main process ends with after SIGTERM, and whether the signal goes to
    every process of its group (as systemd sends it) or to the main one."""

    argv: tuple[str, ...]
    exit_codes: tuple[int, ...]
    whole_group: bool = False

    def command(self, port: int) -> list[str]:
        return [arg.format(port=port, bin=BIN) for arg in self.argv]


def uvicorn(lifespan: str) -> Setup:
    # uvicorn ends by raising the SIGTERM it received again: -15.
    return Setup(
        ("{bin}/uvicorn", "shop:app", "--host", "127.0.0.1", "--port", "{port}",
         "--lifespan", lifespan),
        (-15,),
    )  # fmt: skip


def gunicorn(worker: str) -> Setup:
    return Setup(
        ("{bin}/gunicorn", "shop:app", "--bind", "127.0.0.1:{port}", "--workers",
         "1", "--worker-class", worker),
        (0,),
    )  # fmt: skip


HYPERCORN = ("{bin}/hypercorn", "shop:app", "--bind", "127.0.0.1:{port}")

SETUPS = {
    "uvicorn --lifespan on": uvicorn("on"),
    "uvicorn --lifespan auto": uvicorn("auto"),
    "uvicorn --lifespan off": uvicorn("off"),
    "gunicorn UvicornWorker": gunicorn("uvicorn.workers.UvicornWorker"),
    # A UvicornWorker subclass with lifespan "off" (workers.py).
    "gunicorn UvicornWorker, lifespan off": gunicorn("workers.NoLifespanWorker"),
    # SIGTERM to the master: it asks its worker to stop, gracefully.
    "hypercorn": Setup(HYPERCORN, (0,)),
    # SIGTERM to every process: the worker, where SIGTERM is left at the
    # default, is ended by it (no request may be in flight then).
    "hypercorn, SIGTERM to every process": Setup(HYPERCORN, (0,), whole_group=True),
}


def start(setup: Setup, emulator: Any, servers: Any, tmp_path: Path) -> Server:
    port = free_port()
    site: Server = servers(
        setup.command(port),
        env=server_env(
            emulator,
            HOLD_DIR=str(tmp_path),
            SHOP_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
        ),
        cwd=HERE,
        log=tmp_path / "server.log",
        url=f"http://127.0.0.1:{port}",
    )
    site.wait_http("/ping")
    return site


def capture_then_terminate(
    site: Server, setup: Setup, tmp_path: Path, emulator: Any, *, bento_down: bool
) -> float:
    """N requests that capture an event each, the last one in flight when
    SIGTERM is sent (unless the signal goes to every process: then all N
    are done); wait for the exit. The seconds from SIGTERM to exit."""
    done = N if setup.whole_group else N - 1
    with httpx.Client(base_url=site.url, trust_env=False, timeout=30) as http:
        for i in range(done):
            response = http.post("/signup/pro", headers=who(i))
            assert response.status_code == 201, response.text
        assert emulator.inspect.events() == []  # held until shutdown
        if bento_down:
            emulator.inspect.fail_next(100_000, status=503)
        if setup.whole_group:
            sent = time.monotonic()
            os.killpg(site.process.pid, signal.SIGTERM)
        else:
            finish = InFlight(tmp_path).start(
                lambda: http.post("/held", headers=who(N - 1))
            )
            sent = time.monotonic()
            site.terminate()
            # Released once the server drains: the request ends during it.
            wait_until(lambda: not answers(site), 20, "the server to drain")
            assert finish().json() == {"held": True}
    try:
        code = site.process.wait(EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"no exit within {EXIT_DEADLINE} s of SIGTERM:\n{site.output()}"
        ) from None
    elapsed = time.monotonic() - sent
    assert code in setup.exit_codes, site.output()
    return elapsed


def answers(site: Server) -> bool:
    """Whether a new request is served (a draining server closed its
    listener, or leaves new connections in the master's backlog)."""
    assert site.url is not None
    try:
        httpx.get(site.url + "/ping", timeout=0.5, trust_env=False)
    except httpx.TransportError:
        return False
    return True


def who(i: int) -> dict[str, str]:
    return {"x-user-email": f"user{i}@example.com"}


def expected(setup: Setup) -> list[tuple[str, str]]:
    """(type, email) of the N events the run captures."""
    if setup.whole_group:
        return sorted(("account.signup", f"user{i}@example.com") for i in range(N))
    return sorted(
        [("account.signup", f"user{i}@example.com") for i in range(N - 1)]
        + [("report.held", f"user{N - 1}@example.com")]
    )


@pytest.mark.parametrize("name", list(SETUPS))
def test_sigterm_delivers_every_event(
    name: str, emulator: Any, servers: Any, tmp_path: Path
) -> None:
    setup = SETUPS[name]
    site = start(setup, emulator, servers, tmp_path)
    capture_then_terminate(site, setup, tmp_path, emulator, bento_down=False)
    log = site.output()
    events = emulator.inspect.events()
    assert sorted((e["type"], e["email"]) for e in events) == expected(setup), log
    assert not UNDELIVERED.search(log), log  # nothing said lost: nothing was
    assert "Traceback" not in log and "internal error" not in log, log


@pytest.mark.parametrize("name", list(SETUPS))
def test_sigterm_with_bento_down_says_how_many_were_left(
    name: str, emulator: Any, servers: Any, tmp_path: Path
) -> None:
    setup = SETUPS[name]
    site = start(setup, emulator, servers, tmp_path)
    elapsed = capture_then_terminate(site, setup, tmp_path, emulator, bento_down=True)
    log = site.output()
    assert emulator.inspect.events() == [], log
    assert [int(n) for n in UNDELIVERED.findall(log)] == [N], log
    # Flushed within shutdown_timeout, once: not once per stage of the exit.
    assert elapsed < 2 * SHUTDOWN_TIMEOUT, (elapsed, log)
    assert "Traceback" not in log and "internal error" not in log, log
