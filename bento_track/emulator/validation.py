"""Bento's rules for request bodies, as the emulator enforces them.

Written independently of `bento_track.events` on purpose: the emulator
checks the client, so it must not share the client's code. A failing body is
refused whole (nothing stored), with Bento's error shape
`{"errors": [{"field": "events[3].email", "message": "is invalid"}]}`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "COMMANDS",
    "MAX_COMMANDS",
    "MAX_EMAILS",
    "MAX_EVENTS",
    "MAX_SUBSCRIBERS",
    "BodyError",
    "is_email",
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
        if name not in COMMANDS:
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
