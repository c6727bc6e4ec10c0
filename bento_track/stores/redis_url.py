"""Reading a Redis store's URL: what to connect to, this library's own
options, and how to show it without its password.

`redis://[[user]:password@]host[:port][/db][?option=value&...]`, or
`rediss://` for TLS. The password never leaves this module except in the
connection arguments: every text meant for people (`location`, messages,
`bento-track store`) is `redacted()`, which hides it in each form it can
take, the well-formed ones (userinfo, `?password=`) and the malformed ones
(a `#`, `/`, `?` or `@` left unencoded in the password, which splits the
URL in the wrong place).

A malformed URL or option is a `ConfigurationError` naming `store` when the
client is made (never a bare `ValueError`, never a stream of worker errors
later): each option is checked here, with its type and range, because
redis-py accepts unknown ones and fails only when it first connects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_VISIBILITY_TIMEOUT",
    "STORE_OPTIONS",
    "RedisURL",
    "StoreOptions",
    "is_redis_url",
    "parse_redis_url",
    "redacted",
    "store_options",
]

#: options this library reads (the rest are redis-py's connection options)
STORE_OPTIONS = ("namespace", "visibility_timeout", "fallback", "host")
#: seconds a process may hold a claimed batch without a sign of life before
#: any other process takes it over; far above one request's time
DEFAULT_VISIBILITY_TIMEOUT = 60.0

_SCHEMES = ("redis", "rediss")
#: what may follow the userinfo: host (a name or a bracketed IPv6 address),
#: port, database, query
_HOST = r"(?:\[[0-9A-Za-z:.%]*\]|[^/?#@\[\]:]*)"
_AFTER_USERINFO = re.compile(_HOST + r"(?::[^/?#@]*)?(?:/[^?#@]*)?(?:\?[^#]*)?\Z")
_HOSTPORT = re.compile(r"(" + _HOST + r")(?::([^/?#@]*))?\Z")
_TAIL = re.compile(r"(?:/([^?#]*))?(?:\?([^#]*))?\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,252})?\Z")
#: query options whose values are secrets
_SECRET_OPTION = re.compile(r"password|secret|token", re.IGNORECASE)


def is_redis_url(spec: str) -> bool:
    """Whether `spec` names a Redis store (`redis:` or `rediss:`, any case)."""
    scheme = spec.strip().partition(":")[0].lower()
    return scheme in _SCHEMES and ":" in spec


@dataclass(frozen=True)
class _Split:
    scheme: str
    userinfo: str | None
    hostport: str
    tail: str
    #: False when the URL only splits by guessing (a password with an
    #: unencoded '/', '?', '#' or '@'): refused by `parse_redis_url`
    well_formed: bool


def _split(url: str) -> _Split:
    """The parts of `url`, found the way a careful reader would, not the
    way `urlsplit` does (which cuts a password at its first '/' or '#')."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _Split(
            scheme="", userinfo=None, hostport="", tail=url, well_formed=False
        )
    end = min([rest.find(c) for c in "/?#" if c in rest] or [len(rest)])
    authority, tail = rest[:end], rest[end:]
    userinfo: str | None = None
    hostport = authority
    if "@" in authority:
        userinfo, _, hostport = authority.rpartition("@")
    standard = _HOSTPORT.match(hostport)
    if (
        standard is not None
        and standard.group(1)
        and _TAIL.match(tail)
        and "@" not in tail.partition("?")[0]
    ):
        return _Split(scheme, userinfo, hostport, tail, well_formed=True)
    # Not a plain URL: the first '@' after which a host, a port, a database
    # and a query follow ends the userinfo. A guess, so it is never used to
    # connect, only to hide the password in the error that says so.
    for at in re.finditer("@", rest):
        after = rest[at.end() :]
        if _AFTER_USERINFO.match(after):
            end = min([after.find(c) for c in "/?" if c in after] or [len(after)])
            return _Split(
                scheme, rest[: at.start()], after[:end], after[end:], well_formed=False
            )
    if "@" in rest:  # where it ends cannot be told: hide all of it
        userinfo, _, after = rest.rpartition("@")
        return _Split(scheme, userinfo, after, "", well_formed=False)
    return _Split(scheme, None, authority, tail, well_formed=False)


def _redact_query(tail: str) -> str:
    path, mark, query = tail.partition("?")
    if not mark:
        return tail
    shown = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        if eq and _SECRET_OPTION.search(unquote(name)):
            item = f"{name}=***"
        shown.append(item)
    return f"{path}?{'&'.join(shown)}"


def redacted(url: str) -> str:
    """`url` with its password (in the userinfo, in `?password=` or any other
    option named like a secret) replaced by `***`: for every text meant for
    people. A user name is kept (`redis://user:***@host`)."""
    parts = _split(url.strip())
    if not parts.scheme:  # not even scheme://: hide up to the last '@'
        scheme, colon, rest = url.strip().partition(":")
        if colon and "@" in rest:
            return f"{scheme}:***@{_redact_query(rest.rpartition('@')[2])}"
        return _redact_query(url.strip())
    shown = f"{parts.scheme}://"
    if parts.userinfo is not None:
        user, colon, _password = parts.userinfo.partition(":")
        if colon and parts.well_formed and "/" not in user and "#" not in user:
            shown += f"{user}:***@"
        else:  # no ':' (a bare password, as some write it) or a guess
            shown += "***@"
    return shown + parts.hostport + _redact_query(parts.tail)


def _bool(value: str) -> bool:
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def _seconds(value: str) -> float:
    seconds = float(value)
    if not 0.001 <= seconds <= 3600.0:
        raise ValueError(value)
    return seconds


def _count(low: int, high: int) -> Callable[[str], int]:
    def convert(value: str) -> int:
        number = int(value.strip())
        if not low <= number <= high:
            raise ValueError(value)
        return number

    return convert


def _text(value: str) -> str:
    return value


def _protocol(value: str) -> int:
    if value.strip() != "2":
        raise ValueError(value)  # the store reads RESP2 answers
    return 2


#: redis-py's connection options a URL may carry: name -> (converter, what
#: it wants, TLS only)
_REDIS_OPTIONS: dict[str, tuple[Callable[[str], Any], str, bool]] = {
    "db": (_count(0, 1_000_000), "a database number", False),
    "username": (_text, "a user name", False),
    "password": (_text, "a password", False),
    "socket_timeout": (_seconds, "seconds in [0.001, 3600]", False),
    "socket_connect_timeout": (_seconds, "seconds in [0.001, 3600]", False),
    "socket_keepalive": (_bool, "true or false", False),
    "retry_on_timeout": (_bool, "true or false", False),
    "health_check_interval": (_count(0, 86_400), "whole seconds", False),
    "max_connections": (_count(1, 100_000), "a count of at least 1", False),
    "client_name": (_text, "a name", False),
    "protocol": (_protocol, "2 (the store reads RESP2)", False),
    "ssl_cert_reqs": (_text, "none, optional or required", True),
    "ssl_ca_certs": (_text, "a file", True),
    "ssl_ca_path": (_text, "a directory", True),
    "ssl_certfile": (_text, "a file", True),
    "ssl_keyfile": (_text, "a file", True),
    "ssl_password": (_text, "a password", True),
    "ssl_check_hostname": (_bool, "true or false", True),
}


@dataclass(frozen=True)
class RedisURL:
    """A Redis store URL, checked and taken apart.

    Attributes:
        connection: keyword arguments for `redis.Redis` (the password among
            them: never shown).
        options: this library's options (`STORE_OPTIONS`) as given.
        location: the URL for people (`redacted`).
        server: the server without this library's options, redacted.
    """

    connection: dict[str, Any] = field(repr=False)
    options: dict[str, str]
    location: str
    server: str


def _bad(message: str) -> ConfigurationError:
    return ConfigurationError(f"store: {message}", setting="store")


def parse_redis_url(url: str) -> RedisURL:
    """Check `url` and take it apart (no I/O).

    Raises:
        ConfigurationError: naming `store`, without the password: a
            malformed URL (a password with an unencoded '#', '/', '?' or
            '@', an unclosed '[', a port that is not 1-65535, a database
            that is not a number), an unknown option or a malformed value.
    """
    url = url.strip()
    shown = redacted(url)
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise _bad(f"a Redis store URL starts redis:// or rediss://, not {shown!r}")
    if not parts.hostport:
        raise _bad(f"no Redis host named in {shown!r}")
    if "[" in parts.hostport and "]" not in parts.hostport:
        raise _bad(f"unclosed '[' in the host of {shown!r}")
    if not parts.well_formed:
        raise _bad(
            f"malformed Redis URL {shown!r}: percent-encode '#', '/', '?' and '@' "
            "in the password (%23, %2F, %3F, %40); an IPv6 host goes in brackets "
            "([::1]:6379)"
        )
    hostport = _HOSTPORT.match(parts.hostport)
    tail = _TAIL.match(parts.tail)
    assert hostport is not None and tail is not None  # well formed
    host, port_text = hostport.group(1), hostport.group(2)
    if host.startswith("["):
        host = host[1:-1]
        if ":" not in host:
            raise _bad(f"{host!r} is not an IPv6 address in {shown!r}")
    elif not _HOSTNAME.match(unquote(host)):
        raise _bad(f"no usable Redis host in {shown!r}")
    port = 6379
    if port_text is not None and port_text != "":
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _bad(f"the port must be a number in 1-65535 in {shown!r}")
        port = int(port_text)
    connection: dict[str, Any] = {"host": unquote(host), "port": port, "db": 0}
    if scheme == "rediss":
        connection["ssl"] = True
    path = (tail.group(1) or "").strip("/")
    if path:
        if not path.isdigit():
            raise _bad(f"the database must be a number (/0), in {shown!r}")
        connection["db"] = int(path)
    if parts.userinfo is not None:
        user, colon, password = parts.userinfo.partition(":")
        if colon:
            if user:
                connection["username"] = unquote(user)
            if password:
                connection["password"] = unquote(password)
        elif user:
            # A lone word before '@' is a user name to redis-py; people
            # often mean a password. Both readings leak it when shown.
            connection["username"] = unquote(user)
    options: dict[str, str] = {}
    server_query: list[str] = []
    seen: set[str] = set()
    for raw in (tail.group(2) or "").split("&"):
        if not raw:
            continue
        name, value = next(iter(parse_qsl(raw, keep_blank_values=True)), ("", ""))
        if not name:
            raise _bad(f"malformed option in {shown!r}")
        if name in seen:
            raise _bad(f"option {_name(name)} given twice in {shown!r}")
        seen.add(name)
        if name in STORE_OPTIONS:
            options[name] = value
            continue
        known = _REDIS_OPTIONS.get(name)
        if known is None:
            names = ", ".join(sorted((*STORE_OPTIONS, *_REDIS_OPTIONS)))
            raise _bad(f"unknown Redis URL option {_name(name)} (known: {names})")
        convert, wants, tls_only = known
        if tls_only and scheme != "rediss":
            raise _bad(f"option {name!r} needs a rediss:// (TLS) URL")
        try:
            converted = convert(value)
        except ValueError:
            shown_value = "***" if _SECRET_OPTION.search(name) else repr(value)
            raise _bad(f"{name} must be {wants}, not {shown_value}") from None
        if name in ("username", "password") and name in connection:
            raise _bad(f"the {name} is given twice (userinfo and ?{name}=)")
        if name == "db" and path and converted != connection["db"]:
            raise _bad(f"two databases named (/{path} and ?db=) in {shown!r}")
        connection[name] = converted
        server_query.append(raw)
    if scheme == "rediss" and "ssl_cert_reqs" in connection:
        if connection["ssl_cert_reqs"] not in ("none", "optional", "required"):
            raise _bad(
                "ssl_cert_reqs must be none, optional or required, not "
                f"{connection['ssl_cert_reqs']!r}"
            )
    server = shown.partition("?")[0]
    if server_query:
        server += "?" + _redact_query("?" + "&".join(server_query))[1:]
    return RedisURL(
        connection=connection, options=options, location=shown, server=server
    )


def _name(name: str) -> str:
    """An unknown option's name, unless it could be part of a password (an
    unencoded '&' in one splits it into options)."""
    if re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", name):
        return repr(name)
    return "(not shown)"


@dataclass(frozen=True)
class StoreOptions:
    """A Redis store URL's own options (`STORE_OPTIONS`), checked.

    Attributes:
        namespace: keys are `bt:{namespace:account}:...`.
        visibility_timeout: seconds before a quiet holder's batch is taken
            over.
        host: this host's name in the consumer group (None: the host name).
        fallback: the `sqlite:///` URL of the fallback (None: memory).
    """

    namespace: str = "bento"
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    host: str | None = None
    fallback: str | None = None


def store_options(parsed: RedisURL) -> StoreOptions:
    """Check this library's options of a parsed URL (no I/O).

    Raises:
        ConfigurationError: naming `store`: a namespace that is not 1-64
            letters, digits, '-', '_' or '.', a visibility_timeout outside
            [1, 86400] seconds, a host with ':', a fallback that is not
            `memory` nor a `sqlite:///` URL.
    """
    ours = parsed.options
    namespace = ours.get("namespace", "bento")
    if (
        not namespace
        or len(namespace) > 64
        or not all(c.isalnum() or c in "-_." for c in namespace)
    ):
        raise _bad(
            f"namespace must be 1-64 letters, digits, '-', '_' or '.', "
            f"not {namespace!r}"
        )
    visibility = DEFAULT_VISIBILITY_TIMEOUT
    if "visibility_timeout" in ours:
        try:
            visibility = float(ours["visibility_timeout"])
        except ValueError:
            visibility = -1.0
        if not 1.0 <= visibility <= 86400.0:
            raise _bad(
                "visibility_timeout must be seconds in [1, 86400], not "
                f"{ours['visibility_timeout']!r}"
            )
    host = ours.get("host") or None
    if host is not None and (len(host) > 64 or ":" in host or not host.isprintable()):
        raise _bad(f"host must be a name without ':' (at most 64), not {host!r}")
    spec = ours.get("fallback", "memory").strip()
    fallback = None
    if spec not in ("", "memory"):
        if not spec.startswith("sqlite:///"):
            raise _bad(f"fallback must be 'memory' or 'sqlite:///PATH', not {spec!r}")
        fallback = spec
    return StoreOptions(namespace, visibility, host, fallback)
