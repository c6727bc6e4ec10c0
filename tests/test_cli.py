"""The `bento-track` command line, against the running emulator over loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bento_track.cli import main


@pytest.fixture
def bento_env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    kwargs = emulator.client_kwargs()
    monkeypatch.setenv("BENTO_SITE_UUID", kwargs["site_uuid"])
    monkeypatch.setenv("BENTO_PUBLISHABLE_KEY", kwargs["publishable_key"])
    monkeypatch.setenv("BENTO_SECRET_KEY", kwargs["secret_key"])
    monkeypatch.setenv("BENTO_BASE_URL", kwargs["base_url"])
    return emulator


def test_send_event_reaches_the_emulator(bento_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["send-event", "account.signup", "--email", "a@example.com", "--field", "plan=pro",
         "--field", "seats=3", "--details", '{"source": "cli"}']
    )

    assert code == 0
    assert "accepted 1" in capsys.readouterr().out
    [event] = bento_env.inspect.events()
    assert event["type"] == "account.signup"
    assert event["fields"] == {"plan": "pro", "seats": 3}
    assert event["details"] == {"source": "cli"}


def test_tags_create_then_list(bento_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tags", "--create", "vip"]) == 0
    assert main(["tags"]) == 0

    out = capsys.readouterr().out
    assert "created tag 'vip'" in out
    assert "\tvip" in out


def test_send_email(bento_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["send-email", "--to", "a@example.com", "--from", "hello@example.com",
         "--subject", "Hi", "--html", "<p>Hi {{ name }}</p>", "--var", "name=Jesse"]
    )

    assert code == 0
    [email] = bento_env.inspect.emails()
    assert email["to"] == "a@example.com"
    assert email["personalizations"] == {"name": "Jesse"}


def test_import_subscribers_splits_and_reports_bad_rows(
    bento_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["email,first_name,plan"]
    lines += [f"user{i}@example.com,User {i},pro" for i in range(2500)]
    lines.insert(11, "not-an-email,Bad,free")  # file line 12
    lines.insert(101, ",Empty,free")  # file line 102
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("\n".join(lines) + "\n")

    code = main(["import-subscribers", str(csv_file)])

    captured = capsys.readouterr()
    assert code == 1  # bad rows make the exit status say so
    assert "2502 rows read: 2500 accepted, 0 failed by Bento, 2 bad rows skipped" in captured.out
    assert "line 12: skipped" in captured.err
    assert "line 102: skipped" in captured.err
    assert "2500/2500 rows" in captured.err
    posts = [r for r in bento_env.inspect.requests() if r["path"].endswith("/batch/subscribers")]
    assert [r["count"] for r in posts] == [1000, 1000, 500]
    assert len(bento_env.inspect.subscribers()) == 2500


def test_import_without_email_column_is_one_clear_line(
    bento_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("name\nJesse\n")

    assert main(["import-subscribers", str(csv_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bento-track: error: the CSV needs an 'email' column")
    assert err.count("\n") == 1


def test_missing_credentials_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("BENTO_SITE_UUID", "BENTO_PUBLISHABLE_KEY", "BENTO_SECRET_KEY", "BENTO_BASE_URL"):
        monkeypatch.delenv(var, raising=False)

    assert main(["tags"]) == 2
    err = capsys.readouterr().err
    assert "BENTO_SITE_UUID" in err
    assert err.count("\n") == 1


def test_api_error_exit_1_without_secret(
    bento_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BENTO_SECRET_KEY", "sk_wrong_and_secret")

    assert main(["tags"]) == 1
    err = capsys.readouterr().err
    assert "401" in err
    assert "sk_wrong_and_secret" not in err


def test_invalid_event_exit_2(bento_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send-event", "signup", "--email", "nope"]) != 0
    assert "email is not a well-formed email address" in capsys.readouterr().err


def test_demo_runs_against_the_embedded_emulator(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bento_track", "demo", "--events", "12"],
        capture_output=True, text=True, timeout=60, env=env,
    )

    assert proc.returncode == 0, proc.stderr
    assert "started the embedded emulator" in proc.stdout
    assert "What the emulator received" in proc.stdout
    assert "demo.page_viewed" in proc.stdout
    assert "account.signup" in proc.stdout
