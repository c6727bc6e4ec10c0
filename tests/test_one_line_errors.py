"""What a newcomer meets first says what to do, in one line.

- `bento-track demo` without uvicorn, and each integration without its
  framework, name the extra to install (pip install 'bento-track[...]'), as
  the emulator command and the Redis store do; run in a fresh interpreter
  where the module cannot be imported, as where it is not installed.
- `bento-track store memory` says why there is nothing to show.
- A short secret key is redacted as a word, never inside other words.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import bento_track
from bento_track.cli import main
from bento_track.config import Config

from .helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent


def run_without(
    modules: list[str], source: str, *, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`source` in a fresh interpreter in which `modules` cannot be imported."""
    prelude = "import sys\n" + "".join(
        f"sys.modules[{name!r}] = None\n" for name in modules
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(source)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_without_uvicorn_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    done = run_without(
        ["uvicorn"],
        "from bento_track.cli import main\nsys.exit(main(['demo']))\n",
        cwd=tmp_path,
    )

    assert done.returncode == 2, done.stderr  # usage: nothing was sent
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("bento-track: error: demo: ")
    assert "pip install 'bento-track[emulator]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_demos_message_is_the_emulator_commands(tmp_path: Path) -> None:
    done = run_without(
        ["uvicorn"],
        "from bento_track.cli import main\nsys.exit(main(['emulator', '--port', '0']))\n",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "pip install 'bento-track[emulator]'" in done.stderr


# (integration, what a user imports, the modules its framework brings)
INTEGRATIONS = [
    ("flask", "from bento_track.integrations.flask import BentoTrack", ["flask"]),
    (
        "flask",
        "from bento_track.integrations.flask import BentoTrack",
        ["werkzeug", "werkzeug.utils"],
    ),
    (
        "django",
        "from bento_track.integrations.django import BentoMiddleware",
        ["django", "asgiref", "asgiref.sync"],
    ),
    (
        "django",
        "from bento_track.integrations.django import EmailBackend",
        ["django", "django.conf"],
    ),
    (
        "prometheus",
        "from bento_track.integrations import prometheus",
        ["prometheus_client"],
    ),
    (
        "opentelemetry",
        "from bento_track.integrations import opentelemetry",
        ["opentelemetry", "opentelemetry.metrics"],
    ),
    (
        "celery",
        "from bento_track.integrations.celery import install\ninstall(object())",
        ["celery"],
    ),
]


@pytest.mark.parametrize(
    ("extra", "statement", "missing"),
    INTEGRATIONS,
    ids=[f"{extra}-{missing[0]}" for extra, _, missing in INTEGRATIONS],
)
def test_an_integration_without_its_framework_names_the_extra(
    extra: str, statement: str, missing: list[str], tmp_path: Path
) -> None:
    source = f"""
    import json
    try:
        {textwrap.indent(statement, "        ").strip()}
    except ImportError as exc:
        print(json.dumps([type(exc).__name__, str(exc), exc.name]))
    """
    done = run_without(missing, source, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    kind, message, name = json.loads(done.stdout)
    assert kind == "ModuleNotFoundError"  # `except ImportError` still works
    assert f"pip install 'bento-track[{extra}]'" in message
    assert message.startswith(f"bento_track.integrations.{extra} needs ")
    assert "\n" not in message
    assert name.partition(".")[0] in {m.partition(".")[0] for m in missing}


def test_a_broken_framework_is_not_called_missing(tmp_path: Path) -> None:
    """Flask present but one of its own dependencies gone: installing the
    extra would not help, so the error is Python's own."""
    done = run_without(
        ["itsdangerous"],
        """
        try:
            from bento_track.integrations.flask import BentoTrack
        except ImportError as exc:
            print(exc.name, "|", exc)
        """,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("itsdangerous |"), done.stdout
    assert "bento-track[" not in done.stdout


def test_store_memory_says_why_there_is_nothing_to_show(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["store", "memory"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'memory' (the default) keeps each process's queue in that process" in err
    assert "sqlite:////path/bento.db" in err and "redis://" in err
    assert "not 'memory'" not in err


def test_a_short_secret_is_redacted_as_a_word_only() -> None:
    config = Config(site_uuid="site", publishable_key="p", secret_key="s")
    basic = config.authorization.split(" ", 1)[1]

    assert config.redact("Connection refused") == "Connection refused"
    assert config.redact("key=s&next") == "key=***&next"
    assert config.redact("secret s, then 's'") == "secret ***, then '***'"
    assert config.redact(f"Authorization: Basic {basic}") == "Authorization: Basic ***"
    long = Config(site_uuid="site", publishable_key="p", secret_key="sk_12345678")
    assert long.redact("a sk_12345678b inside a word") == "a ***b inside a word"


def test_delivery_errors_with_a_one_letter_secret_read_as_written() -> None:
    """The issue's `Connection refu***ed`: what `stats()` says about a send
    that failed, with `secret_key="s"`, keeps every word whole."""
    # Bound and never listening, and held for the test: connections to it
    # are refused, and no other process can take the port meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        client = bento_track.Client(
            site_uuid="site",
            publishable_key="p",
            secret_key="s",
            base_url=f"http://127.0.0.1:{port}/api/v1",
            flush_interval=0.05,
        )
        try:
            client.track("a.b", email="ann@example.com")
            wait_until(lambda: client.stats().last_error, timeout=20)
            error: Any = client.stats().last_error
        finally:
            client.shutdown(0)
    assert "Connection refused" in error, error
    assert "***" not in error, error
