"""`bento-track import-subscribers FILE.csv`: validate rows, send them in
requests of at most 1,000, show progress, and summarise what Bento accepted."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from ..errors import APIError, ConfigurationError, InvalidEventError
from ..events import validate_email

__all__ = ["ImportSummary", "import_csv", "read_rows"]

MAX_BATCH = 1000


class _Importer(Protocol):
    def import_subscribers(self, subscribers: Any) -> Any: ...


@dataclass
class ImportSummary:
    rows: int = 0
    accepted: int = 0
    failed: int = 0
    requests: int = 0
    #: (line number in the file, reason) for rows never sent
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    #: rows in requests that failed outright
    unsent: int = 0

    @property
    def ok(self) -> bool:
        return not self.bad_rows and self.failed == 0 and self.unsent == 0


def read_rows(handle: TextIO, summary: ImportSummary) -> Iterator[dict[str, str]]:
    """Valid rows as subscriber dicts; bad ones go to `summary.bad_rows` with the
    line number a spreadsheet would show (the header is line 1)."""
    reader = csv.DictReader(handle)
    columns = [c.strip() for c in reader.fieldnames or []]
    if "email" not in columns:
        raise ConfigurationError(
            f"the CSV needs an 'email' column in its header row; found {columns or 'none'}"
        )
    reader.fieldnames = columns
    for row in reader:
        summary.rows += 1
        line = reader.line_num
        if None in row:  # more cells than header columns
            summary.bad_rows.append((line, "more values than header columns"))
            continue
        try:
            email = validate_email(row.get("email") or "", field="email")
        except InvalidEventError as exc:
            summary.bad_rows.append((line, str(exc)))
            continue
        subscriber = {k: (v or "").strip() for k, v in row.items() if k and v}
        subscriber["email"] = email
        yield subscriber


def _progress(done: int, total: int, out: TextIO) -> None:
    width = 30
    filled = width * done // total if total else width
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} rows")
    out.flush()


def import_csv(
    api: _Importer,
    path: str,
    *,
    batch_size: int = MAX_BATCH,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> ImportSummary:
    if not 1 <= batch_size <= MAX_BATCH:
        raise ConfigurationError(
            f"--batch-size must be 1-{MAX_BATCH}, not {batch_size}"
        )
    summary = ImportSummary()
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(read_rows(handle, summary))
    total = len(rows)
    for start in range(0, total, batch_size):
        chunk = rows[start : start + batch_size]
        try:
            result = api.import_subscribers(chunk)
        except APIError as exc:
            summary.unsent += len(chunk)
            err.write(
                f"\nrows {start + 1}-{start + len(chunk)} of the valid rows not imported: {exc}\n"
            )
        else:
            summary.accepted += result.results
            summary.failed += result.failed
            summary.requests += result.requests
        _progress(min(start + batch_size, total), total, err)
    if total:
        err.write("\n")
    for line, reason in summary.bad_rows:
        err.write(f"line {line}: skipped: {reason}\n")
    out.write(
        f"{summary.rows} rows read: {summary.accepted} accepted, {summary.failed} failed "
        f"by Bento, {len(summary.bad_rows)} bad rows skipped, {summary.unsent} not sent "
        f"({summary.requests} requests)\n"
    )
    return summary
