"""Subscriber updates: what `upsert_subscriber()` and
`change_subscriber_email()` queue, validated as `track()` validates events.

They ride the events' pipeline (same queue, store, budget, retries and
bisection; `_core.kinds` tells the records apart): an upsert goes out in
a `/batch/subscribers` request (Bento's import: it merges fields and tags and
starts no automation), a command in a `/fetch/commands` request. Upserts and
commands wait in one queue in the order they were made, and a batch never
mixes kinds, so an email change is sent before the upserts made after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ._core.kinds import COMMAND_MARK, UPSERT_MARK
from .errors import InvalidEventError
from .events import check_text, normalize_fields, validate_email

__all__ = [
    "COMMANDS",
    "SubscriberCommand",
    "SubscriberUpsert",
    "Update",
    "build_command",
    "build_upsert",
]

#: the subscriber commands the pipeline queues (Bento's `/fetch/commands`)
COMMANDS = ("change_email", "subscribe", "unsubscribe")
#: fields Bento's import reads as tag lists, never as custom fields
_RESERVED = frozenset({"email", "tags", "remove_tags"})


@dataclass(frozen=True)
class SubscriberUpsert:
    """Create or update one subscriber (Bento's `/batch/subscribers` row).

    Attributes:
        email: the subscriber.
        fields: custom fields to set (flat, as event fields).
        tags: tags to add, in order.
        remove_tags: tags to remove, in order.
    """

    email: str
    fields: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()

    def encode(self) -> bytes:
        """The queued record: a mark byte, then compact JSON."""
        doc: dict[str, Any] = {"email": self.email}
        if self.fields:
            doc["fields"] = self.fields
        if self.tags:
            doc["tags"] = list(self.tags)
        if self.remove_tags:
            doc["remove_tags"] = list(self.remove_tags)
        return UPSERT_MARK + orjson.dumps(doc)


@dataclass(frozen=True)
class SubscriberCommand:
    """One of Bento's subscriber commands (`/fetch/commands`).

    Attributes:
        command: "change_email", "subscribe" or "unsubscribe".
        email: the subscriber (for `change_email`, the old address).
        query: for `change_email`, the new address.
    """

    command: str
    email: str
    query: str | None = None

    def encode(self) -> bytes:
        """The queued record: a mark byte, then Bento's command object."""
        doc: dict[str, Any] = {"command": self.command, "email": self.email}
        if self.query is not None:
            doc["query"] = self.query
        return COMMAND_MARK + orjson.dumps(doc)


#: what `upsert_subscriber()` and the commands queue
Update = SubscriberUpsert | SubscriberCommand


def _tag_list(value: Iterable[str] | str | None, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise InvalidEventError(
            f"{field} must be a list of tag names, not {type(value).__name__}",
            field=field,
        )
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidEventError(
                f"{field}: tag names are strings, not {type(item).__name__}",
                field=field,
            )
        name = check_text(str.strip(item), field)
        if "," in name:
            raise InvalidEventError(
                f"{field}: a tag name cannot hold a comma: {name[:80]!r}", field=field
            )
        if name and name not in out:
            out.append(name)
    return tuple(out)


def build_upsert(
    email: object,
    fields: Mapping[str, Any] | None = None,
    tags: Iterable[str] | str | None = None,
    remove_tags: Iterable[str] | str | None = None,
) -> SubscriberUpsert:
    """A validated upsert (the catalogue's rules for email and fields).

    Raises:
        InvalidEventError: naming the field that is wrong.
    """
    address = validate_email(email)
    flat = normalize_fields(fields)
    if flat:
        reserved = sorted(_RESERVED & flat.keys())
        if reserved:
            raise InvalidEventError(
                f"fields: {', '.join(reserved)} cannot be a custom field (use the "
                "email, tags and remove_tags arguments)",
                field=f"fields.{reserved[0]}",
            )
    added = _tag_list(tags, "tags")
    removed = _tag_list(remove_tags, "remove_tags")
    both = sorted(set(added) & set(removed))
    if both:
        raise InvalidEventError(
            f"tags: {', '.join(both)} both added and removed in one upsert",
            field="tags",
        )
    return SubscriberUpsert(address, flat or None, added, removed)


def build_command(
    command: str, email: object, query: object = None
) -> SubscriberCommand:
    """A validated subscriber command.

    Raises:
        InvalidEventError: an unknown command, or an address that is wrong.
    """
    if command not in COMMANDS:
        raise InvalidEventError(
            f"command must be one of {', '.join(COMMANDS)}, not {command!r}",
            field="command",
        )
    address = validate_email(email)
    if command != "change_email":
        return SubscriberCommand(command, address)
    new = validate_email(query, "new_email")
    if new.lower() == address.lower():
        raise InvalidEventError(
            f"new_email is the same address as the old one: {new[:80]!r}",
            field="new_email",
        )
    return SubscriberCommand(command, address, new)
