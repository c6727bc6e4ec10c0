"""`sync_subscribers()` against the emulator over loopback: batches of 1,000
(one request each, from the client's budget), invalid rows counted by
number, the checkpoint after each confirmed batch and a rerun continuing
there, a dry run that sends nothing, a stop (Bento not confirming) that
keeps the checkpoint where Bento last confirmed, and a refused batch
bisected."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bento_track.errors import ConfigurationError
from bento_track.sync import SyncCheckpoint, sync_subscribers

from ..helpers import max_in_window

FAST = dict(requests_per_minute=10_000, flush_interval=5.0)


def people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"email": f"u{i}@example.com", "fields": {"n": i}, "tags": ["member"]}
        for i in range(start, start + n)
    ]


def batch_rows(emulator: Any) -> list[int]:
    """Rows in each `/batch/subscribers` request Bento took, in order."""
    return [
        r["count"]
        for r in emulator.inspect.requests()
        if r["path"].endswith("/batch/subscribers") and r["status"] == 200
    ]


def test_batches_of_a_thousand_each_confirmed(fast_emulator, clients) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    rows = people(2500)
    rows.insert(6, {"email": "not-an-email"})
    rows.insert(9, {"email": "x@example.com", "plan": "pro"})  # a field outside
    result = sync_subscribers(rows, client=client, progress="off")

    assert result.complete and result.error is None
    assert (result.rows, result.sent, result.invalid, result.batches) == (
        2502,
        2500,
        2,
        3,
    )
    assert [n for n, _ in result.invalid_rows] == [7, 10]
    assert "not a well-formed email" in result.invalid_rows[0][1]
    assert "unknown key(s) plan" in result.invalid_rows[1][1]
    assert batch_rows(fast_emulator) == [1000, 1000, 500]
    stored = {s["email"]: s for s in fast_emulator.inspect.subscribers()}
    assert len(stored) == 2500
    assert stored["u2499@example.com"]["fields"] == {"n": 2499}
    assert stored["u0@example.com"]["tags"] == ["member"]
    assert result.requests == 3
    assert client.stats().store.budget_used == 3  # the client's budget spent
    assert "2,502 rows read: 2,500 sent and confirmed" in result.summary()


def interrupted(rows: list[dict[str, Any]], after: int) -> Iterator[dict[str, Any]]:
    """The rows, until Ctrl-C arrives while row `after + 1` is read."""
    for i, row in enumerate(rows):
        if i == after:
            raise KeyboardInterrupt
        yield row


def test_a_rerun_continues_after_the_last_confirmed_batch(
    fast_emulator, clients, tmp_path: Path
) -> None:
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    rows = people(2500)
    path = tmp_path / "sync.json"
    with pytest.raises(KeyboardInterrupt):
        sync_subscribers(
            interrupted(rows, 1500), client=client, checkpoint=path, progress="off"
        )
    saved = json.loads(path.read_text())
    assert (saved["done"], saved["position"], saved["version"]) == (1000, None, 1)
    assert batch_rows(fast_emulator) == [1000]

    out = io.StringIO()
    result = sync_subscribers(
        rows, client=client, checkpoint=path, progress="lines", stream=out
    )
    assert result.complete and result.resumed_from == 1000
    assert (result.rows, result.sent, result.batches) == (1500, 1500, 2)
    assert batch_rows(fast_emulator) == [1000, 1000, 500]  # nothing sent twice
    assert len(fast_emulator.inspect.subscribers()) == 2500
    assert f"resuming after row 1,000 (checkpoint {path})" in out.getvalue()
    assert "(resumed after row 1,000)" in result.summary()
    assert not path.exists()  # finished: the next sync starts over


def test_rows_with_positions_resume_after_the_last_position(
    fast_emulator, clients, tmp_path: Path
) -> None:
    """A database's rows: the caller's query starts after the checkpoint's
    position, so no row is read twice."""
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    table = [{**row, "position": 10 * i} for i, row in enumerate(people(1200))]
    path = tmp_path / "db.json"
    with pytest.raises(KeyboardInterrupt):
        sync_subscribers(
            interrupted(table, 1100),
            client=client,
            checkpoint=path,
            source="users",
            batch_size=500,
            progress="off",
        )
    checkpoint = SyncCheckpoint(path, "users")
    assert (checkpoint.done, checkpoint.position) == (1000, 9990)
    after = [row for row in table if row["position"] > checkpoint.position]
    result = sync_subscribers(
        after,
        client=client,
        checkpoint=checkpoint,
        total=len(table),
        batch_size=500,
        progress="off",
    )
    assert result.complete and result.rows == 200 and result.done == 1200
    assert batch_rows(fast_emulator) == [500, 500, 200]


def test_a_checkpoint_of_another_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sync.json"
    SyncCheckpoint(path, "csv sha256:aaa").save(3000, None)
    with pytest.raises(ConfigurationError, match="--restart"):
        SyncCheckpoint(path, "csv sha256:bbb")
    assert SyncCheckpoint(path, "csv sha256:bbb", restart=True).done == 0
    path.write_text("not json")
    with pytest.raises(ConfigurationError, match="not a bento_track sync checkpoint"):
        SyncCheckpoint(path, "csv sha256:aaa")


def test_a_dry_run_sends_nothing_and_shows_three_rows(
    fast_emulator, tmp_path: Path
) -> None:
    path = tmp_path / "sync.json"
    rows = people(2100) + [{"email": "bad"}]
    rows[0] = {
        "email": "ann@example.com",
        "fields": {"first_name": "Ann", "plan": "pro"},
        "tags": "customer,beta",
        "remove_tags": ["lead"],
    }
    result = sync_subscribers(rows, checkpoint=path, dry_run=True, progress="off")
    assert result.complete and result.dry_run
    assert (result.rows, result.invalid, result.batches, result.sent) == (
        2101,
        1,
        3,
        0,
    )
    assert result.samples == [
        {
            "email": "ann@example.com",
            "first_name": "Ann",
            "plan": "pro",
            "tags": "customer,beta",
            "remove_tags": "lead",
        },
        {"email": "u1@example.com", "n": 1, "tags": "member"},
        {"email": "u2@example.com", "n": 2, "tags": "member"},
    ]
    assert fast_emulator.inspect.requests() == []
    assert not path.exists()
    assert result.summary().startswith(
        "dry run: 2,101 rows read: 2,100 to send in 3 batches, 1 invalid"
    )


def test_bento_not_confirming_stops_with_the_checkpoint_in_place(
    fast_emulator, clients, tmp_path: Path
) -> None:
    path = tmp_path / "sync.json"
    first = clients(**fast_emulator.client_kwargs(), **FAST, retry_base_delay=0.05)
    rows = people(2500)

    def failing_after_the_first_batch() -> Iterator[dict[str, Any]]:
        for i, row in enumerate(rows):
            if i == 1000:  # Bento goes down once the first batch is in
                fast_emulator.inspect.fail_next(1_000_000, status=503)
            yield row

    result = sync_subscribers(
        failing_after_the_first_batch(),
        client=first,
        checkpoint=path,
        timeout=0.5,
        progress="off",
    )
    assert not result.complete and result.sent == 1000
    assert result.error is not None
    assert "Bento did not confirm rows 1,001-2,000 within 0.5 s" in result.error
    assert "503" in result.error
    assert f"the checkpoint {path} keeps row 1,000" in result.error
    assert json.loads(path.read_text())["done"] == 1000

    fast_emulator.inspect.clear_faults()
    again = sync_subscribers(rows, client=first, checkpoint=path, progress="off")
    assert again.complete and again.sent == 1500
    assert batch_rows(fast_emulator) == [1000, 1000, 500]
    assert len(fast_emulator.inspect.subscribers()) == 2500


def test_a_refused_batch_is_bisected(fast_emulator, clients) -> None:
    """Bento's 422 for a batch: halves are tried, each with a permit of its
    own, down to single rows, which are counted as refused."""
    client = clients(**fast_emulator.client_kwargs(), **FAST)
    fast_emulator.inspect.fail_next(3, status=422)
    result = sync_subscribers(people(1000), client=client, progress="off")
    assert result.complete and (result.sent, result.rejected) == (1000, 0)
    sizes = [(r["count"], r["status"]) for r in fast_emulator.inspect.requests()]
    assert sizes == [
        (1000, 422),
        (500, 422),
        (250, 422),
        (125, 200),
        (125, 200),
        (250, 200),
        (500, 200),
    ]
    assert result.requests == 7 and result.batches == 1
    assert len(fast_emulator.inspect.subscribers()) == 1000

    fast_emulator.inspect.reset()
    fast_emulator.inspect.set_rate_limit(10_000, 60.0)
    fast_emulator.inspect.fail_next(2, status=422)
    refused = sync_subscribers(people(2), client=client, progress="off")
    assert refused.complete and (refused.sent, refused.rejected) == (1, 1)
    [(email, why)] = refused.rejected_rows
    assert email == "u0@example.com" and "422" in why
    assert "1 rows refused by Bento" in refused.summary()


def test_a_client_that_sends_nothing_is_refused(clients) -> None:
    disabled = clients(disabled=True)
    with pytest.raises(ConfigurationError, match="sends nothing"):
        sync_subscribers(people(1), client=disabled)


def test_the_sync_leaves_part_of_each_window_to_the_app(emulator, clients) -> None:
    """Half of a budget of 4 requests per second: 2 a second at most, and
    the emulator (enforcing the whole budget) never answers 429."""
    emulator.inspect.set_rate_limit(4, 1.0)
    client = clients(**emulator.client_kwargs(), requests_per_minute=4, rate_window=1.0)
    result = sync_subscribers(
        people(600), client=client, batch_size=100, budget_share=0.5, progress="off"
    )
    assert result.complete and result.requests == 6
    times = [r["time"] for r in emulator.inspect.requests()]
    assert [r["status"] for r in emulator.inspect.requests()] == [200] * 6
    # Arrival times: a request's trip (the first one opens the connection)
    # shifts it by a few milliseconds after the sync counted it.
    assert max_in_window(times, 0.9) <= 2
    assert times[-1] - times[0] > 2.0  # six requests, two a second
    with pytest.raises(ConfigurationError, match="budget_share"):
        sync_subscribers(people(1), client=client, budget_share=0)
