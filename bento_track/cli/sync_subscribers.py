"""`bento-track sync-subscribers --from-csv FILE`: every row of a CSV file
to Bento's subscribers within the request budget, resumably.

    bento-track sync-subscribers --from-csv users.csv [--dry-run]
        [--checkpoint users.csv.bento-sync.json] [--restart]
        [--store sqlite:////var/lib/app/bento.db]

The file is read as `import-subscribers` reads it (an `email` column; `tags`
and `remove_tags` as "a,b"; every other column a field; bad rows reported
by line). Rows go out in batches of up to 1,000, one request each, each
confirmed by Bento before the next, within the request budget: pass the
app's store (`--store`, or `BENTO_STORE`) and the sync shares the budget
(and any 429 pause) with the app's running processes instead of competing
with them.

Resuming: after each confirmed batch the checkpoint file (default: beside
the CSV, `FILE.bento-sync.json`) records how many rows are done; run the
same command again after a crash or Ctrl-C and it continues there. The file
is deleted when the sync finishes, and refused if the CSV changed since.

Exit status: 0 all rows sent; 1 invalid rows skipped or the sync stopped
early (the checkpoint keeps its place); 2 a usage error, nothing sent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ..client import Client
from ..errors import ConfigurationError
from ..sync import MAX_BATCH, MODES, sync_subscribers
from .csv_import import ImportSummary, read_file

__all__ = ["add_sync_command", "cmd_sync_subscribers", "csv_rows"]

#: CSV columns that are tag lists, not fields
_TAG_COLUMNS = ("tags", "remove_tags")


def add_sync_command(
    sub: Any, add_connection_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Register `sync-subscribers` on the `bento-track` subcommands, with
    the connection options `add_connection_options` adds."""
    p = sub.add_parser(
        "sync-subscribers",
        help="sync subscribers from a CSV file (resumable, within the app's "
        "request budget)",
    )
    p.add_argument(
        "--from-csv",
        required=True,
        metavar="FILE",
        help="CSV with a header row and an 'email' column",
    )
    p.add_argument(
        "--encoding", default="utf-8", help="the file's text encoding (utf-8)"
    )
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="where the sync records its progress (default: FILE.bento-sync.json)",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="ignore the checkpoint and start at the first row",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read and check every row, print counts and three sample rows, "
        "send nothing",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=MAX_BATCH,
        help=f"rows per request (1-{MAX_BATCH})",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for Bento to confirm one batch (120)",
    )
    p.add_argument(
        "--progress",
        choices=MODES,
        default="auto",
        help="a bar on a terminal, plain lines otherwise (auto)",
    )
    p.add_argument(
        "--budget-share",
        type=float,
        default=0.8,
        help="the most of each budget window the sync takes; the rest is the "
        "app's (0.01-1, default 0.8)",
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="the app's store, to share its request budget "
        "(BENTO_STORE; e.g. sqlite:////var/lib/app/bento.db)",
    )
    p.add_argument(
        "--requests-per-minute",
        type=int,
        default=100,
        help="the account's request budget per --rate-window (100)",
    )
    p.add_argument(
        "--rate-window",
        type=float,
        default=60.0,
        help="the budget's window in seconds (60)",
    )
    add_connection_options(p)
    p.set_defaults(func=cmd_sync_subscribers)


def csv_rows(rows: list[dict[str, str]]) -> Iterator[dict[str, Any]]:
    """`sync_subscribers` rows from `read_file`'s: the tag columns as tag
    lists, every other column but `email` a field."""
    for row in rows:
        fields = {
            k: v for k, v in row.items() if k != "email" and k not in _TAG_COLUMNS
        }
        out: dict[str, Any] = {"email": row["email"], "fields": fields}
        for column in _TAG_COLUMNS:
            if row.get(column):
                out[column] = row[column]
        yield out


def _digest(path: str) -> str:
    """The file's SHA-256: a checkpoint names the file it counts rows of."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise ConfigurationError(
            f"{path}: cannot read it: {exc.strerror or exc}"
        ) from None
    return digest.hexdigest()


def cmd_sync_subscribers(args: argparse.Namespace) -> int:
    """`bento-track sync-subscribers`: see the module docstring. Returns the
    exit status."""
    summary = ImportSummary()
    # Read and checked whole before anything is sent: a file that cannot be
    # read is a usage error with nothing half-synced.
    rows = read_file(args.from_csv, summary, encoding=args.encoding)
    source = f"csv sha256:{_digest(args.from_csv)}"
    client = None
    if not args.dry_run:
        client = Client(
            site_uuid=args.site_uuid,
            publishable_key=args.publishable_key,
            secret_key=args.secret_key,
            base_url=args.base_url,
            store=args.store,
            requests_per_minute=args.requests_per_minute,
            rate_window=args.rate_window,
        )
    try:
        result = sync_subscribers(
            csv_rows(rows),
            client=client,
            checkpoint=args.checkpoint or f"{args.from_csv}.bento-sync.json",
            source=source,
            restart=args.restart,
            total=len(rows),
            batch_size=args.batch_size,
            dry_run=args.dry_run,
            progress=args.progress,
            stream=sys.stderr,
            timeout=args.timeout,
            budget_share=args.budget_share,
        )
    finally:
        if client is not None:
            client.shutdown()
    for line, reason in summary.bad_rows:
        print(f"line {line}: skipped: {reason}", file=sys.stderr)
    for number, reason in result.invalid_rows:
        print(f"row {number}: skipped: {reason}", file=sys.stderr)
    print(result.summary())
    if args.dry_run:
        for sample in result.samples:
            print(f"sample: {json.dumps(sample, ensure_ascii=False)}")
    if result.invalid or summary.bad_rows or not result.complete:
        return 1
    return 0
