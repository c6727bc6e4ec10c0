"""The `bento-track` command line, against the running emulator over loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bento_track.cli import main

from .support.processes import free_port


@pytest.fixture
def bento_env(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    kwargs = emulator.client_kwargs()
    monkeypatch.setenv("BENTO_SITE_UUID", kwargs["site_uuid"])
    monkeypatch.setenv("BENTO_PUBLISHABLE_KEY", kwargs["publishable_key"])
    monkeypatch.setenv("BENTO_SECRET_KEY", kwargs["secret_key"])
    monkeypatch.setenv("BENTO_BASE_URL", kwargs["base_url"])
    return emulator


def test_send_event_reaches_the_emulator(
    bento_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "send-event",
            "account.signup",
            "--email",
            "a@example.com",
            "--field",
            "plan=pro",
            "--field",
            "seats=3",
            "--details",
            '{"source": "cli"}',
        ]
    )

    assert code == 0
    assert "accepted 1" in capsys.readouterr().out
    [event] = bento_env.inspect.events()
    assert event["type"] == "account.signup"
    assert event["fields"] == {"plan": "pro", "seats": 3}
    assert event["details"] == {"source": "cli"}


def test_tags_create_then_list(
    bento_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tags", "--create", "vip"]) == 0
    assert main(["tags"]) == 0

    out = capsys.readouterr().out
    assert "created tag 'vip'" in out
    assert "\tvip" in out


def test_send_email(bento_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "send-email",
            "--to",
            "a@example.com",
            "--from",
            "hello@example.com",
            "--subject",
            "Hi",
            "--html",
            "<p>Hi {{ name }}</p>",
            "--var",
            "name=Jesse",
        ]
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
    assert (
        "2502 rows read: 2500 accepted, 0 failed by Bento, 2 bad rows skipped"
        in captured.out
    )
    assert "line 12: skipped" in captured.err
    assert "line 102: skipped" in captured.err
    assert "2500/2500 rows" in captured.err
    posts = [
        r
        for r in bento_env.inspect.requests()
        if r["path"].endswith("/batch/subscribers")
    ]
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
    for var in (
        "BENTO_SITE_UUID",
        "BENTO_PUBLISHABLE_KEY",
        "BENTO_SECRET_KEY",
        "BENTO_BASE_URL",
    ):
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


def test_invalid_event_exit_2(
    bento_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send-event", "signup", "--email", "nope"]) != 0
    assert "email is not a well-formed email address" in capsys.readouterr().err


def test_demo_runs_against_the_embedded_emulator(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bento_track", "demo", "--events", "12"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )

    assert proc.returncode == 0, proc.stderr
    assert "started the embedded emulator" in proc.stdout
    assert "What the emulator received" in proc.stdout
    assert "demo.page_viewed" in proc.stdout
    assert "account.signup" in proc.stdout


# -- issue 10.7: one line, and exit 2 for usage errors, 1 for failures --------

SECRET = "sk_live_do_not_print_me"


def _one_line(err: str) -> str:
    """The single error line, checked to be the only output on stderr."""
    assert err.startswith("bento-track: error: "), err
    assert err.count("\n") == 1, err
    return err


def _sent(emulator: Any) -> list[Any]:
    """Requests that reached the API (not the inspection endpoints)."""
    return [r for r in emulator.inspect.requests() if "/api/v1/" in r["path"]]


def test_import_non_utf8_file_is_one_line_naming_file_and_encoding(
    bento_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "latin.csv"
    csv_file.write_bytes("email,first_name\njose@example.com,José\n".encode("latin-1"))

    assert main(["import-subscribers", str(csv_file)]) == 2

    err = _one_line(capsys.readouterr().err)
    assert str(csv_file) in err
    assert "byte 0xe9 on line 2" in err
    assert "--encoding latin-1" in err
    assert "Traceback" not in err
    assert _sent(bento_env) == []  # refused before anything was sent


def test_import_with_encoding_option_reads_the_file(
    bento_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "latin.csv"
    csv_file.write_bytes("email,first_name\njose@example.com,José\n".encode("latin-1"))

    assert main(["import-subscribers", str(csv_file), "--encoding", "latin-1"]) == 0

    assert "1 rows read: 1 accepted" in capsys.readouterr().out
    [subscriber] = bento_env.inspect.subscribers()
    assert subscriber["email"] == "jose@example.com"
    assert "José" in str(subscriber)


def test_import_default_utf8_skips_a_bom(
    bento_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "excel.csv"
    csv_file.write_bytes("\ufeffemail,first_name\nann@example.com,Zoë\n".encode())

    assert main(["import-subscribers", str(csv_file)]) == 0
    assert "1 rows read: 1 accepted" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make", "extra", "expected"),
    [
        (lambda d: d / "missing.csv", [], "missing.csv: no such file"),
        (lambda d: d, [], "is a directory, not a CSV file"),
        (
            lambda d: d / "people.csv",
            ["--encoding", "no-such-codec"],
            "--encoding 'no-such-codec' is not an encoding",
        ),
        (
            lambda d: d / "people.csv",
            ["--batch-size", "0"],
            "--batch-size must be 1-1000",
        ),
    ],
    ids=["missing", "directory", "unknown-encoding", "batch-size"],
)
def test_import_file_and_option_problems_are_usage_errors(
    bento_env: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Any,
    extra: list[str],
    expected: str,
) -> None:
    (tmp_path / "people.csv").write_text("email\na@example.com\n")

    assert main(["import-subscribers", str(make(tmp_path)), *extra]) == 2

    assert expected in _one_line(capsys.readouterr().err)
    assert _sent(bento_env) == []


def test_import_malformed_csv_is_one_line_with_the_line_number(
    bento_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "people.csv"
    # A cell over the csv module's field size limit: csv.Error, not a row error.
    csv_file.write_text(
        'email,notes\na@example.com,ok\nb@example.com,"' + "x" * 200_000 + '"\n'
    )

    assert main(["import-subscribers", str(csv_file)]) == 2

    err = _one_line(capsys.readouterr().err)
    assert f"{csv_file} line 3: not readable as CSV" in err
    assert _sent(bento_env) == []


def test_import_row_the_api_would_refuse_is_skipped_by_line(
    bento_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email,first_name\na@example.com,Ann\nb@example.com,B\x00b\n")

    assert main(["import-subscribers", str(csv_file)]) == 1  # a bad row: a failure

    captured = capsys.readouterr()
    assert "line 3: skipped: row.first_name: contains a NUL character" in captured.err
    assert "2 rows read: 1 accepted" in captured.out
    assert [s["email"] for s in bento_env.inspect.subscribers()] == ["a@example.com"]


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        (
            "[1,2]",
            '--details must be a JSON object such as \'{"source": "cli"}\', not an array',
        ),
        ("null", "not null"),
        ('"cli"', "not a string"),
        ("3", "not a number"),
        ("true", "not a boolean"),
        ("{bad", "--details is not valid JSON"),
        ("", "--details is not valid JSON"),
        ('{"a": NaN}', "details.a: nan is not valid JSON"),
    ],
)
def test_send_event_bad_details_exit_2(
    bento_env: Any, capsys: pytest.CaptureFixture[str], details: str, expected: str
) -> None:
    code = main(
        ["send-event", "signup", "--email", "a@example.com", "--details", details]
    )

    assert code == 2
    assert expected in _one_line(capsys.readouterr().err)
    assert _sent(bento_env) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["send-event", "signup", "--email", "nope"],
            "email is not a well-formed email",
        ),
        (["send-event", "", "--email", "a@example.com"], "type"),
        (
            ["send-event", "signup", "--email", "a@example.com", "--field", "plan"],
            "--field expects key=value",
        ),
        (
            ["send-event", "signup", "--email", "a@example.com", "--field", "x=1e400"],
            "fields.x",
        ),
        (
            [
                "send-email",
                "--to",
                "nope",
                "--from",
                "hello@example.com",
                "--subject",
                "S",
                "--html",
                "H",
            ],
            "to is not a well-formed email",
        ),
        (
            [
                "send-email",
                "--to",
                "a@example.com",
                "--from",
                "hello@example.com",
                "--subject",
                "S",
                "--html",
                "H",
                "--var",
                "=x",
            ],
            "--var expects key=value",
        ),
        (["tags", "--create", ""], "--create needs a tag name"),
        (["tags", "--create", "   "], "--create needs a tag name"),
        (["demo", "--events", "-1"], "--events must be 0-10000"),
        (["emulator", "--port", "70000"], "--port must be 0-65535"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_send_nothing(
    bento_env: Any, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main(argv) == 2

    captured = capsys.readouterr()
    assert expected in _one_line(captured.err)
    assert captured.out == ""  # `tags --create ''` no longer lists the tags
    assert _sent(bento_env) == []


def test_argparse_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["import-subscribers", "x.csv", "--batch-size", "many"],
        ["demo", "--events", "x"],
        [],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_api_error_answer_exit_1(
    bento_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "send-email",
            "--to",
            "a@example.com",
            "--from",
            "stranger@example.com",
            "--subject",
            "Hi",
            "--html",
            "<p>Hi</p>",
        ]
    )

    assert code == 1  # Bento's 422 (unknown author): the command ran and failed
    assert "422" in _one_line(capsys.readouterr().err)


def test_network_failure_exit_1_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import functools

    from bento_track.api import BentoAPI

    # No waiting between the retries of a refused connection.
    monkeypatch.setattr(
        BentoAPI,
        "__init__",
        functools.partialmethod(BentoAPI.__init__, sleep=lambda _s: None),
    )
    port = free_port()  # a loopback port nobody listens on
    monkeypatch.setenv("BENTO_SITE_UUID", "site")
    monkeypatch.setenv("BENTO_PUBLISHABLE_KEY", "pk_test")
    monkeypatch.setenv("BENTO_SECRET_KEY", SECRET)
    monkeypatch.setenv("BENTO_BASE_URL", f"http://127.0.0.1:{port}/api/v1")

    assert main(["tags"]) == 1

    err = _one_line(capsys.readouterr().err)
    assert "fetch/tags failed" in err
    assert SECRET not in err


def test_missing_credentials_names_every_missing_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BENTO_PUBLISHABLE_KEY", "pk_test")
    monkeypatch.delenv("BENTO_SITE_UUID", raising=False)
    monkeypatch.delenv("BENTO_SECRET_KEY", raising=False)

    assert main(["send-event", "signup", "--email", "a@example.com"]) == 2

    err = _one_line(capsys.readouterr().err)
    assert "BENTO_SITE_UUID and BENTO_SECRET_KEY are not set" in err
    assert "--site-uuid and --secret-key" in err
    assert "BENTO_PUBLISHABLE_KEY" not in err


def test_tags_create_says_when_the_tag_already_existed(
    bento_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tags", "--create", "vip"]) == 0
    assert main(["tags", "--create", " vip "]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("created tag 'vip' (id ")
    assert out[1].startswith("tag 'vip' already exists (id ")
    assert out[1].endswith("nothing created")
    assert [t["attributes"]["name"] for t in bento_env.inspect.tags()] == ["vip"]


def _clear_bento_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "BENTO_SITE_UUID",
        "BENTO_PUBLISHABLE_KEY",
        "BENTO_SECRET_KEY",
        "BENTO_BASE_URL",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"BENTO_SITE_UUID": "site"},
            "BENTO_SITE_UUID is set but BENTO_PUBLISHABLE_KEY and BENTO_SECRET_KEY are not",
        ),
        (
            {
                "BENTO_SITE_UUID": "site",
                "BENTO_PUBLISHABLE_KEY": "pk",
                "BENTO_SECRET_KEY": "",
            },
            "BENTO_SITE_UUID and BENTO_PUBLISHABLE_KEY are set but BENTO_SECRET_KEY is not",
        ),
        (
            {"BENTO_BASE_URL": "http://127.0.0.1:8025/api/v1"},
            "BENTO_BASE_URL is set but BENTO_SITE_UUID, BENTO_PUBLISHABLE_KEY and BENTO_SECRET_KEY are not",
        ),
    ],
)
def test_demo_refuses_partial_credentials(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: str,
) -> None:
    _clear_bento_env(monkeypatch)
    for var, value in env.items():
        monkeypatch.setenv(var, value)

    assert main(["demo"]) == 2

    captured = capsys.readouterr()
    assert expected in _one_line(captured.err)
    assert "--emulator" in captured.err
    assert captured.out == ""  # no emulator started, nothing sent


def test_demo_target_and_reason() -> None:
    from bento_track.cli.demo import choose_target

    full = {
        "BENTO_SITE_UUID": "s",
        "BENTO_PUBLISHABLE_KEY": "p",
        "BENTO_SECRET_KEY": "k",
    }
    assert choose_target(False, {}) == (True, "no BENTO_* credentials set")
    assert choose_target(True, {}) == (True, "--emulator given")
    assert choose_target(True, full) == (
        True,
        "--emulator given; BENTO_* credentials ignored",
    )
    assert (
        choose_target(True, {"BENTO_SITE_UUID": "s"})[0] is True
    )  # partial: --emulator wins
    assert choose_target(False, full) == (False, "BENTO_* credentials set")


def test_demo_with_emulator_flag_says_credentials_are_ignored(
    bento_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--emulator", "--events", "3"]) == 0

    out = capsys.readouterr().out
    assert "started the embedded emulator" in out
    assert "(--emulator given; BENTO_* credentials ignored)" in out
    assert "No Bento credentials set" not in out
    assert _sent(bento_env) == []  # it did not send to the configured target


def test_demo_with_credentials_names_the_target_it_sends_to(
    bento_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--events", "3"]) == 0

    out = capsys.readouterr().out
    assert f"Target: Bento at {bento_env.base_url} (BENTO_* credentials set)" in out
    assert "embedded emulator" not in out
    assert any(e["type"] == "demo.page_viewed" for e in bento_env.inspect.events())
    assert SECRET not in out


def test_secrets_never_printed(
    bento_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    pk = bento_env.client_kwargs()["publishable_key"]
    basic = base64.b64encode(f"{pk}:{SECRET}".encode()).decode()
    monkeypatch.setenv("BENTO_SECRET_KEY", SECRET)
    base = bento_env.base_url

    # 401 with the key given as an option, the variable unset
    monkeypatch.delenv("BENTO_SECRET_KEY")
    assert main(["tags", "--secret-key", SECRET]) == 1
    monkeypatch.setenv("BENTO_SECRET_KEY", SECRET)
    # a malformed base URL that quotes the key and the Basic credential back
    assert main(["tags", "--base-url", f"{base}?k={SECRET}"]) == 2
    assert main(["tags", "--base-url", f"{base}?h={basic}"]) == 2
    # a refused demo
    monkeypatch.delenv("BENTO_SITE_UUID")
    assert main(["demo"]) == 2

    captured = capsys.readouterr()
    assert captured.err.count("\n") == 4
    assert "***" in captured.err
    for secret in (SECRET, basic):
        assert secret not in captured.out
        assert secret not in captured.err


def test_emulator_that_cannot_bind_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:  # listening: uvicorn's bind must fail
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 1
