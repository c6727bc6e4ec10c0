"""Typed inputs and results of the everyday Bento API (`bento_track.api`).

Results (`BatchResult`, `CommandResult`, `Tag`, `Field`, `Subscriber`) are
frozen dataclasses parsed leniently from Bento's JSON, because its response
shapes vary by endpoint age. Inputs (`Email`, `Command`) validate when built and
raise `InvalidEventError` naming the offending field, so a typo fails at the
call site instead of as a 400 from Bento.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidEventError
from .events import normalize_fields, validate_email

__all__ = [
    "COMMANDS",
    "BatchResult",
    "Command",
    "CommandResult",
    "Email",
    "Field",
    "Subscriber",
    "Tag",
]


def _int(value: object) -> int:
    """A count from Bento's JSON; anything that is not a whole number counts 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class BatchResult:
    """What Bento accepted from one or more `/batch/*` requests.

    Attributes:
        results: records accepted and queued (Bento's `results`, or the older
            singular `result`).
        failed: records Bento rejected inside an accepted request.
        requests: HTTP requests it took (a split operation sends several).

    Results add up: `BatchResult(3) + BatchResult(2)` is
    `BatchResult(results=5, failed=0, requests=2)`.
    """

    results: int
    failed: int = 0
    requests: int = 1

    @classmethod
    def from_json(cls, doc: object) -> BatchResult:
        """Parse `{"results": N, "failed": M}` (or `{"result": N}`)."""
        if not isinstance(doc, Mapping):
            return cls(0)
        raw = doc["results"] if "results" in doc else doc.get("result")
        return cls(results=_int(raw), failed=_int(doc.get("failed")))

    def __add__(self, other: BatchResult) -> BatchResult:
        if not isinstance(other, BatchResult):
            return NotImplemented
        return BatchResult(
            self.results + other.results,
            self.failed + other.failed,
            self.requests + other.requests,
        )


@dataclass(frozen=True)
class CommandResult:
    """What `/fetch/commands` queued: `results` commands in `requests` requests.

    Bento applies commands asynchronously; a count here means *queued*.
    """

    results: int
    failed: int = 0
    requests: int = 1

    @classmethod
    def from_json(cls, doc: object) -> CommandResult:
        """Parse `/fetch/commands`'s answer, shaped like `BatchResult`'s."""
        batch = BatchResult.from_json(doc)
        return cls(results=batch.results, failed=batch.failed)

    def __add__(self, other: CommandResult) -> CommandResult:
        if not isinstance(other, CommandResult):
            return NotImplemented
        return CommandResult(
            self.results + other.results,
            self.failed + other.failed,
            self.requests + other.requests,
        )


def _resource(item: object) -> tuple[str, Mapping[str, Any]]:
    """`(id, attributes)` of a JSON:API-style `{"id", "type", "attributes"}`."""
    if not isinstance(item, Mapping):
        return "", {}
    attributes = item.get("attributes")
    if not isinstance(attributes, Mapping):
        attributes = {}
    return str(item.get("id", "") or ""), attributes


@dataclass(frozen=True)
class Tag:
    """A tag: `{"id", "type": "tags", "attributes": {name, created_at, discarded_at}}`."""

    id: str
    name: str
    created_at: str | None = None
    discarded_at: str | None = None

    @classmethod
    def from_json(cls, item: object) -> Tag:
        """Parse one tag resource; missing attributes are empty or None."""
        id_, attrs = _resource(item)
        return cls(
            id=id_,
            name=str(attrs.get("name") or ""),
            created_at=_str_or_none(attrs.get("created_at")),
            discarded_at=_str_or_none(attrs.get("discarded_at")),
        )


@dataclass(frozen=True)
class Field:
    """A custom field: `{"id", "attributes": {key, name, created_at}}`."""

    id: str
    key: str
    name: str | None = None
    created_at: str | None = None

    @classmethod
    def from_json(cls, item: object) -> Field:
        """Parse one field resource; missing attributes are empty or None."""
        id_, attrs = _resource(item)
        return cls(
            id=id_,
            key=str(attrs.get("key") or ""),
            name=_str_or_none(attrs.get("name")),
            created_at=_str_or_none(attrs.get("created_at")),
        )


@dataclass(frozen=True)
class Subscriber:
    """A subscriber from `/fetch/subscribers`.

    Attributes:
        id: Bento's record id.
        uuid: the subscriber's uuid (usable with `get_subscriber(uuid=...)`).
        email: the address.
        fields: custom fields (flat).
        tag_ids: ids of the subscriber's tags (Bento's `cached_tag_ids`).
        unsubscribed_at: ISO timestamp, or None while subscribed.
    """

    id: str
    uuid: str
    email: str
    fields: dict[str, Any] = field(default_factory=dict)
    tag_ids: tuple[str, ...] = ()
    unsubscribed_at: str | None = None

    @classmethod
    def from_json(cls, doc: object) -> Subscriber | None:
        """Parse `{"data": {...}}`; `{}`, `{"data": null}` or no data is None."""
        if not isinstance(doc, Mapping):
            return None
        data = doc.get("data")
        if not isinstance(data, Mapping) or not data:
            return None
        id_, attrs = _resource(data)
        fields = attrs.get("fields")
        tag_ids = attrs.get("cached_tag_ids", attrs.get("tag_ids"))
        return cls(
            id=id_,
            uuid=str(attrs.get("uuid") or ""),
            email=str(attrs.get("email") or ""),
            fields=dict(fields) if isinstance(fields, Mapping) else {},
            tag_ids=tuple(str(t) for t in tag_ids) if isinstance(tag_ids, list) else (),
            unsubscribed_at=_str_or_none(attrs.get("unsubscribed_at")),
        )

    @property
    def subscribed(self) -> bool:
        """True unless Bento recorded an `unsubscribed_at`."""
        return self.unsubscribed_at is None


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEventError(f"{name} is required and must not be empty", field=name)
    return value


@dataclass(frozen=True)
class Email:
    """One email for `/batch/emails`, validated when built.

    Args:
        to: the recipient.
        from_: the sender; must be an author configured in Bento (sent as `from`).
        subject: the subject line (Liquid allowed).
        html_body: the HTML body (Liquid allowed).
        transactional: send even to unsubscribed addresses. Use with care.
        personalizations: flat Liquid variables, e.g. `{"name": "Jesse"}`.

    Raises:
        InvalidEventError: naming `to`, `from`, `subject`, `html_body` or
            `personalizations.<key>`.
    """

    to: str
    from_: str
    subject: str
    html_body: str
    transactional: bool = False
    personalizations: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # Frozen, so normalised values are stored through object.__setattr__.
        object.__setattr__(self, "to", validate_email(self.to, "to"))
        object.__setattr__(self, "from_", validate_email(self.from_, "from"))
        _text(self.subject, "subject")
        _text(self.html_body, "html_body")
        if not isinstance(self.transactional, bool):
            raise InvalidEventError(
                "transactional must be True or False", field="transactional"
            )
        if self.personalizations is not None:
            object.__setattr__(
                self,
                "personalizations",
                normalize_fields(self.personalizations, "personalizations"),
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Email:
        """Build from Bento's JSON keys (`from`) or the Python ones (`from_`)."""
        known = {"to", "from", "from_", "subject", "html_body"}
        known |= {"transactional", "personalizations"}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidEventError(
                f"unknown email key(s): {', '.join(unknown)}", field=unknown[0]
            )
        return cls(
            # Types are checked by __post_init__, with messages naming the key.
            to=data.get("to", ""),
            from_=data.get("from_", data.get("from", "")),
            subject=data.get("subject", ""),
            html_body=data.get("html_body", ""),
            transactional=data.get("transactional", False),
            personalizations=data.get("personalizations"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Bento's JSON object for this email."""
        out: dict[str, Any] = {
            "to": self.to,
            "from": self.from_,
            "subject": self.subject,
            "html_body": self.html_body,
            "transactional": self.transactional,
        }
        if self.personalizations:
            out["personalizations"] = dict(self.personalizations)
        return out


#: command name -> what its `query` holds (None: no query)
COMMANDS: dict[str, str | None] = {
    "add_tag": "tag",
    "add_tag_via_event": "tag",
    "remove_tag": "tag",
    "add_field": "field",
    "remove_field": "key",
    "subscribe": None,
    "unsubscribe": None,
    "change_email": "new email",
}


@dataclass(frozen=True)
class Command:
    """One subscriber mutation for `/fetch/commands`. Build with the class
    methods (`Command.add_tag(email, "vip")`...), which validate their input.

    Commands are applied asynchronously and do not trigger automations, except
    `add_tag_via_event`.
    """

    command: str
    email: str
    query: str | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise InvalidEventError(
                f"command must be one of {', '.join(sorted(COMMANDS))}, "
                f"not {self.command!r}",
                field="command",
            )
        object.__setattr__(self, "email", validate_email(self.email))
        wants = COMMANDS[self.command]
        if wants is None and self.query is not None:
            raise InvalidEventError(f"{self.command} takes no query", field="query")
        if wants is not None and not self.query:
            raise InvalidEventError(
                f"{self.command} needs a query ({wants})", field="query"
            )

    @classmethod
    def add_tag(cls, email: str, tag: str) -> Command:
        """Add `tag` (created if missing); no automations."""
        return cls("add_tag", email, _text(tag, "tag").strip())

    @classmethod
    def add_tag_via_event(cls, email: str, tag: str) -> Command:
        """Add `tag` through an event, so automations run."""
        return cls("add_tag_via_event", email, _text(tag, "tag").strip())

    @classmethod
    def remove_tag(cls, email: str, tag: str) -> Command:
        """Remove `tag` from the subscriber."""
        return cls("remove_tag", email, _text(tag, "tag").strip())

    @classmethod
    def add_field(cls, email: str, key: str, value: Any) -> Command:
        """Set custom field `key` to a flat `value`."""
        key = _text(key, "key").strip()
        fields = normalize_fields({key: value}, "value") or {}
        return cls("add_field", email, {"key": key, "value": fields[key]})

    @classmethod
    def remove_field(cls, email: str, key: str) -> Command:
        """Remove custom field `key` from the subscriber."""
        return cls("remove_field", email, _text(key, "key").strip())

    @classmethod
    def subscribe(cls, email: str) -> Command:
        """Subscribe the address (again, if it had unsubscribed)."""
        return cls("subscribe", email)

    @classmethod
    def unsubscribe(cls, email: str) -> Command:
        """Unsubscribe the address."""
        return cls("unsubscribe", email)

    @classmethod
    def change_email(cls, old: str, new: str) -> Command:
        """Move subscriber `old` to the address `new`."""
        return cls("change_email", old, validate_email(new, "query"))

    def to_dict(self) -> dict[str, Any]:
        """Bento's JSON object for this command (`query` only when it has one)."""
        out: dict[str, Any] = {"command": self.command, "email": self.email}
        if self.query is not None:
            out["query"] = self.query
        return out
