"""What the development servers do with queued events when stopped, as the
README's "Development servers" note says: `flask run` and `manage.py
runserver` deliver them on Ctrl-C (SIGINT) and lose them on SIGTERM.

Why SIGTERM loses them: without the reloader, SIGTERM ends the process at
once (Python's default), so no exit hook runs; with it (`flask run --debug`,
`runserver` by default), the reloader's parent process turns SIGTERM into
its own exit and kills the server, its child, with SIGKILL. Ctrl-C ends both
with `KeyboardInterrupt`, and the exit flush runs. These tests pin that:
when a server learns to flush on SIGTERM, they fail, and the README changes
with them.

Each app tracks one event in a view and has one rule event; the flush
interval (60 s) leaves both queued until the process ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import BIN, free_port, server_env, wait_until

FLASK_APP = """
from flask import Flask

import bento_track
from bento_track.integrations.flask import BentoTrack

app = Flask(__name__)
app.config["BENTO_TRACK"] = {"flush_interval": 60}
BentoTrack(app, events={"POST /visit": "dev.visited"}, identify=lambda: "dev@example.com")


@app.post("/visit")
def visit():
    bento_track.track("dev.tracked", email="dev@example.com")
    return "ok"


@app.get("/queued")
def queued():
    return str(bento_track.stats().enqueued)
"""

DJANGO_SITE = """
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

import bento_track

SECRET_KEY = "dev-server-tests-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "devsite"
INSTALLED_APPS = ["bento_track.integrations.django"]
MIDDLEWARE = ["bento_track.integrations.django.BentoDjangoMiddleware"]
DATABASES = {}
BENTO_TRACK = {
    "events": {"POST /visit/": "dev.visited"},
    "identify": "devsite.email_of",
    "flush_interval": 60,
}


def email_of(request):
    return "dev@example.com"


@csrf_exempt
def visit(request):
    bento_track.track("dev.tracked", email="dev@example.com")
    return HttpResponse("ok")


def queued(request):
    return HttpResponse(str(bento_track.stats().enqueued))


urlpatterns = [path("visit/", visit), path("queued/", queued)]
"""

BOTH = ["dev.tracked", "dev.visited"]

# (server, its reloader on, signal, what the emulator holds after the exit)
CASES = [
    ("flask run", False, signal.SIGINT, BOTH),
    ("flask run", False, signal.SIGTERM, []),
    ("flask run --debug", True, signal.SIGTERM, []),
    ("runserver", True, signal.SIGINT, BOTH),
    ("runserver", True, signal.SIGTERM, []),
    ("runserver --noreload", False, signal.SIGTERM, []),
]


#: Runs its arguments as a terminal would: with SIGINT's default action. A
#: program started in the background by a shell without job control (a CI
#: script, `cmd &` in a script) inherits SIGINT *ignored*, and Python then
#: never turns Ctrl-C into KeyboardInterrupt: the server would not stop.
FROM_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _command(server: str, port: int) -> tuple[list[str], str]:
    """The command line (run as from a terminal), and the path of the view."""
    argv, path = _server_command(server, port)
    return [sys.executable, "-c", FROM_A_TERMINAL, *argv], path


def _server_command(server: str, port: int) -> tuple[list[str], str]:
    """The server's own command line, and the path of the view."""
    if server.startswith("flask"):
        mode = "--debug" if "--debug" in server else "--no-reload"
        argv = [str(BIN / "flask"), "--app", "devapp", "run", "--port", str(port)]
        return [*argv, mode], "/visit"
    argv = [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}"]
    argv += ["--settings", "devsite"]  # what `manage.py runserver` runs
    if "--noreload" in server:
        argv.append("--noreload")
    return argv, "/visit/"


@pytest.mark.parametrize(
    ("server", "reloader", "signum", "delivered"),
    CASES,
    ids=[f"{s.replace(' ', '_')}-{sig.name}" for s, _, sig, _ in CASES],
)
def test_a_dev_server_stopped_by_a_signal(
    server: str,
    reloader: bool,
    signum: signal.Signals,
    delivered: list[str],
    emulator: Any,
    servers: Any,
    tmp_path: Path,
) -> None:
    (tmp_path / "devapp.py").write_text(textwrap.dedent(FLASK_APP))
    (tmp_path / "devsite.py").write_text(textwrap.dedent(DJANGO_SITE))
    port = free_port()
    argv, path = _command(server, port)
    site = servers(
        argv,
        env=server_env(emulator, PYTHONPATH=str(tmp_path), PYTHONFAULTHANDLER="1"),
        cwd=tmp_path,
        log=tmp_path / "server.log",
        url=f"http://127.0.0.1:{port}",
    )

    def answered() -> httpx.Response | None:
        assert site.alive(), site.output()
        try:
            return httpx.post(site.url + path, timeout=5, trust_env=False)
        except httpx.TransportError:
            return None

    response = wait_until(answered, 60, f"{server} to answer")
    assert response.text == "ok", site.output()
    assert emulator.inspect.events() == []  # queued: the interval is 60 s
    # The rule event is captured when the server closes the response, which
    # may be after the client read it: the signal comes once both are queued.
    queued_path = path.replace("visit", "queued")
    wait_until(
        lambda: (
            httpx.get(site.url + queued_path, timeout=5, trust_env=False).text == "2"
        ),
        30,
        "both events queued",
    )

    # As a terminal sends Ctrl-C (to the whole process group), and as an
    # IDE, `kill` or a process manager sends SIGTERM (to the server: with the
    # reloader, the parent process the user started).
    if signum == signal.SIGINT:
        os.killpg(site.process.pid, signum)
    else:
        site.process.send_signal(signum)
    try:
        site.process.wait(30)
    except subprocess.TimeoutExpired:
        # Where it hangs: faulthandler (PYTHONFAULTHANDLER) prints every
        # thread's stack on SIGABRT.
        os.killpg(site.process.pid, signal.SIGABRT)
        try:
            site.process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        raise AssertionError(f"{server} did not exit:\n{site.output()}") from None
    if reloader:
        # The server is the reloader's child: wait until it is gone too.
        wait_until(lambda: _group_gone(site.process.pid), 30, "the reloader's child")

    assert sorted(e["type"] for e in emulator.inspect.events()) == delivered, (
        site.output()
    )


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False
