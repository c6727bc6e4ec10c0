"""Checks of an event's text: Unicode Bento can store, the event type, the
email address; and how a user value or exception is shown in an error.
"""

from __future__ import annotations

import re

from ..errors import InvalidEventError

__all__ = [
    "MAX_EMAIL_LENGTH",
    "MAX_TYPE_LENGTH",
    "check_text",
    "check_type",
    "shown",
    "type_name",
    "unreadable",
    "validate_email",
]

MAX_TYPE_LENGTH = 255
MAX_EMAIL_LENGTH = 254

# Deliberately simple: one @, no whitespace, a dot in the domain. Bento does
# the real verification; this catches empty strings, names and typos like "a@b".
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def _said(exc: BaseException) -> str:
    """An exception's text, even when its `__str__` raises."""
    try:
        text = str(exc)
    except Exception:
        return "<message unreadable>"
    return text if len(text) <= 200 else text[:200] + "..."


def shown(value: object) -> str:
    """A short `repr` of a user value, even when its `__repr__` raises."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type_name(value)}>"
    return text if len(text) <= 80 else text[:80] + "..."


def unreadable(path: str, value: object, exc: Exception) -> InvalidEventError:
    """A user object raised while it was read (its `items()`, `__len__`,
    `__str__`, `strip()`, ...): the event is invalid, naming where."""
    return InvalidEventError(
        f"{path}: reading the {type_name(value)} raised {type_name(exc)}: {_said(exc)}",
        field=path,
    )


_valid_emails: dict[str, str] = {}
_VALID_EMAIL_CACHE = 4096


def validate_email(email: object, field: str = "email") -> str:
    """Return `email` stripped if it is a well-formed address, else raise.

    Addresses already seen are remembered (a bounded cache), because the same
    few users send most events and the regex is the costliest check here."""
    if type(email) is str:
        hit = _valid_emails.get(email)
        if hit is not None:
            return hit
    if not isinstance(email, str):
        raise InvalidEventError(
            f"{field} must be a string email address, not {type(email).__name__}",
            field=field,
        )
    # `str.strip`, not `email.strip`: a subclass's methods are never called
    # (one that raises would escape as something else than an invalid event).
    value = str.strip(email)
    if not value:
        raise InvalidEventError(
            f"{field} is required and must not be empty", field=field
        )
    check_text(value, field)
    if len(value) > MAX_EMAIL_LENGTH or not _EMAIL.match(value):
        raise InvalidEventError(
            f"{field} is not a well-formed email address: {value[:80]!r}", field=field
        )
    if type(email) is str:
        if len(_valid_emails) >= _VALID_EMAIL_CACHE:
            _valid_emails.clear()
        _valid_emails[email] = value
    return value


def check_text(value: str, field: str) -> str:
    """`value` if it is text Bento can store, else raise naming `field`: no lone
    surrogates (not valid Unicode, so not encodable as UTF-8 JSON) and no NUL
    characters (which Bento's database cannot hold)."""
    if value.isascii():
        if "\x00" in value:
            raise InvalidEventError(f"{field}: contains a NUL character", field=field)
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEventError(
            f"{field}: not valid Unicode text (lone surrogate "
            f"{value[exc.start]!r} at index {exc.start})",
            field=field,
        ) from None
    if "\x00" in value:
        raise InvalidEventError(f"{field}: contains a NUL character", field=field)
    return value


_valid_types: dict[str, str] = {}
_VALID_TYPE_CACHE = 1024


def check_type(value: object) -> str:
    """`value` stripped if it is a usable event type, else raise. A few types
    make most events, so the checked ones are remembered (a bounded cache)."""
    if type(value) is str:
        hit = _valid_types.get(value)
        if hit is not None:
            return hit
    if not isinstance(value, str) or not str.strip(value):
        raise InvalidEventError(
            "type is required: a non-empty event name such as 'account.signup'",
            field="type",
        )
    text = str.__str__(value)  # a subclass as its plain text
    if len(text) > MAX_TYPE_LENGTH:
        raise InvalidEventError(
            f"type is longer than {MAX_TYPE_LENGTH} characters", field="type"
        )
    check_text(text, "type")
    checked = text.strip()
    if type(value) is str:
        if len(_valid_types) >= _VALID_TYPE_CACHE:
            _valid_types.clear()
        _valid_types[value] = checked
    return checked


def type_name(value: object) -> str:
    """The name of `value`'s type, for error messages."""
    return type(value).__name__
