"""`bento-track sync-subscribers --from-csv`, against the emulator: the
CSV read as `import-subscribers` reads it, batches of 1,000, a dry run with
counts and three rows, a stop that leaves the checkpoint, and a rerun that
continues there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bento_track.cli import main

from ..test_cli import bento_env  # noqa: F401 (a fixture)
from .test_backfill import batch_rows


def write_csv(path: Path, n: int, bad_line: bool = True) -> Path:
    lines = ["email,first_name,plan,tags"]
    lines += [f'u{i}@example.com,User {i},pro,"member,beta"' for i in range(n)]
    if bad_line:
        lines.insert(4, "not-an-email,Nobody,free,")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_csv_goes_in_batches_of_a_thousand(
    bento_env: Any,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv = write_csv(tmp_path / "users.csv", 2500)
    code = main(["sync-subscribers", "--from-csv", str(csv), "--progress", "lines"])
    out, err = capsys.readouterr()
    assert code == 1, err  # the bad row is reported, and the status says so
    assert "line 5: skipped: email is not a well-formed email address" in err
    assert "synced 2,500/2,500  100%" in err
    assert out.startswith("2,500 rows read: 2,500 sent and confirmed by Bento in 3")
    assert batch_rows(bento_env) == [1000, 1000, 500]
    ann = next(
        s for s in bento_env.inspect.subscribers() if s["email"] == "u7@example.com"
    )
    assert ann["first_name"] == "User 7" and ann["fields"] == {"plan": "pro"}
    assert ann["tags"] == ["member", "beta"]
    assert not (tmp_path / "users.csv.bento-sync.json").exists()


def test_a_dry_run_prints_counts_and_three_rows(
    bento_env: Any,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv = write_csv(tmp_path / "users.csv", 1500, bad_line=False)
    code = main(["sync-subscribers", "--from-csv", str(csv), "--dry-run"])
    out, _ = capsys.readouterr()
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "dry run: 1,500 rows read: 1,500 to send in 2 batches, 0 invalid; nothing sent"
    )
    samples = [json.loads(line.removeprefix("sample: ")) for line in lines[1:]]
    assert samples[0] == {
        "email": "u0@example.com",
        "first_name": "User 0",
        "plan": "pro",
        "tags": "member,beta",
    }
    assert len(samples) == 3
    assert bento_env.inspect.requests() == []


def test_a_stopped_sync_resumes_where_bento_confirmed(
    bento_env: Any,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv = write_csv(tmp_path / "users.csv", 2500, bad_line=False)
    checkpoint = tmp_path / "state.json"
    # Bento takes the first batch, then answers 429 until the command gives up.
    bento_env.inspect.set_rate_limit(1, 60.0)
    argv = ["sync-subscribers", "--from-csv", str(csv), "--checkpoint", str(checkpoint)]
    code = main([*argv, "--timeout", "1", "--progress", "off"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "Bento did not confirm rows 1,001-2,000 within 1 s" in out
    assert "429" in out
    assert json.loads(checkpoint.read_text())["done"] == 1000
    bento_env.inspect.set_rate_limit(10_000, 60.0)

    assert main([*argv, "--progress", "lines"]) == 0
    out, err = capsys.readouterr()
    assert f"resuming after row 1,000 (checkpoint {checkpoint})" in err
    assert "1,500 rows read (resumed after row 1,000): 1,500 sent" in out
    assert batch_rows(bento_env) == [1000, 1000, 500]
    assert len(bento_env.inspect.subscribers()) == 2500
    assert not checkpoint.exists()

    # The same file changed: the checkpoint of the old one is refused.
    checkpoint.write_text(
        json.dumps({"version": 1, "source": "csv sha256:0", "done": 5})
    )
    assert main(argv) == 2
    assert "is of another sync" in capsys.readouterr().err
