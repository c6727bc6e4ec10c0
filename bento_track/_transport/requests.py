"""Request building and response parsing for `bento_track.api`, with no I/O.

The sync and async clients differ only in how they wait; everything else lives
here: paths, JSON bodies, input validation, splitting into requests of at most
Bento's per-request limit, parsing results and the retry decision. Inputs are
validated in full before any request is built, so a bad record never leaves a
half-sent batch behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..config import Config
from ..errors import APIError, InvalidEventError
from ..events import Event, dumps, normalize_fields, validate_email
from ..models import (
    BatchResult,
    Command,
    CommandResult,
    Email,
    Field,
    Subscriber,
    Tag,
)
from .http import backoff_delay, clamp_retry_after, error_from_response

MAX_EVENTS = 1000
MAX_SUBSCRIBERS = 1000
MAX_EMAILS = 60
MAX_COMMANDS = 100

EVENTS_PATH = "/batch/events"
SUBSCRIBERS_PATH = "/batch/subscribers"
EMAILS_PATH = "/batch/emails"
COMMANDS_PATH = "/fetch/commands"
TAGS_PATH = "/fetch/tags"
FIELDS_PATH = "/fetch/fields"
SUBSCRIBER_PATH = "/fetch/subscribers"
VALIDATION_PATH = "/experimental/validation"

_EVENT_KEYS = frozenset({"type", "email", "fields", "details", "date"})
# Subscriber import columns that Bento reads as comma-separated tag lists.
_TAG_LISTS = ("tags", "remove_tags")


@dataclass(frozen=True)
class Request:
    """One HTTP request, before `site_uuid` and headers are added.

    Attributes:
        method, path: e.g. `POST`, `/batch/events` (relative to the base URL).
        body: the encoded JSON body, if any.
        params: extra query parameters.
        count: records carried, for the partial result of a split operation.
    """

    method: str
    path: str
    body: bytes | None = None
    params: Mapping[str, str] | None = None
    count: int = 0


# -- inputs --------------------------------------------------------------------


def event_dict(item: Event | Mapping[str, Any], index: int) -> dict[str, Any]:
    """Bento's JSON for one event; mappings are validated like `Event.build`."""
    if isinstance(item, Event):
        return item.to_dict()
    if not isinstance(item, Mapping):
        raise InvalidEventError(
            f"events[{index}] must be an Event or a dict, not {type(item).__name__}",
            field=f"events[{index}]",
        )
    unknown = sorted(str(k) for k in item if k not in _EVENT_KEYS)
    if unknown:
        raise InvalidEventError(
            f"events[{index}]: unknown key(s) {', '.join(unknown)}; events have "
            "type, email, fields, details and date",
            field=f"events[{index}].{unknown[0]}",
        )
    try:
        event = Event.build(
            item.get("type"),  # type: ignore[arg-type]  # Event.build validates
            email=item.get("email"),  # type: ignore[arg-type]
            fields=item.get("fields"),
            details=item.get("details"),
            date=item.get("date"),
        )
    except InvalidEventError as exc:
        raise _at(exc, "events", index) from None
    return event.to_dict()


def subscriber_dict(item: object, index: int) -> dict[str, Any]:
    """One `/batch/subscribers` row: `email` required, every other value flat.

    Accepts a mapping (`{"email": ..., "first_name": ..., "tags": "a,b"}`) or
    anything with an `email` attribute and optional `fields` mapping (such as a
    `Subscriber`). `tags`/`remove_tags` may be lists; they are sent as Bento's
    comma-separated strings.
    """
    where = f"subscribers[{index}]"
    if isinstance(item, Mapping):
        row: dict[str, Any] = dict(item)
    elif hasattr(item, "email"):
        fields = getattr(item, "fields", None)
        row = dict(fields) if isinstance(fields, Mapping) else {}
        row["email"] = item.email
    else:
        raise InvalidEventError(
            f"{where} must be a dict with an 'email' key, not {type(item).__name__}",
            field=where,
        )
    for key in _TAG_LISTS:
        value = row.get(key)
        if isinstance(value, (list, tuple, set, frozenset)):
            names = [n.strip() for n in value if isinstance(n, str) and n.strip()]
            if len(names) != len(value):
                raise InvalidEventError(
                    f"{where}.{key}: tag names must be non-empty strings",
                    field=f"{where}.{key}",
                )
            row[key] = ",".join(sorted(names) if isinstance(value, set) else names)
    email = validate_email(row.pop("email", None), f"{where}.email")
    flat = normalize_fields(row, where) or {}
    return {"email": email, **flat}


def email_dict(item: Email | Mapping[str, Any], index: int) -> dict[str, Any]:
    """Bento's JSON for one email; a mapping is validated like
    `Email.from_mapping`. Raises `InvalidEventError` naming `emails[index]`."""
    if isinstance(item, Email):
        return item.to_dict()
    if not isinstance(item, Mapping):
        raise InvalidEventError(
            f"emails[{index}] must be an Email or a dict, not {type(item).__name__}",
            field=f"emails[{index}]",
        )
    try:
        return Email.from_mapping(item).to_dict()
    except InvalidEventError as exc:
        raise _at(exc, "emails", index) from None


def command_dict(item: Command | Mapping[str, Any], index: int) -> dict[str, Any]:
    """Bento's JSON for one command; a mapping's `command`, `email` and
    `query` are validated by `Command`. Raises `InvalidEventError` naming
    `commands[index]`."""
    if isinstance(item, Command):
        return item.to_dict()
    if not isinstance(item, Mapping):
        raise InvalidEventError(
            f"commands[{index}] must be a Command or a dict, not {type(item).__name__}",
            field=f"commands[{index}]",
        )
    try:
        return Command(
            item.get("command"),  # type: ignore[arg-type]  # validated by Command
            item.get("email"),  # type: ignore[arg-type]
            item.get("query"),
        ).to_dict()
    except InvalidEventError as exc:
        raise _at(exc, "commands", index) from None


def _at(exc: InvalidEventError, kind: str, index: int) -> InvalidEventError:
    """The same error, its field prefixed with the record's position."""
    where = f"{kind}[{index}]"
    field = f"{where}.{exc.field}" if exc.field else where
    return InvalidEventError(f"{where}: {exc}", field=field)


# -- requests ------------------------------------------------------------------


def split(
    path: str,
    key: str,
    items: Iterable[Any],
    convert: Callable[[Any, int], dict[str, Any]],
    size: int,
) -> list[Request]:
    """Validate every item, then one `POST path {key: [...]}` per `size` items."""
    rows = [convert(item, i) for i, item in enumerate(items)]
    return [
        Request(
            "POST",
            path,
            dumps({key: rows[start : start + size]}),
            count=len(rows[start : start + size]),
        )
        for start in range(0, len(rows), size)
    ]


def events(items: Iterable[Event | Mapping[str, Any]]) -> list[Request]:
    """`/batch/events` requests of at most `MAX_EVENTS` events each (none for
    no items); every item is validated first (see `event_dict`)."""
    return split(EVENTS_PATH, "events", items, event_dict, MAX_EVENTS)


def events_body(body: bytes) -> Request:
    """An already encoded `{"events": [...]}` body, sent as is."""
    if not isinstance(body, (bytes, bytearray)) or not body:
        raise InvalidEventError("body must be non-empty JSON bytes", field="body")
    return Request("POST", EVENTS_PATH, bytes(body))


def subscribers(items: Iterable[Any]) -> list[Request]:
    """`/batch/subscribers` requests of at most `MAX_SUBSCRIBERS` rows each;
    every item is validated first (see `subscriber_dict`)."""
    return split(
        SUBSCRIBERS_PATH, "subscribers", items, subscriber_dict, MAX_SUBSCRIBERS
    )


def emails(items: Iterable[Email | Mapping[str, Any]]) -> list[Request]:
    """`/batch/emails` requests of at most `MAX_EMAILS` emails each; every
    item is validated first (see `email_dict`)."""
    return split(EMAILS_PATH, "emails", items, email_dict, MAX_EMAILS)


def commands(items: Iterable[Command | Mapping[str, Any]]) -> list[Request]:
    """`/fetch/commands` requests (body key `command`) of at most
    `MAX_COMMANDS` commands each; every item is validated first."""
    return split(COMMANDS_PATH, "command", items, command_dict, MAX_COMMANDS)


def get_tags() -> Request:
    """`GET /fetch/tags`: every tag of the site."""
    return Request("GET", TAGS_PATH)


def create_tag(name: str) -> Request:
    """`POST /fetch/tags` creating the tag `name` (stripped). Raises
    `InvalidEventError` for a name that is not a non-blank string."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidEventError("tag name must be a non-empty string", field="name")
    return Request("POST", TAGS_PATH, dumps({"tag": {"name": name.strip()}}))


def get_fields() -> Request:
    """`GET /fetch/fields`: every custom field of the site."""
    return Request("GET", FIELDS_PATH)


def create_field(key: str) -> Request:
    """`POST /fetch/fields` creating the custom field `key` (stripped).
    Raises `InvalidEventError` for a key that is not a non-blank string."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidEventError("field key must be a non-empty string", field="key")
    return Request("POST", FIELDS_PATH, dumps({"field": {"key": key.strip()}}))


def get_subscriber(email: str | None, uuid: str | None) -> Request:
    """`GET /fetch/subscribers` for one subscriber, by email or by uuid.

    Raises:
        InvalidEventError: neither or both given, a malformed email, or a
            blank uuid.
    """
    if (email is None) == (uuid is None):
        raise InvalidEventError(
            "pass exactly one of email=... or uuid=...", field="email"
        )
    if email is not None:
        params = {"email": validate_email(email)}
    else:
        if not isinstance(uuid, str) or not uuid.strip():
            raise InvalidEventError("uuid must be a non-empty string", field="uuid")
        params = {"uuid": uuid.strip()}
    return Request("GET", SUBSCRIBER_PATH, params=params)


def create_subscriber(email: str) -> Request:
    """`POST /fetch/subscribers` creating a subscriber for `email`. Raises
    `InvalidEventError` for a malformed address."""
    body = dumps({"subscriber": {"email": validate_email(email)}})
    return Request("POST", SUBSCRIBER_PATH, body)


def validation(
    email: str, name: str | None, user_agent: str | None, ip: str | None
) -> Request:
    """`/experimental/validation`: the OpenAPI spec reads query parameters and
    the Node SDK sends a JSON body, so the same values go in both."""
    if not isinstance(email, str) or not email.strip():
        # Not validate_email: judging malformed addresses is this endpoint's job.
        raise InvalidEventError("email must be a non-empty string", field="email")
    values = {"email": email.strip(), "name": name, "user_agent": user_agent}
    values["ip"] = ip
    present = {k: v for k, v in values.items() if v is not None}
    return Request("POST", VALIDATION_PATH, dumps(present), params=present)


# -- responses -----------------------------------------------------------------


def decode(response: httpx.Response, config: Config) -> Any:
    """The JSON of a response: the typed error for non-2xx, or `APIError` for
    a 2xx that is not JSON (a proxy page, a truncated body)."""
    if not response.is_success:
        raise error_from_response(response, config)
    if not response.content:
        return {}
    try:
        return json.loads(response.content)
    except ValueError:
        error = error_from_response(response, config)
        raise APIError(
            f"Bento answered {response.status_code} to {error.method} {error.path} "
            "with a body that is not JSON",
            status=response.status_code,
            body=error.body,
            method=error.method,
            path=error.path,
        ) from None


def _items(doc: object) -> list[Any]:
    data = doc.get("data") if isinstance(doc, Mapping) else None
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and data:
        return [data]
    return []


def parse_batch(doc: object) -> BatchResult:
    """The counts from a batch endpoint's answer (see `BatchResult.from_json`)."""
    return BatchResult.from_json(doc)


def parse_commands(doc: object) -> CommandResult:
    """The counts from `/fetch/commands`'s answer."""
    return CommandResult.from_json(doc)


def parse_tags(doc: object) -> list[Tag]:
    """The tags in a `{"data": ...}` answer (a list or a single resource);
    an answer without data gives an empty list."""
    return [Tag.from_json(item) for item in _items(doc)]


def parse_fields(doc: object) -> list[Field]:
    """The custom fields in a `{"data": ...}` answer (a list or a single
    resource); an answer without data gives an empty list."""
    return [Field.from_json(item) for item in _items(doc)]


def parse_created_tag(doc: object, name: str) -> Tag:
    """The created tag; some versions answer with the full list, so pick by name."""
    tags = parse_tags(doc)
    for tag in tags:
        if tag.name == name.strip():
            return tag
    return tags[0] if tags else Tag(id="", name=name.strip())


def parse_created_field(doc: object, key: str) -> Field:
    """The created field; some versions answer with the full list, so pick by
    key (the first one, or a bare `Field` with no id, if none matches)."""
    fields = parse_fields(doc)
    for item in fields:
        if item.key == key.strip():
            return item
    return fields[0] if fields else Field(id="", key=key.strip())


def parse_subscriber(doc: object) -> Subscriber | None:
    """The subscriber in a `/fetch/subscribers` answer, or None if Bento has
    no such subscriber (no data)."""
    return Subscriber.from_json(doc)


def parse_valid(doc: object) -> bool:
    """Whether `/experimental/validation` judged the address valid: true only
    for an explicit `"valid": true`."""
    return isinstance(doc, Mapping) and doc.get("valid") is True


# -- retries -------------------------------------------------------------------


def retry_delay(
    error: APIError, attempt: int, retries: int, rand: Callable[[], float]
) -> float | None:
    """Seconds to wait before retry number `attempt` (1-based), or None to give up.

    429, 408, 5xx and transport failures are retried; 400/401/403/404/422 never
    are, because the same request would fail the same way. The wait honours
    `Retry-After` (clamped to 1..120 s) and is never shorter than the jittered
    exponential backoff.
    """
    if not error.retryable or attempt > retries:
        return None
    server = clamp_retry_after(error.retry_after) or 0.0
    return max(server, backoff_delay(attempt, rand=rand))
