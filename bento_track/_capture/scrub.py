"""`Scrubber`: the values of secret-looking keys in an event's `fields` and
`details` (at any depth) replaced by `"[Filtered]"` before the event leaves
the capturing thread.

A key is denied when its name, in lower case with `-` and `_` removed, is on
the denylist: `Authorization`, `card-number`, `api_key` and `apiKey` all
match. Only names are looked at, never values; the event's own `email` and
`type` are never touched.

Cost: each distinct key name is judged once and remembered (a bounded set
per scrubber), so an event whose keys are all known to be clean costs one
set lookup per key; only an event that holds a denied key is copied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ConfigurationError
from ..events import Event

__all__ = ["DEFAULT_DENYLIST", "FILTERED", "FLAT_TYPES", "Scrubber", "key_name"]

#: what a denied key's value becomes
FILTERED = "[Filtered]"

#: the names scrubbed by default, as `key_name` writes them. Issue 19's list,
#: with what Sentry's and Rollbar's default denylists and the common web
#: frameworks' cookie and header names add.
DEFAULT_DENYLIST = frozenset(
    {
        # passwords
        "password",
        "passwd",
        "pwd",
        "mysqlpwd",
        "passwordconfirmation",
        "confirmpassword",
        "newpassword",
        "oldpassword",
        "currentpassword",
        # secrets, keys and tokens
        "secret",
        "secretkey",
        "clientsecret",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "apikey",
        "xapikey",
        "privatekey",
        "credentials",
        "jwt",
        "otp",
        # HTTP authentication, cookies and sessions
        "authorization",
        "proxyauthorization",
        "auth",
        "authentication",
        "cookie",
        "setcookie",
        "session",
        "sessionid",
        "phpsessid",
        "connect.sid",
        "csrf",
        "csrftoken",
        "xcsrftoken",
        "xsrf",
        "xsrftoken",
        "xxsrftoken",
        # payment cards and national identifiers
        "cardnumber",
        "creditcard",
        "creditcardnumber",
        "ccnumber",
        "cvv",
        "cvv2",
        "cvc",
        "ssn",
        "socialsecuritynumber",
    }
)

_CONTAINERS = frozenset({dict, list})
#: the types of a validated event's values that hold no keys
FLAT_TYPES = frozenset({str, int, float, bool, type(None)})
#: distinct key names a scrubber remembers as clean; past it, new names are
#: judged each time (correct, a little slower)
_MEMORY = 10_000


def key_name(key: str) -> str:
    """`key` as the denylist is written: lower case, `-` and `_` removed."""
    return key.lower().replace("-", "").replace("_", "")


def _names(setting: str, value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"Scrubber({setting}=...) must be a list of key names, not "
            f"{type(value).__name__}",
            setting="scrub",
        )
    names = list(value)
    for name in names:
        if not isinstance(name, str) or not key_name(name):
            raise ConfigurationError(
                f"Scrubber({setting}=...) must hold non-empty key names, not {name!r}",
                setting="scrub",
            )
    return frozenset(key_name(name) for name in names)


class Scrubber:
    """Replaces the values of denied keys in `fields` and `details` (at any
    depth, in lists too) by `"[Filtered]"`. Pass one as `scrub=` to tune the
    default (`scrub=True`); `scrub=False` turns scrubbing off.

    Args:
        extra_keys: names to scrub besides `DEFAULT_DENYLIST`.
        allow_keys: names of the default denylist to leave alone (a `session`
            that is a workout session, say).

    Names are compared in lower case with `-` and `_` removed, so
    `"X-Api-Key"` covers `x_api_key` and `xApiKey` too.

    Raises:
        ConfigurationError: a name is not a non-empty string.
    """

    def __init__(
        self, extra_keys: Iterable[str] = (), allow_keys: Iterable[str] = ()
    ) -> None:
        extra = _names("extra_keys", extra_keys)
        allow = _names("allow_keys", allow_keys)
        #: the names denied, as `key_name` writes them
        self.denylist: frozenset[str] = (DEFAULT_DENYLIST | extra) - allow
        # Key names as they appear in events, judged once. Sets of str are
        # safe to read while another thread adds to them (under the GIL).
        #: key names known not to be denied (read by the capture fast path)
        self.known_clean: set[str] = set()
        self._denied: set[str] = set()

    def __repr__(self) -> str:
        return f"Scrubber({len(self.denylist)} names denied)"

    def denies(self, key: object) -> bool:
        """Whether the value of `key` is scrubbed."""
        if key in self.known_clean:
            return False
        if key in self._denied:
            return True
        if not isinstance(key, str):
            return False
        denied = key_name(key) in self.denylist
        if denied:
            if len(self._denied) < _MEMORY:
                self._denied.add(key)
        elif len(self.known_clean) < _MEMORY:
            self.known_clean.add(key)
        return denied

    def scrub(self, event: Event) -> tuple[Event, int]:
        """`event` with denied values replaced, and how many were; the same
        event when it holds none (then nothing is copied)."""
        fields = event.fields
        details = event.details
        clean = self.known_clean
        if (not fields or clean.issuperset(fields)) and (
            not details or self._known_clean(details)
        ):
            return event, 0
        count = [0]
        new_fields = self._mapping(fields, count) if fields else fields
        new_details = self._mapping(details, count) if details else details
        if not count[0]:
            return event, 0
        return (
            Event(
                event.type,
                event.email,
                new_fields,
                new_details,
                event.date,
                event.captured_at,
            ),
            count[0],
        )

    def _known_clean(self, mapping: dict[str, Any]) -> bool:
        """Whether `mapping` and what it nests hold only names known clean.
        A dict or list with no container in it is judged by C-level loops
        (`issuperset`, `isdisjoint` over `map(type, ...)`): most are."""
        clean = self.known_clean
        pending: list[Any] = [mapping]
        pop = pending.pop
        push = pending.append
        while pending:
            current = pop()
            if type(current) is dict:
                if not clean.issuperset(current):
                    return False
                values: Any = current.values()
            else:
                values = current
            if _CONTAINERS.isdisjoint(map(type, values)):
                continue
            for value in values:
                if type(value) in _CONTAINERS:
                    push(value)
        return True

    def _mapping(self, mapping: Any, count: list[int]) -> Any:
        """`mapping` with denied values replaced (a copy only if any was)."""
        if not isinstance(mapping, dict):
            return mapping
        out: dict[Any, Any] | None = None
        for key, value in mapping.items():
            if self.denies(key):
                if type(value) is str and value == FILTERED:
                    continue  # scrubbed already (an event captured twice)
                new: Any = FILTERED
                count[0] += 1
            else:
                new = self._value(value, count)
                if new is value:
                    continue
            if out is None:
                out = dict(mapping)
            out[key] = new
        return mapping if out is None else out

    def _value(self, value: Any, count: list[int]) -> Any:
        kind = type(value)
        if kind is dict:
            return self._mapping(value, count)
        if kind is list:
            out: list[Any] | None = None
            for i, item in enumerate(value):
                new = self._value(item, count)
                if new is not item:
                    if out is None:
                        out = list(value)
                    out[i] = new
            return value if out is None else out
        return value
