"""`sync_subscribers()`: every row of an iterable of dicts to Bento's
`/batch/subscribers`, through the client's delivery pipeline, resumably.

Rows go to the client in batches of up to 1,000 (`upsert_subscriber()`),
and each batch is confirmed with `flush()` before the next one is queued:
the same queue, store, request budget (shared with the app's own events by
a SQLite or Redis store), 429 pauses, retries and bisection as everything
else the app sends. After each confirmed batch the checkpoint records how
far the sync is, so a sync that stops (killed, Ctrl-C, Bento unreachable
past `timeout`) resumes at the first batch Bento had not confirmed: at most
that one batch is sent again.

Why batch by batch rather than all at once: a queue of 10,000,000 rows would
sit in memory (or the store) with nothing saying which of them Bento has; a
confirmed batch is a place to resume from.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any

from .._default import get_client
from .._delivery.kinds import merge_upserts
from ..client import Client
from ..config import check_number
from ..errors import ConfigurationError, InvalidEventError
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


@dataclass
class SyncResult:
    """What one `sync_subscribers()` run did.

    Attributes:
        rows: rows read in this run (rows the checkpoint skipped not counted).
        sent: rows Bento confirmed in this run.
        batches: batches confirmed (one `/batch/subscribers` request each,
            unless the store split one), or that a dry run would send.
        invalid: rows skipped as invalid (all of them, counted).
        invalid_rows: (row number, reason) of the first 1,000 of them.
        resumed_from: rows behind the sync when it started (the checkpoint's).
        done: rows behind the sync when it ended.
        rejected: records the client counted as rejected by Bento (400/422
            after bisection) while the sync ran; with a store shared by
            other processes, theirs are counted too.
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
    invalid: int = 0
    invalid_rows: list[tuple[int, str]] = field(default_factory=list)
    resumed_from: int = 0
    done: int = 0
    rejected: int = 0
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
                f"{self.batches:,} batches, {self.invalid:,} invalid; nothing sent"
            )
        text = (
            f"{self.rows:,} rows read{resumed}: {self.sent:,} sent and confirmed by "
            f"Bento in {self.batches:,} batches, {self.invalid:,} invalid rows skipped"
        )
        if self.rejected:
            text += f", {self.rejected:,} records rejected by Bento"
        text += f"; {self.seconds:.1f} s"
        if not self.complete:
            text += f"; stopped: {self.error}"
        return text


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
    ) -> None:
        self.client = client
        self.checkpoint = checkpoint
        self.result = result
        self.progress = progress
        self.timeout = timeout
        self.batch: list[SubscriberUpsert] = []
        self.first = 0  # the row number of the batch's first row

    def send(self, done: int, position: Position | None) -> None:
        """Send the batch and wait for Bento's confirmation; then `done` rows
        are behind the sync, the last at `position`."""
        batch, self.batch = self.batch, []
        result = self.result
        if batch:
            if self.client is None:  # a dry run
                if len(result.samples) < _SAMPLES:
                    take = batch[: _SAMPLES - len(result.samples)]
                    result.samples += merge_upserts([u.encode() for u in take])
            else:
                self._deliver(batch, done)
            result.batches += 1
        if self.checkpoint is not None and self.client is not None:
            self.checkpoint.save(done, position)
        result.done = done
        self.progress.update(done)

    def _deliver(self, batch: list[SubscriberUpsert], done: int) -> None:
        client = self.client
        assert client is not None
        before = client.stats()
        refused = 0
        upsert = client.upsert_subscriber
        # A tight loop over validated rows: the batch reaches the queue (and
        # a durable store) as one group, not mixed with the app's events.
        for row in batch:
            if upsert(row.email, row.fields, row.tags, row.remove_tags) is None:
                refused += 1
        confirmed = client.flush(self.timeout)
        after = client.stats()
        dropped = sum(after.dropped.values()) - sum(before.dropped.values())
        rows = f"rows {self.first:,}-{done:,}"
        if refused or dropped > 0:
            reasons = {
                k: v - before.dropped.get(k, 0)
                for k, v in after.dropped.items()
                if v > before.dropped.get(k, 0)
            }
            raise _Stopped(
                f"the client dropped {max(refused, dropped):,} of {rows} "
                f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items())) or 'refused'}); "
                "a shut-down client, or a queue smaller than a batch "
                "(max_queue_size, max_store_bytes)"
            )
        if not confirmed:
            why = (
                "Bento refused the credentials"
                if after.auth_failed
                else after.last_error or "no answer yet"
            )
            raise _Stopped(
                f"Bento did not confirm {rows} within {self.timeout:g} s ({why})"
            )
        self.result.sent += len(batch)
        self.result.rejected += max(0, after.rejected - before.rejected)


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
) -> SyncResult:
    """Create or update every subscriber in `rows` in Bento, in batches of
    `batch_size` (up to 1,000) through `client`'s delivery pipeline (default:
    the default client), each batch confirmed by Bento before the next.

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
    run = _Run(None if dry_run else client, saved, result, bar, timeout)
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
        result.seconds = time.monotonic() - began
        bar.close()
    return result
