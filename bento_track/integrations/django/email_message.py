"""A Django `EmailMessage` as Bento emails, and what Bento cannot carry.

Bento's `/batch/emails` takes one `to`, a `from` (an author of the account),
a `subject`, an `html_body`, `transactional` and flat `personalizations`
(Liquid variables). So:

- each address in `to` becomes one Bento email; display names are dropped
  (Bento shows the subscriber, and the author's own name as the sender);
- the body: an HTML alternative (`attach_alternative(html, "text/html")`,
  `send_mail(html_message=...)`) or an HTML body (`content_subtype = "html"`)
  is `html_body` as is; the text part beside it is not sent (Bento takes HTML
  only). A text-only message becomes HTML that shows the text as written:
  escaped, whitespace and line breaks kept, and its braces turned into
  entities so Bento's Liquid leaves `{{ ... }}` alone (unless the message
  has merge data, which asks for Liquid);
- `merge_global_data` and `merge_data` (django-anymail's names: data for
  every recipient, and per recipient address, the latter winning) become
  `personalizations`;
- `transactional` is the backend's default (True) unless the message sets
  `bento_transactional`.

Attachments, cc, bcc, reply_to, custom headers, other alternatives and
django-anymail features Bento has no field for (`template_id`, `tags`,
`metadata`, ...) raise `UnsupportedFeatureError` naming them; under the
option `unsupported="drop"` they are left out instead, with a warning.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

from ...errors import InvalidEventError
from ...events import validate_email
from ...models import Email

__all__ = [
    "ANYMAIL_FEATURES",
    "UNSUPPORTED_POLICIES",
    "MappedMessage",
    "UnsupportedFeatureError",
    "bento_emails",
    "text_as_html",
]

#: what to do with what Bento cannot carry: refuse the message, or send it
#: without (with a warning)
UNSUPPORTED_POLICIES = ("error", "drop")

#: django-anymail message attributes with no Bento field
ANYMAIL_FEATURES = (
    "template_id",
    "tags",
    "metadata",
    "merge_metadata",
    "send_at",
    "track_clicks",
    "track_opens",
    "envelope_sender",
    "esp_extra",
)


class UnsupportedFeatureError(InvalidEventError):
    """The message uses what Bento's `/batch/emails` cannot carry;
    `features` names each (`attachments`, `cc`, `headers`, ...)."""

    def __init__(self, message: str, *, features: list[str]) -> None:
        super().__init__(message, field=features[0] if features else None)
        self.features = features


@dataclass(frozen=True)
class MappedMessage:
    """One Django message as Bento emails.

    Attributes:
        emails: one per address in `to`, in order (none: no recipient).
        dropped: what was left out under `unsupported="drop"`.
    """

    emails: list[Email]
    dropped: list[str] = field(default_factory=list)


def text_as_html(text: str, *, liquid: bool = False) -> str:
    """HTML that shows `text` as written: escaped, with its spaces and line
    breaks kept. Braces become entities so Bento's Liquid does not read
    `{{ ... }}` or `{% ... %}` in it, unless `liquid` (merge data given)."""
    escaped = html.escape(text, quote=False)
    if not liquid:
        escaped = escaped.replace("{", "&#123;").replace("}", "&#125;")
    return f'<div style="white-space: pre-wrap">{escaped}</div>'


def bento_emails(
    message: Any,
    *,
    default_from: str,
    transactional: bool,
    unsupported: str,
) -> MappedMessage:
    """The Bento emails of a Django `EmailMessage` (see the module docstring).

    The whole message is checked before anything is built, so it is sent
    whole or not at all.

    Raises:
        UnsupportedFeatureError: it uses what Bento cannot carry (and
            `unsupported` is "error").
        InvalidEventError: a malformed address (the field names it: `from_email`,
            `to[1]`), no subject, merge data that is not a dict of flat
            values, or a `bento_transactional` that is not a bool.
    """
    features = unsupported_features(message)
    if features and unsupported != "drop":
        raise UnsupportedFeatureError(
            f"Bento's /batch/emails cannot carry {', '.join(features)}: remove "
            f"{'them' if len(features) > 1 else 'it'} from the message, or set "
            "BENTO_TRACK['email'] = {'unsupported': 'drop'} to send without "
            "(with a warning)",
            features=[f.split(" ", 1)[0] for f in features],
        )
    sender = _address(message.from_email or default_from, "from_email")
    subject = str(message.subject or "")
    if not subject.strip():
        raise InvalidEventError(
            "subject: Bento sends no email without a subject", field="subject"
        )
    kind = _transactional(message, transactional)
    shared, per_recipient = _merge_data(message)
    body = _html_body(message, liquid=bool(shared or per_recipient))
    emails = []
    for i, raw in enumerate(message.to):
        to = _address(raw, f"to[{i}]")
        data = {**shared, **per_recipient.get(to, {})}
        try:
            emails.append(
                Email(
                    to=to,
                    from_=sender,
                    subject=subject,
                    html_body=body,
                    transactional=kind,
                    personalizations=data or None,
                )
            )
        except InvalidEventError as exc:
            raise InvalidEventError(
                f"merge data for {to}: {exc}", field=exc.field
            ) from None
    return MappedMessage(emails, features)


def unsupported_features(message: Any) -> list[str]:
    """What `message` carries that Bento cannot, each named with a detail:
    `["attachments (invoice.pdf)", "cc (1 address)", ...]`."""
    found = []
    attachments = list(getattr(message, "attachments", None) or [])
    if attachments:
        names = [_attachment_name(a) for a in attachments]
        found.append(f"attachments ({', '.join(names)})")
    for name in ("cc", "bcc", "reply_to"):
        addresses = list(getattr(message, name, None) or [])
        if addresses:
            count = len(addresses)
            found.append(f"{name} ({count} address{'es' if count > 1 else ''})")
    headers = dict(getattr(message, "extra_headers", None) or {})
    if headers:
        found.append(f"headers ({', '.join(sorted(map(str, headers)))})")
    others = _alternatives(message)[1]
    if others:
        found.append(f"alternatives ({', '.join(others)})")
    for name in ANYMAIL_FEATURES:
        value = getattr(message, name, None)
        if value is not None and value != {} and value != []:
            found.append(f"{name} (django-anymail)")
    return found


def _attachment_name(attachment: Any) -> str:
    if isinstance(attachment, tuple) and attachment:
        return str(attachment[0] or "unnamed")
    get = getattr(attachment, "get_filename", None)
    name = get() if callable(get) else None
    return str(name or "unnamed")


def _alternatives(message: Any) -> tuple[str | None, list[str]]:
    """(the HTML alternative's content, the mimetypes of the others)."""
    found: str | None = None
    others = []
    for alternative in getattr(message, "alternatives", None) or []:
        content, mimetype = alternative[0], alternative[1]
        if mimetype == "text/html" and found is None:
            found = str(content)
        else:
            others.append(str(mimetype))
    return found, others


def _html_body(message: Any, *, liquid: bool) -> str:
    alternative = _alternatives(message)[0]
    if alternative is not None:
        return alternative
    body = str(message.body or "")
    if getattr(message, "content_subtype", "plain") == "html":
        return body
    return text_as_html(body, liquid=liquid)


def _address(raw: object, where: str) -> str:
    """The address of `"Name <addr>"` or `"addr"`, validated."""
    text = str(raw) if raw is not None else ""
    address = parseaddr(text)[1] or text
    try:
        return validate_email(address, where)
    except InvalidEventError as exc:
        hint = (
            " (DEFAULT_FROM_EMAIL, unless the message names one; Bento sends only "
            "from an author of the account)"
            if where == "from_email"
            else ""
        )
        raise InvalidEventError(f"{exc}{hint}", field=where) from None


def _transactional(message: Any, default: bool) -> bool:
    value = getattr(message, "bento_transactional", None)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidEventError(
            f"bento_transactional must be True or False, not {value!r}",
            field="bento_transactional",
        )
    return value


def _merge_data(message: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(`merge_global_data`, `merge_data` by recipient address)."""
    shared = getattr(message, "merge_global_data", None) or {}
    if not isinstance(shared, Mapping):
        raise InvalidEventError(
            "merge_global_data must be a dict of flat values (Liquid variables), "
            f"not {type(shared).__name__}",
            field="merge_global_data",
        )
    raw = getattr(message, "merge_data", None) or {}
    if not isinstance(raw, Mapping) or not all(
        isinstance(v, Mapping) for v in raw.values()
    ):
        raise InvalidEventError(
            "merge_data must be a dict of recipient address -> dict of flat values",
            field="merge_data",
        )
    per_recipient = {}
    for key, values in raw.items():
        address = parseaddr(str(key))[1] or str(key)
        per_recipient[address.strip()] = dict(values)
    return dict(shared), per_recipient
