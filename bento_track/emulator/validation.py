"""Bento's rules for request bodies, as the emulator enforces them.

Written independently of `bento_track.events` on purpose: the emulator
checks the client, so it must not share the client's code. A failing body is
refused whole (nothing stored), with Bento's error shape
`{"errors": [{"field": "events[3].email", "message": "is invalid"}]}`.

A body that is not JSON at all (wrong Content-Type, not UTF-8, bad syntax,
nested too deep, a lone surrogate, NaN or a number out of range, not an
object) is refused before those rules with `{"error": "..."}`: whatever
reaches a handler can be stored, listed and answered without failing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any, NoReturn

__all__ = [
    "COMMANDS",
    "MAX_COMMANDS",
    "MAX_DEPTH",
    "MAX_EMAILS",
    "MAX_EVENTS",
    "MAX_SUBSCRIBERS",
    "BodyError",
    "is_email",
    "parse_body",
    "parse_json",
    "validate_commands",
    "validate_emails",
    "validate_events",
    "validate_subscribers",
]

MAX_EVENTS = 1000
MAX_SUBSCRIBERS = 1000
MAX_EMAILS = 60
MAX_COMMANDS = 100
MAX_ERRORS = 100  # a 1,000-event batch of junk should not answer with a megabyte
#: Arrays and objects nested deeper are refused: Bento is a Rails app, and
#: Ruby's `JSON.parse` refuses more than 100 levels (`max_nesting`). It also
#: keeps every later `json` call (store, answers) far from the recursion limit.
MAX_DEPTH = 100

COMMANDS = frozenset(
    {
        "add_tag",
        "add_tag_via_event",
        "remove_tag",
        "add_field",
        "remove_field",
        "subscribe",
        "unsubscribe",
        "change_email",
    }
)
_NO_QUERY = frozenset({"subscribe", "unsubscribe"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_SCALAR = (str, int, float, bool, type(None))


class BodyError(Exception):
    """A refused body: the HTTP status and the JSON to answer with."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


INVALID_JSON = "Invalid JSON"

# A JSON string, unrolled so that a long one costs no backtracking.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Outside strings, keep only brackets: `[`/`{` become +1, `]`/`}` -1 (as int8).
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _invalid(detail: str | None = None) -> NoReturn:
    message = INVALID_JSON if detail is None else f"{INVALID_JSON}: {detail}"
    if len(message) > 300:  # a field path can hold a key megabytes long
        message = message[:299] + "…"
    # ... or a lone surrogate, which must not break the answer that names it.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    raise BodyError(400, {"error": message})


def _depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in `raw`, read without parsing.

    Up to the first syntax error this is exactly what the parser would meet
    (its strings end where the regex's do), and the parser never reads past
    that error, so a document this calls shallow cannot recurse deeper.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return 0  # too few brackets to be too deep, even counting those in strings
    structure = _STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS)
    return max(accumulate(memoryview(structure).cast("b")), default=0)


def _find(doc: Any, bad: Callable[[Any], bool]) -> str | None:
    """The path (`events[0].details.x`) of the first value or key in `doc`
    that is `bad`, in document order; `""` for `doc` itself; None if none."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, path = stack.pop()
        if bad(value):
            return path
        if isinstance(value, dict):
            items: list[tuple[Any, str]] = []
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if bad(key):
                    return where
                items.append((item, where))
        elif isinstance(value, list):
            items = [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        else:
            continue
        stack.extend(reversed(items))
    return None


def _not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _unencodable(value: Any) -> bool:
    return isinstance(value, str) and _SURROGATE.search(value) is not None


def parse_json(raw: bytes) -> Any:
    """`raw` as strict JSON: UTF-8, at most `MAX_DEPTH` deep, finite
    numbers, no NaN/Infinity, no lone surrogates.

    Raises:
        BodyError: 400 with `{"error": "Invalid JSON..."}`; a number that is
            not finite is named by its path (`requests`, `events[0].details.x`).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _invalid()
    if _depth(raw) > MAX_DEPTH:
        _invalid(f"nested deeper than {MAX_DEPTH} levels")
    # Python reads 1e400 as inf and takes NaN/Infinity, which no JSON answer
    # can carry; note them while parsing, and name the field afterwards.
    seen: list[float] = []

    def number(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            seen.append(value)
        return value

    try:
        doc = json.loads(text, parse_float=number, parse_constant=number)
    except (ValueError, RecursionError):
        # RecursionError only as a backstop: `_depth` keeps documents far
        # below the limit. ValueError covers syntax and over-long integers.
        _invalid()
    if seen:
        path = _find(doc, _not_finite)
        if path is not None:  # None: a duplicate key replaced it
            _invalid(f"{path or 'the body'} is not a finite number")
    # A strict UTF-8 decode lets no surrogate through, but a `\ud800` escape
    # does; such a string can be neither stored nor answered. Encoding the
    # document once (C speed) tells whether one is there, when an escape is
    # there at all; only then is it looked for, to name it.
    if b"\\u" in raw:
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            path = _find(doc, _unencodable)
            _invalid(f"{path or 'the body'} has a lone surrogate (a \\u escape)")
    return doc


def _check_content_type(value: str | None) -> None:
    """Only `application/json` (or `application/*+json`) in UTF-8, like Rails,
    which parses no other body into params."""
    media, _, params = (value or "").partition(";")
    media = media.strip().lower()
    if not (
        media == "application/json"
        or (media.startswith("application/") and media.endswith("+json"))
    ):
        raise BodyError(400, {"error": "Content-Type must be application/json"})
    for param in params.split(";"):
        name, _, given = param.partition("=")
        if name.strip().lower() == "charset":
            if given.strip().strip('"').lower() not in ("utf-8", "utf8"):
                raise BodyError(400, {"error": "charset must be utf-8"})


def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """An API request body: `{}` when empty, else a JSON object.

    Raises:
        BodyError: 400, Bento's `{"error": ...}` shape.
    """
    if not raw.strip():
        return {}
    _check_content_type(content_type)
    doc = parse_json(raw)
    if not isinstance(doc, dict):
        _invalid()
    return doc


def _refuse(errors: list[tuple[str, str]], status: int = 400) -> BodyError:
    return BodyError(
        status,
        {"errors": [{"field": f, "message": m} for f, m in errors[:MAX_ERRORS]]},
    )


def is_email(value: object) -> bool:
    """A well-formed address: one @, no spaces, a dot in the domain."""
    return (
        isinstance(value, str)
        and len(value.strip()) <= 254
        and _EMAIL.match(value.strip()) is not None
    )


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _items(body: dict[str, Any], key: str, limit: int, noun: str) -> list[Any]:
    items = body.get(key)
    if not isinstance(items, list):
        raise _refuse([(key, f"must be an array of {noun}")])
    if not 1 <= len(items) <= limit:
        raise _refuse([(key, f"must contain between 1 and {limit} {noun}")])
    return items


def _check_flat(where: str, value: object, errors: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.append((where, "must be an object"))
        return
    for key, item in value.items():
        if not key:
            errors.append((where, "has an empty key"))
        elif not isinstance(item, _SCALAR):
            errors.append((f"{where}.{key}", "must not be nested"))


def validate_events(
    body: dict[str, Any], rejected: Callable[[list[Any]], list[int]]
) -> list[dict[str, Any]]:
    """The events of a `/batch/events` body, or `BodyError`.

    Args:
        body: the parsed JSON object.
        rejected: indexes of events a test asked to refuse (fault injection).
    """
    events = _items(body, "events", MAX_EVENTS, "events")
    errors: list[tuple[str, str]] = []
    for i, event in enumerate(events):
        at = f"events[{i}]"
        if not isinstance(event, dict):
            errors.append((at, "must be an object"))
            continue
        kind = event.get("type")
        if not isinstance(kind, str) or not kind.strip():
            errors.append((f"{at}.type", "can't be blank"))
        if "email" not in event or event["email"] in (None, ""):
            errors.append((f"{at}.email", "can't be blank"))
        elif not is_email(event["email"]):
            errors.append((f"{at}.email", "is invalid"))
        _check_flat(f"{at}.fields", event.get("fields"), errors)
        details = event.get("details")
        if details is not None and not isinstance(details, dict):
            errors.append((f"{at}.details", "must be an object"))
        if event.get("date") is not None and not _is_date(event["date"]):
            errors.append((f"{at}.date", "must be an ISO 8601 date"))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise _refuse(errors)
    refused = rejected(events)
    if refused:
        raise _refuse([(f"events[{i}]", "was rejected") for i in refused])
    return events


def validate_subscribers(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a `/batch/subscribers` body, or `BodyError`.

    Every key but `email` is flat; `tags` and `remove_tags` may be a
    comma-separated string or a list of strings.
    """
    rows = _items(body, "subscribers", MAX_SUBSCRIBERS, "subscribers")
    errors: list[tuple[str, str]] = []
    for i, row in enumerate(rows):
        at = f"subscribers[{i}]"
        if not isinstance(row, dict):
            errors.append((at, "must be an object"))
            continue
        if not is_email(row.get("email")):
            errors.append((f"{at}.email", "is invalid"))
        for key, value in row.items():
            if key in ("tags", "remove_tags") and isinstance(value, list):
                if not all(isinstance(t, str) for t in value):
                    errors.append((f"{at}.{key}", "must be strings"))
            elif not isinstance(value, _SCALAR):
                errors.append((f"{at}.{key}", "must not be nested"))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise _refuse(errors)
    return rows


def validate_emails(
    body: dict[str, Any], author_allowed: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """The emails of a `/batch/emails` body, or `BodyError` (422 for an author
    the account does not have, like Bento)."""
    emails = _items(body, "emails", MAX_EMAILS, "emails")
    errors: list[tuple[str, str]] = []
    for i, email in enumerate(emails):
        at = f"emails[{i}]"
        if not isinstance(email, dict):
            errors.append((at, "must be an object"))
            continue
        for key in ("to", "from", "subject", "html_body"):
            value = email.get(key)
            if not isinstance(value, str) or not value.strip():
                errors.append((f"{at}.{key}", "can't be blank"))
            elif key in ("to", "from") and not is_email(value):
                errors.append((f"{at}.{key}", "is invalid"))
        if not isinstance(email.get("transactional", False), bool):
            errors.append((f"{at}.transactional", "must be true or false"))
        if not isinstance(email.get("personalizations") or {}, dict):
            errors.append((f"{at}.personalizations", "must be an object"))
    if errors:
        raise _refuse(errors)
    for email in emails:
        if not author_allowed(email["from"]):
            raise BodyError(
                422, {"error": "Author not authorized to send on this account"}
            )
    return emails


def validate_commands(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The commands of a `/fetch/commands` body (an array or one object)."""
    raw = body.get("command")
    commands = [raw] if isinstance(raw, dict) else raw
    if not isinstance(commands, list):
        raise _refuse([("command", "must be an array of commands")])
    if not 1 <= len(commands) <= MAX_COMMANDS:
        raise _refuse(
            [("command", f"must contain between 1 and {MAX_COMMANDS} commands")]
        )
    errors: list[tuple[str, str]] = []
    for i, command in enumerate(commands):
        at = f"command[{i}]"
        if not isinstance(command, dict):
            errors.append((at, "must be an object"))
            continue
        name = command.get("command")
        if not isinstance(name, str) or name not in COMMANDS:  # a list can't hash
            errors.append((f"{at}.command", "is not a known command"))
            continue
        if not is_email(command.get("email")):
            errors.append((f"{at}.email", "is invalid"))
        query = command.get("query")
        if name in _NO_QUERY:
            continue
        if name == "add_field":
            if not (
                isinstance(query, dict)
                and isinstance(query.get("key"), str)
                and query["key"]
                and "value" in query
                and isinstance(query["value"], _SCALAR)
            ):
                errors.append((f"{at}.query", "must be {key, value}"))
        elif name == "change_email":
            if not is_email(query):
                errors.append((f"{at}.query", "is invalid"))
        elif not isinstance(query, str) or not query.strip():
            errors.append((f"{at}.query", "can't be blank"))
    if errors:
        raise _refuse(errors)
    return commands
