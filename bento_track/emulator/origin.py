"""Whether a control request comes from the emulator's own pages: the
defence against cross-site writes.

A page on any other origin can send "simple" requests to the emulator
(`fetch(..., {mode: "no-cors"})`, a `<form enctype="text/plain">`); the
browser does not let it read the answer, but the request still runs. Two
checks stop them, either one enough on its own:

- A browser names the page that sent a POST, PUT or DELETE in `Origin` (or,
  in older browsers, only in `Referer`); one that is not the emulator's own
  origin is refused. Requests carrying neither (curl, the library, test
  suites) are not from a browser page and pass.
- A control body must be `application/json`, a type no simple request can
  carry: sending it cross-site needs a CORS preflight, which the emulator
  never grants.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .hosts import HostName, parse_host

__all__ = ["foreign_source", "json_body_refused"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host name, port) of an `Origin` or `Referer` value; None when
    it has none (`null`, `about:blank`, garbage)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        return None
    netloc = parts.netloc.rpartition("@")[2]
    host = parse_host(netloc)
    if host is None:
        return None
    return scheme, host.name, port if port is not None else _DEFAULT_PORTS[scheme]


def foreign_source(
    origin: str | None, referer: str | None, scheme: str, host: HostName
) -> str | None:
    """Why a write is refused as cross-site, or None when it may go ahead.

    Args:
        origin: the request's `Origin` header; `Referer` counts only without it.
        referer: the request's `Referer` header.
        scheme: the scheme the request came in on (`http`).
        host: the request's parsed `Host`: the emulator's origin as the
            browser addressed it.
    """
    if origin is not None:
        header, value = "Origin", origin
    elif referer is not None:
        header, value = "Referer", referer
    else:
        return None  # not sent by a web page
    own = (scheme, host.name, host.port or _DEFAULT_PORTS.get(scheme, 80))
    if _origin_of(value) == own:
        return None
    return (
        f"cross-site request refused: its {header} is not this emulator's own "
        "origin; the control API takes writes only from the emulator's own "
        "pages or from clients that are not browsers"
    )


def json_body_refused(content_type: str | None, has_body: bool) -> str | None:
    """Why a control request's body is refused (415), or None.

    A body must be declared `application/json`; a request without a body
    needs no type (`curl -X POST .../reset`).
    """
    if content_type is None:
        if not has_body:
            return None
    elif content_type.partition(";")[0].strip().lower() == "application/json":
        return None
    return (
        "the control API takes only JSON bodies: "
        "send them with Content-Type: application/json"
    )
