"""Subscriber upserts and email changes survive SIGKILL with the SQLite
store, as events do (`store_contract/test_crash`): everything queued at
least 0.5 s before the kill reaches Bento once another process opens the
store, and the email changes keep their place in the queue."""

from __future__ import annotations

import json

from ..helpers import wait_until
from ..support.processes import killed_while_running
from ..support.scripts import busy_until_killed

KILLED = busy_until_killed("""
client.upsert_subscriber(f"u{i}@example.com", fields={"seq": i}, tags=["saved"])
if i % 100 == 0:  # an email change now and then, in the queue's order
    client.change_subscriber_email(f"u{i}@example.com", f"moved{i}@example.com")
""")


def test_sigkill_loses_no_upsert_queued_half_a_second_before(
    emulator, tmp_path, clients
) -> None:
    emulator.inspect.set_rate_limit(100_000, 60.0)
    emulator.inspect.fail_next(1_000_000, status=503)
    url = f"sqlite:///{tmp_path}/killed.db"
    kwargs = dict(
        emulator.client_kwargs(),
        requests_per_minute=100_000,
        flush_interval=0.05,
        retry_base_delay=0.05,
    )
    marks, killed_at = killed_while_running(
        KILLED, url, json.dumps(kwargs), seconds=3.0
    )
    assert emulator.inspect.request_counts().get("503", 0) > 0  # it was failing
    assert emulator.inspect.subscribers() == []
    must = max(seq for seq, at in marks if at <= killed_at - 0.5)
    emulator.inspect.clear_faults()
    # Another process on the store (this one): it delivers what is there.
    taker = clients(**kwargs, store=url)
    wait_until(lambda: taker.stats().store.depth == 0, 120)
    reclaimed = taker.stats().store.reclaimed

    people = {s["email"]: s for s in emulator.inspect.subscribers()}
    want = {
        (f"moved{i}@example.com" if i % 100 == 0 else f"u{i}@example.com"): i
        for i in range(must + 1)
    }
    missing = [email for email in want if email not in people]
    wrong = [
        email
        for email, seq in want.items()
        if email in people
        and (people[email]["fields"].get("seq"), people[email]["tags"])
        != (seq, ["saved"])
    ]
    moved_back = [f"u{i}@example.com" for i in range(0, must + 1, 100)]
    rows = sum(
        r["count"]
        for r in emulator.inspect.requests()
        if r["path"].endswith("/batch/subscribers") and r["status"] == 200
    )
    print(
        f"killed after {marks[-1][0] + 1} upserts; {must + 1} queued >= 0.5 s "
        f"before the kill; {len(people)} subscribers delivered from {rows} rows, "
        f"{reclaimed} reclaimed"
    )
    assert missing == []
    assert wrong == []
    assert [e for e in moved_back if e in people] == []  # changes kept their order
