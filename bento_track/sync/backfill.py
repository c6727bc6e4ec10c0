"""`sync_subscribers()`: every row of an iterable of dicts to Bento's
`/batch/subscribers`, within the account's request budget, resumably.

Rows are validated as `upsert_subscriber()` validates them and sent in
batches of up to 1,000, one request each, each spending one permit of the
client's request budget (`Client.request_permit`): the budget the delivery
thread spends on the app's events, shared with every process of the app by
a SQLite or Redis store, and paused for all of them by a 429. A batch's rows
are merged per email exactly as the pipeline merges queued upserts. 429, 408,
5xx and network errors are retried (each try a new permit) until the batch's
`timeout`; a batch Bento refuses (400/422) is split in halves to find the
rows it refuses, as the pipeline bisects. The sync sends only while the
budget's current window (every process's requests, read from the store) is
below `budget_share` of the budget (default 80 %), so the app's own
requests always find room: its events keep flowing while a backfill runs.

After each batch Bento confirmed, the checkpoint records how far the sync
is, so a sync that stops (killed, Ctrl-C, Bento unreachable past `timeout`)
resumes at the first batch Bento had not answered: the one batch that was in
flight is the most that is ever sent again.

Why not `upsert_subscriber()` and `flush()`: with a durable store a batch
queued by a process that is killed stays in the store, and the store sends
it (it cannot know whether Bento got it), so a rerun that sends it again
makes two copies; and a queued batch may leave in two requests when the
app's events land between its rows. One request per batch, answered before
the checkpoint moves, has neither problem.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any

from .._core.kinds import merge_upserts
from .._default import get_client
from .._transport.requests import retry_delay
from ..api import BentoAPI
from ..client import Client
from ..config import check_number
from ..errors import APIError, ConfigurationError, InvalidEventError
from ..subscribers import SubscriberUpsert, build_upsert
from .checkpoint import Position, SyncCheckpoint
from .progress import Progress

__all__ = ["MAX_BATCH", "ROW_KEYS", "SyncResult", "row_upsert", "sync_subscribers"]

#: Bento's most rows per `/batch/subscribers` request
MAX_BATCH = 1000
#: what a row may hold (custom fields go in `fields`)
ROW_KEYS = ("email", "fields", "tags", "remove_tags", "position")
#: invalid rows remembered by number and reason (all are counted)
_KEEP_INVALID = 1000
_SAMPLES = 3
#: tries of one request (the batch's `timeout` usually ends them first)
_MAX_TRIES = 20
#: what Bento says of rows it refuses: bisected to the rows themselves
_REFUSED = (400, 422)


@dataclass
class SyncResult:
    """What one `sync_subscribers()` run did.

    Attributes:
        rows: rows read in this run (rows the checkpoint skipped not counted).
        sent: rows Bento confirmed in this run.
        batches: batches Bento confirmed (one `/batch/subscribers` request
            each, more for a batch it refused and that was bisected), or
            that a dry run would send.
        requests: requests made (retries and bisection halves included).
        invalid: rows skipped as invalid (all of them, counted).
        invalid_rows: (row number, reason) of the first 1,000 of them.
        resumed_from: rows behind the sync when it started (the checkpoint's).
        done: rows behind the sync when it ended.
        rejected: rows Bento refused (400/422, isolated by bisection);
            their reasons are in `rejected_rows`.
        rejected_rows: (email, Bento's answer) of the first 1,000 of them.
        complete: every row was read and confirmed (or skipped as invalid).
        error: why the sync stopped early, or None.
        dry_run: nothing was sent (`sync_subscribers(dry_run=True)`).
        samples: a dry run's first three rows, as `/batch/subscribers` gets
            them.
        seconds: how long the run took.
    """

    rows: int = 0
    sent: int = 0
    batches: int = 0
    requests: int = 0
    invalid: int = 0
    invalid_rows: list[tuple[int, str]] = field(default_factory=list)
    resumed_from: int = 0
    done: int = 0
    rejected: int = 0
    rejected_rows: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = False
    error: str | None = None
    dry_run: bool = False
    samples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people: what was read, sent, skipped, and how long."""
        resumed = (
            f" (resumed after row {self.resumed_from:,})" if self.resumed_from else ""
        )
        valid = self.rows - self.invalid
        if self.dry_run:
            return (
                f"dry run: {self.rows:,} rows read{resumed}: {valid:,} to send in "
                f"{_batches(self.batches)}, {self.invalid:,} invalid; nothing sent"
            )
        text = (
            f"{self.rows:,} rows read{resumed}: {self.sent:,} sent and confirmed by "
            f"Bento in {_batches(self.batches)}, {self.invalid:,} invalid rows skipped"
        )
        if self.rejected:
            text += f", {self.rejected:,} rows refused by Bento"
        text += f"; {self.seconds:.1f} s"
        if not self.complete:
            text += f"; stopped: {self.error}"
        return text


def _batches(n: int) -> str:
    return f"{n:,} batch" if n == 1 else f"{n:,} batches"


def row_upsert(row: object) -> SubscriberUpsert:
    """The validated upsert of one row (`{"email": ..., "fields": {...},
    "tags": [...], "remove_tags": [...], "position": ...}`).

    Raises:
        InvalidEventError: naming what is wrong (an unknown key included:
            custom fields go in `fields`).
    """
    if not isinstance(row, Mapping):
        raise InvalidEventError(
            f"a row must be a dict with an email, not {type(row).__name__}",
            field="row",
        )
    unknown = sorted(str(key) for key in row if key not in ROW_KEYS)
    if unknown:
        raise InvalidEventError(
            f"unknown key(s) {', '.join(unknown)}: a row holds "
            f"{', '.join(ROW_KEYS)} (custom fields go in fields)",
            field=unknown[0],
        )
    return build_upsert(
        row.get("email"), row.get("fields"), row.get("tags"), row.get("remove_tags")
    )


def _position(row: object) -> Position | None:
    if not isinstance(row, Mapping):
        return None
    value = row.get("position")
    if value is None:
        return None
    if type(value) not in (int, str):
        raise InvalidEventError(
            f"position must be an int or a str (a database id), not "
            f"{type(value).__name__}",
            field="position",
        )
    return value  # type: ignore[no-any-return]


class _Stopped(Exception):
    """A batch was not confirmed; the message says why."""


class _Run:
    """One run's state: the batch being filled, and what was confirmed."""

    def __init__(
        self,
        client: Client | None,
        checkpoint: SyncCheckpoint | None,
        result: SyncResult,
        progress: Progress,
        timeout: float,
        share: float,
    ) -> None:
        self.client = client
        self.api = BentoAPI(config=client.config, max_retries=0) if client else None
        #: the share of the budget's window the sync may fill (see `_pace`)
        self.share = share
        self.checkpoint = checkpoint
        self.result = result
        self.progress = progress
        self.timeout = timeout
        self.batch: list[SubscriberUpsert] = []
        self.first = 0  # the row number of the batch's first row
        self._pause = threading.Event()  # never set: an interruptible sleep
        self._last: str | None = None  # Bento's last error answer

    def close(self) -> None:
        """Close the HTTP connection."""
        if self.api is not None:
            self.api.close()

    def send(self, done: int, position: Position | None) -> None:
        """Send the batch and wait for Bento's answer; then `done` rows are
        behind the sync, the last at `position`."""
        batch, self.batch = self.batch, []
        result = self.result
        if batch:
            rows = merge_upserts([u.encode() for u in batch])
            if self.client is None:  # a dry run
                if len(result.samples) < _SAMPLES:
                    result.samples += rows[: _SAMPLES - len(result.samples)]
            else:
                deadline = time.monotonic() + self.timeout
                what = f"rows {self.first:,}-{done:,}"
                refused = result.rejected
                self._deliver(rows, deadline, what)
                result.sent += len(batch) - (result.rejected - refused)
            result.batches += 1
        if self.checkpoint is not None and self.client is not None:
            self.checkpoint.save(done, position)
        result.done = done
        self.progress.update(done)

    def _deliver(self, rows: list[dict[str, Any]], deadline: float, what: str) -> None:
        """One request for `rows` within the budget, tried until `deadline`;
        a refusal (400/422) is bisected down to the rows Bento refuses."""
        assert self.client is not None and self.api is not None
        tries = 0
        while True:
            tries += 1
            left = deadline - time.monotonic()
            try:
                self._pace(deadline)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("time ran out")
                with self.client.request_permit(timeout=left):
                    self.result.requests += 1
                    self.api.import_subscribers(rows)
                return
            except TimeoutError as exc:
                raise _Stopped(
                    f"Bento did not confirm {what} within {self.timeout:g} s "
                    f"({self._last or exc})"
                ) from None
            except APIError as error:
                self._last = str(error)
                if error.status in _REFUSED:
                    self._bisect(rows, deadline, what, error)
                    return
                delay = retry_delay(error, tries, _MAX_TRIES, random.random)
                if delay is None:
                    raise _Stopped(f"Bento refused {what}: {error}") from None
                if error.status != 429:  # a 429 paused the budget already
                    self._pause.wait(max(0.0, min(delay, deadline - time.monotonic())))

    def _pace(self, deadline: float) -> None:
        """Wait while the budget's current window holds `share` of the
        budget or more, counting every process sharing the store: the rest
        of the window is the app's (a rerun after a crash counts what the
        dead run spent)."""
        assert self.client is not None
        while True:
            store = self.client.stats().store
            if store is None or store.budget_limit <= 0:
                return  # no budget configured yet: nothing spent either
            cap = max(1, int(store.budget_limit * self.share))
            if store.budget_used < cap:
                return
            step = min(0.25, max(0.01, store.budget_window / 20))
            if time.monotonic() + step > deadline:
                raise TimeoutError(
                    f"the budget's window stayed at {store.budget_used} of "
                    f"{store.budget_limit} requests (this sync sends below {cap})"
                )
            self._pause.wait(step)

    def _bisect(
        self, rows: list[dict[str, Any]], deadline: float, what: str, error: APIError
    ) -> None:
        if len(rows) == 1:
            self.result.rejected += 1
            if len(self.result.rejected_rows) < _KEEP_INVALID:
                self.result.rejected_rows.append((rows[0]["email"], str(error)))
            return
        half = len(rows) // 2
        self._deliver(rows[:half], deadline, what)
        self._deliver(rows[half:], deadline, what)


def sync_subscribers(
    rows: Iterable[Mapping[str, Any]],
    *,
    client: Client | None = None,
    checkpoint: str | os.PathLike[str] | SyncCheckpoint | None = None,
    source: str = "",
    restart: bool = False,
    total: int | None = None,
    batch_size: int = MAX_BATCH,
    dry_run: bool = False,
    progress: str = "auto",
    stream: Any = None,
    timeout: float = 120.0,
    budget_share: float = 0.8,
) -> SyncResult:
    """Create or update every subscriber in `rows` in Bento, in batches of
    `batch_size` (up to 1,000), one request each within `client`'s request
    budget (default: the default client's, shared with the app's events by
    its store), each batch answered by Bento before the next.

    A row is a dict: `{"email": "ann@example.com", "fields": {"plan":
    "pro"}, "tags": ["customer"], "remove_tags": ["lead"], "position": 42}`
    (all but `email` optional). An invalid row is skipped and counted, with
    its number and reason in the result.

    Resuming: with `checkpoint` (a file path, or a `SyncCheckpoint`), the
    sync records after each confirmed batch how far it is, and a later call
    with the same file continues there (the file is deleted once the sync
    finishes). Rows without `position`: the rerun skips as many rows as
    were done, so the iterable must yield the same rows in the same order.
    Rows with `position` (a database id, ascending): the caller reads
    `SyncCheckpoint(path, source).position` and yields only the rows after
    it (`WHERE id > :position ORDER BY id`), which are never read twice.
    `source` names what is synced; a checkpoint of another source is
    refused. `restart=True` ignores the file.

    Args:
        total: rows expected, for the progress's percentage and ETA
            (default: `len(rows)` when it has one).
        dry_run: read and validate everything, send nothing, leave the
            checkpoint alone; the result counts what would be sent and
            holds three sample rows.
        progress: "auto" (a bar on a terminal, plain lines otherwise),
            "bar", "lines" or "off"; written to `stream` (default stderr).
        timeout: seconds to wait for Bento to confirm one batch.
        budget_share: the sync sends only while the current window of the
            client's request budget (every process's requests, with a
            shared store) is below this share of it (0.01..1; default 0.8):
            the rest is left to the app's own requests.

    Returns:
        A `SyncResult`; `complete` is False when the sync stopped early
        (`error` says why; the checkpoint keeps its place).

    Raises:
        ConfigurationError: a bad argument, a client that sends nothing
            (disabled, no credentials), or a checkpoint that cannot be read
            or belongs to another source.
    """
    batch_size = int(check_number("batch_size", batch_size, 1, MAX_BATCH, integer=True))
    timeout = check_number("timeout", timeout, 0, 86400, unit="seconds")
    share = check_number("budget_share", budget_share, 0.01, 1.0)
    if isinstance(checkpoint, SyncCheckpoint):
        saved: SyncCheckpoint | None = checkpoint
    elif checkpoint is not None:
        saved = SyncCheckpoint(checkpoint, source, restart=restart)
    else:
        saved = None
    if not dry_run:
        client = client if client is not None else get_client()
        if client.disabled:
            raise ConfigurationError(
                "the client sends nothing (disabled, or no Bento credentials: set "
                "BENTO_SITE_UUID, BENTO_PUBLISHABLE_KEY and BENTO_SECRET_KEY); "
                "nothing was synced"
            )
    if total is None and isinstance(rows, Sized):
        total = len(rows)
    start = saved.done if saved is not None else 0
    # Rows without positions are skipped by count; rows with positions were
    # filtered by the caller's query.
    by_count = saved is not None and saved.position is None and start > 0
    bar = Progress(
        stream if stream is not None else sys.stderr, total, mode=progress, start=start
    )
    result = SyncResult(resumed_from=start, done=start, dry_run=dry_run)
    run = _Run(None if dry_run else client, saved, result, bar, timeout, share)
    began = time.monotonic()
    if saved is not None and saved.resumed:
        bar.note(f"resuming after row {start:,} (checkpoint {saved.path})")
    number = 0 if by_count else start
    position = saved.position if saved is not None else None
    bar.update(start)
    try:
        for row in rows:
            number += 1
            if by_count and number <= start:
                continue
            result.rows += 1
            try:
                position = _position(row) if isinstance(row, Mapping) else position
                upsert = row_upsert(row)
            except InvalidEventError as exc:
                result.invalid += 1
                if len(result.invalid_rows) < _KEEP_INVALID:
                    result.invalid_rows.append((number, str(exc)))
                continue
            if not run.batch:
                run.first = number
            run.batch.append(upsert)
            if len(run.batch) >= batch_size:
                run.send(number, position)
        run.send(number, position)
    except _Stopped as exc:
        result.error = str(exc) + (
            f"; the checkpoint {saved.path} keeps row {result.done:,}: run again to "
            "resume"
            if saved is not None
            else "; without a checkpoint, a rerun starts over"
        )
    else:
        result.complete = True
        if saved is not None and not dry_run:
            saved.clear()
    finally:
        run.close()
        result.seconds = time.monotonic() - began
        bar.close()
    return result
