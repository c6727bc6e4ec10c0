"""`bento-track import-subscribers FILE.csv`: validate rows, send them in
requests of at most 1,000, show progress, and summarise what Bento accepted.

The whole file is read and checked before the first request, so a file that
cannot be read (missing, a directory, not in `encoding`, not CSV, no `email`
column) is a `ConfigurationError` with nothing sent: the CLI's usage error.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from ..errors import APIError, ConfigurationError, InvalidEventError
from ..events import normalize_fields, validate_email

__all__ = ["ImportSummary", "import_csv", "read_file", "read_rows"]

MAX_BATCH = 1000


class _Importer(Protocol):
    def import_subscribers(self, subscribers: Any) -> Any: ...


@dataclass
class ImportSummary:
    """The tally of one `import_csv` run, filled in as it goes.

    Attributes:
        rows: data rows read from the file (the header not counted).
        accepted, failed: what Bento reported for the rows it was sent.
        requests: requests that Bento answered.
    """

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
        """True when every row was valid, sent, and accepted by Bento."""
        return not self.bad_rows and self.failed == 0 and self.unsent == 0


# Python 3.10's csv module refuses a NUL anywhere in the text ("line contains
# NUL", the whole file unreadable); 3.11 and later read it as a character. So
# a NUL is parsed escaped and put back in each cell, where the row checks skip
# that row by line, as on 3.11: the same import on every supported Python.
# The escape character is a noncharacter; one already in the text is escaped
# too, so a cell comes back exactly as written.
_ESCAPE = "\uffff"
_ESCAPED = re.compile(_ESCAPE + "(.)", re.DOTALL)


def _escape_nul(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        if "\0" in line or _ESCAPE in line:
            line = line.replace(_ESCAPE, _ESCAPE + "e").replace("\0", _ESCAPE + "0")
        yield line


def _unescape_nul(cell: str) -> str:
    if _ESCAPE not in cell:
        return cell
    return _ESCAPED.sub(lambda m: "\0" if m[1] == "0" else _ESCAPE, cell)


def read_rows(
    handle: TextIO, summary: ImportSummary, *, source: str = "the CSV"
) -> Iterator[dict[str, str]]:
    """Valid rows as subscriber dicts; bad ones go to `summary.bad_rows` with the
    line number a spreadsheet would show (the header is line 1).

    Raises:
        ConfigurationError: no `email` column, or text the csv module cannot
            parse (`source` names the file in the message).
    """
    reader = csv.DictReader(_escape_nul(handle))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise ConfigurationError(
            f"{source} line 1: not readable as CSV: {exc}"
        ) from None
    columns = [_unescape_nul(c).strip() for c in fieldnames or []]
    if "email" not in columns:
        raise ConfigurationError(
            f"the CSV needs an 'email' column in its header row; found {columns or 'none'}"
        )
    reader.fieldnames = columns
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            # The inner reader's count: DictReader updates its own only after
            # a row parses, so it still names the previous line here.
            raise ConfigurationError(
                f"{source} line {reader.reader.line_num}: not readable as CSV: {exc}"
            ) from None
        summary.rows += 1
        line = reader.line_num
        if None in row:  # more cells than header columns
            summary.bad_rows.append((line, "more values than header columns"))
            continue
        row = {k: v if v is None else _unescape_nul(v) for k, v in row.items()}
        try:
            email = validate_email(row.get("email") or "", field="email")
            subscriber = {
                k: (v or "").strip() for k, v in row.items() if k and v and k != "email"
            }
            # The checks the API makes when sending: a row it would refuse
            # (a NUL, too many columns) is reported here by line, rather than
            # stopping the import halfway with earlier batches already sent.
            normalize_fields(subscriber, "row")
        except InvalidEventError as exc:
            summary.bad_rows.append((line, str(exc)))
            continue
        yield {"email": email, **subscriber}


def _codec(encoding: str) -> str:
    """The codec to decode with; a UTF-8 file may start with Excel's BOM."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigurationError(
            f"--encoding {encoding!r} is not an encoding Python knows; "
            "try utf-8, latin-1 or cp1252"
        ) from None
    return "utf-8-sig" if name == "utf-8" else name


def read_file(
    path: str, summary: ImportSummary, *, encoding: str = "utf-8"
) -> list[dict[str, str]]:
    """The valid rows of the CSV file at `path` (see `read_rows`).

    Raises:
        ConfigurationError: one line naming the file and what to do, for a file
            that is missing, unreadable, not text in `encoding`, or not CSV.
    """
    codec = _codec(encoding)
    try:
        # Whole, as bytes: a decoding error then has an exact position to
        # report, and the rows are all held for sending anyway.
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{path} is a directory, not a CSV file") from None
    except OSError as exc:
        raise ConfigurationError(
            f"{path}: cannot read it: {exc.strerror or exc}"
        ) from None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        # `exc.object`, not `data`: utf-8-sig reports positions after the BOM.
        where = bytes(exc.object)
        line = where.count(b"\n", 0, exc.start) + 1
        raise ConfigurationError(
            f"{path} is not {encoding} text (byte 0x{where[exc.start]:02x} on line "
            f"{line}): pass its encoding, e.g. --encoding latin-1 (or cp1252 for "
            "Excel on Windows), or save it as UTF-8"
        ) from None
    # newline="": the csv module handles line endings itself, including
    # line breaks inside quoted cells.
    return list(read_rows(io.StringIO(text, newline=""), summary, source=path))


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
    encoding: str = "utf-8",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> ImportSummary:
    """Import the subscribers in the CSV file at `path` through `api`, in
    requests of `batch_size` rows, reporting progress and skipped rows on `err`
    and a one-line summary on `out`; return the summary.

    Raises:
        ConfigurationError: a `batch_size` outside 1-1000, or a file
            `read_file` refuses; nothing is sent then. A request Bento refuses
            (`APIError`) is counted in `unsent` and the import goes on.
    """
    # Looked up per call, not bound as defaults at import: sys.stdout may be
    # replaced later (pytest's capture, a caller's redirect_stdout).
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if not 1 <= batch_size <= MAX_BATCH:
        raise ConfigurationError(
            f"--batch-size must be 1-{MAX_BATCH}, not {batch_size}"
        )
    summary = ImportSummary()
    rows = read_file(path, summary, encoding=encoding)
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
