"""Which `Host` names the emulator answers: the defence against DNS rebinding.

A web page on `evil.example` can make its own name resolve to 127.0.0.1 and
then read the emulator as if it were its own origin; the browser still sends
`Host: evil.example`. So the emulator answers only names that cannot be
rebound: the loopback names (`localhost`, `127.0.0.1`, `[::1]`), the IP
address the connection arrived on (an address is never looked up, so it
cannot be rebound), and the names the user allows (`--allow-host`, e.g. a
docker-compose service name).

Only the name is compared, never the port: a rebinding page cannot choose
the name, whatever the port, while port forwarding (`docker run -p
9025:8025`, `ssh -L`) legitimately changes the port clients see.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ALLOWED_HOSTS_VAR",
    "LOOPBACK_NAMES",
    "HostName",
    "allowed_hosts_from_env",
    "display_host",
    "exposure_warning",
    "host_allowed",
    "is_loopback",
    "normalize_allowed_hosts",
    "parse_host",
]

#: The variable `bento-track emulator` reads extra allowed names from.
ALLOWED_HOSTS_VAR = "BENTO_EMULATOR_ALLOWED_HOSTS"

#: Always answered (with any port).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

# A DNS name (docker-compose service names may hold `_`) or an IPv4 address.
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
_WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class HostName:
    """A parsed `Host` header.

    Attributes:
        name: lowercased, without a trailing dot; an IPv6 address without
            its brackets, in its compressed form.
        port: the port given, or None.
    """

    name: str
    port: int | None = None

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The name as an IP address, or None when it is a DNS name."""
        try:
            return ipaddress.ip_address(self.name)
        except ValueError:
            return None

    def __str__(self) -> str:
        """The name as written in a URL (`[::1]` for IPv6)."""
        return f"[{self.name}]" if ":" in self.name else self.name


def parse_host(value: str) -> HostName | None:
    """`name[:port]` or `[ipv6][:port]` from a `Host` header; None when malformed."""
    text = value.strip().lower()
    port_text = ""
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        try:
            name = ipaddress.IPv6Address(inside).compressed
        except ValueError:
            return None
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            return None
    else:
        name, colon, port_text = text.partition(":")
        if colon and not port_text:
            return None
        name = name[:-1] if name.endswith(".") else name
        if not _NAME.fullmatch(name):
            return None  # also an unbracketed IPv6 address: its ':' split it
    port: int | None = None
    if port_text:
        if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
            return None
        port = int(port_text)
    return HostName(name, port)


def is_loopback(host: str) -> bool:
    """Whether `host` (a bind address or a name, IPv6 with or without
    brackets) is `localhost` or a loopback address."""
    parsed = parse_host(
        host if host.startswith("[") or host.count(":") < 2 else f"[{host}]"
    )
    if parsed is None:
        return False
    if parsed.name == "localhost":
        return True
    ip = parsed.ip
    return ip is not None and ip.is_loopback


def normalize_allowed_hosts(names: Iterable[str]) -> tuple[str, ...]:
    """Names as given to `--allow-host`, checked and normalized.

    Raises:
        ValueError: a name that is not a host name, or that carries a port
            (only names are compared; any port is answered).
    """
    out: list[str] = []
    for given in names:
        parsed = parse_host(given) if isinstance(given, str) else None
        if parsed is None or not given.strip():
            raise ValueError(f"allowed host {given!r} is not a host name")
        if parsed.port is not None:
            raise ValueError(
                f"allowed host {given!r}: give the name without a port "
                f"({parsed}); any port is answered"
            )
        if parsed.name not in out:
            out.append(parsed.name)
    return tuple(out)


def allowed_hosts_from_env(environ: Mapping[str, str]) -> list[str]:
    """The names in `BENTO_EMULATOR_ALLOWED_HOSTS` (comma- or space-separated)."""
    raw = environ.get(ALLOWED_HOSTS_VAR, "")
    return [name for name in re.split(r"[\s,]+", raw) if name]


def host_allowed(
    host: HostName, allowed: Iterable[str], local_address: str | None
) -> bool:
    """Whether the emulator answers a request for `host`.

    Args:
        host: the request's parsed `Host`.
        allowed: names from `normalize_allowed_hosts`.
        local_address: the IP address the connection arrived on (the ASGI
            scope's `server`), if known.
    """
    if host.name == "localhost" or host.name in allowed:
        return True
    ip = host.ip
    if ip is None:
        return False
    if ip.is_loopback:
        return True
    if local_address is None:
        return False
    try:
        return ip == ipaddress.ip_address(local_address.strip("[]"))
    except ValueError:
        return False


def display_host(bind: str) -> str:
    """The host to put in URLs for a server bound to `bind`: loopback for a
    wildcard address (which reaches the same server and is always answered),
    else the address itself, bracketed when IPv6."""
    if bind in _WILDCARDS:
        return "[::1]" if bind == "::" else "127.0.0.1"
    return f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind


def exposure_warning(
    bind: str, allowed: Iterable[str], how_to_allow: str
) -> str | None:
    """What to say once when binding `bind`; None for a loopback address.

    Args:
        bind: the address to bind.
        allowed: the names allowed besides the loopback ones.
        how_to_allow: how this caller names more hosts (the CLI's flag and
            variable, or `EmulatorServer`'s argument).
    """
    if is_loopback(bind):
        return None
    text = (
        f"binding {bind}, not loopback: anyone who can reach this port can read "
        "what the emulator stores. It is a development tool."
    )
    if not list(allowed):
        text += (
            " It answers only requests addressed to localhost, 127.0.0.1, [::1] "
            "or the IP address they arrive on; requests for other names get 421. "
            f"Name the hosts clients use with {how_to_allow} "
            "(e.g. a docker-compose service name)."
        )
    return text
