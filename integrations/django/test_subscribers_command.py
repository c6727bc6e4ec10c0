"""`python manage.py bento_sync_subscribers` as an operator runs it, against
the emulator: a dry run (counts and three rows, nothing sent), `--since`
on the setting's timestamp, progress lines in a log, and a bad date
refused before anything is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import server_env
from .sites import HERE as SITE

USERS = 2500


@pytest.fixture(scope="module")
def members_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("members") / "members.sqlite3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTO_")}
    subprocess.run(
        [sys.executable, "-m", "members.setup_db"],
        cwd=SITE,
        env={**env, "MEMBERS_DB": db, "MEMBERS_USERS": str(USERS)},
        check=True,
        timeout=120,
    )
    return db


def manage(
    emulator: Any, db: str, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = server_env(emulator, MEMBERS_DB=db, DJANGO_SETTINGS_MODULE="members.settings")
    return subprocess.run(
        [sys.executable, "-m", "django", "bento_sync_subscribers", *args],
        cwd=tmp_path,  # where the default checkpoint file goes
        env={**env, "PYTHONPATH": str(SITE)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_dry_run_counts_and_shows_three_rows(
    members_db: str, emulator: Any, tmp_path: Path
) -> None:
    done = manage(emulator, members_db, tmp_path, "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "2,500 users of auth.User to sync"
    assert lines[1].startswith(
        "dry run: 2,500 rows read: 2,500 to send in 3 batches, 0 invalid; nothing sent"
    )
    samples = [json.loads(line.removeprefix("sample: ")) for line in lines[2:]]
    assert samples == [
        {
            "email": f"user{i}@example.com",
            "first_name": f"User {i}",
            "last_name": "",
            "plan": "pro",
            "tags": "member",
        }
        for i in range(3)
    ]
    assert emulator.inspect.requests() == []
    assert not (tmp_path / "bento-sync-subscribers.json").exists()


def test_since_syncs_the_users_updated_after_a_date(
    members_db: str, emulator: Any, tmp_path: Path
) -> None:
    done = manage(
        emulator, members_db, tmp_path, "--since", "2026-03-01", "--progress", "lines"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "1,250 users of auth.User to sync (updated since 2026-03-01T00:00:00+00:00)"
    )
    assert "synced 1,250/1,250  100%" in done.stderr
    counts = [r["count"] for r in emulator.inspect.requests()]
    assert counts == [1000, 250]
    emails = {s["email"] for s in emulator.inspect.subscribers()}
    # setup_db: even users joined in March, odd ones in January.
    assert emails == {f"user{i}@example.com" for i in range(0, USERS, 2)}
    assert not (tmp_path / "bento-sync-subscribers.json").exists()


def test_a_bad_date_is_refused_before_anything_is_sent(
    members_db: str, emulator: Any, tmp_path: Path
) -> None:
    done = manage(emulator, members_db, tmp_path, "--since", "last tuesday")
    assert done.returncode == 1
    assert "--since 'last tuesday': not a date (2026-05-01)" in done.stderr
    assert emulator.inspect.requests() == []
