"""Settings from arguments first, then `BENTO_*` environment variables.

Every problem raises `ConfigurationError` naming both the argument and the
variable, so the fix is obvious. The secret key is kept out of every repr.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import ConfigurationError

__all__ = ["DEFAULT_BASE_URL", "ENV_VARS", "Config", "check_number", "env_flag"]

DEFAULT_BASE_URL = "https://app.bentonow.com/api/v1"

#: argument name -> environment variable
ENV_VARS = {
    "site_uuid": "BENTO_SITE_UUID",
    "publishable_key": "BENTO_PUBLISHABLE_KEY",
    "secret_key": "BENTO_SECRET_KEY",
    "base_url": "BENTO_BASE_URL",
    "allow_insecure_http": "BENTO_ALLOW_INSECURE_HTTP",
    "strict": "BENTO_STRICT",
    "store": "BENTO_STORE",
}

# Keys and site uuids are opaque tokens; anything with spaces, quotes or control
# characters is a copy-paste accident (a trailing newline, a quoted value).
_TOKEN = re.compile(r"[A-Za-z0-9_\-.]{1,200}")
# Below this length a secret is redacted as a whole word only (`Config.redact`).
_SHORT_SECRET = 8
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def check_number(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    integer: bool = False,
    unit: str = "",
) -> Any:
    """`value` if it is a number (an int when `integer`) in [low, high], else a
    `ConfigurationError` naming the setting, the unit and the range. The one
    check every numeric setting goes through; `bool` is not a number here."""
    kind = "an integer" if integer else "a number"
    if unit:
        kind = f"{kind} of {unit}"
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(
        value, bool
    )
    if not ok or not low <= value <= high:  # type: ignore[operator]
        raise ConfigurationError(
            f"{name} must be {kind} in [{low:g}, {high:g}], not {value!r}",
            setting=name,
        )
    return value if integer else float(value)  # type: ignore[arg-type]


def env_flag(name: str, value: bool | None, env: Mapping[str, str]) -> bool:
    """A yes/no setting: the argument when given (a bool), else its variable."""
    var = ENV_VARS[name]
    if value is not None:
        if not isinstance(value, bool):
            raise ConfigurationError(
                f"{name} must be True or False, not {value!r}", setting=name
            )
        return value
    raw = env.get(var, "").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ConfigurationError(
            f"{name} ({var}) must be one of 1/0/true/false/yes/no/on/off, not {raw!r}",
            setting=name,
        )
    return raw in _TRUE


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Config:
    """Validated connection settings. Build with `Config.resolve(...)`."""

    site_uuid: str
    publishable_key: str
    secret_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 5.0
    read_timeout: float = 10.0

    def __repr__(self) -> str:
        return (
            f"Config(site_uuid={self.site_uuid!r}, "
            f"publishable_key={self.publishable_key!r}, secret_key='***', "
            f"base_url={self.base_url!r})"
        )

    @property
    def authorization(self) -> str:
        """The `Authorization` header value. Never log it."""
        raw = f"{self.publishable_key}:{self.secret_key}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def redact(self, text: str) -> str:
        """Remove the secret key and the Basic credential from `text`.

        A secret shorter than 8 characters (never a real Bento key; a test's
        `"k"`) is removed only where it stands alone, not inside a word:
        replacing every `k` would turn `Connection refused` into noise.
        """
        for secret in (self.secret_key, self.authorization.split(" ", 1)[1]):
            if len(secret) >= _SHORT_SECRET:
                text = text.replace(secret, "***")
            elif secret:
                text = re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", "***", text)
        return text

    @classmethod
    def resolve(
        cls,
        *,
        site_uuid: str | None = None,
        publishable_key: str | None = None,
        secret_key: str | None = None,
        base_url: str | None = None,
        allow_insecure_http: bool | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Settings from the arguments, falling back to the environment.

        Raises:
            ConfigurationError: a setting is missing or malformed.
        """
        env = os.environ if environ is None else environ

        def pick(name: str, value: str | None) -> str | None:
            return value if value is not None else env.get(ENV_VARS[name])

        values = {
            "site_uuid": pick("site_uuid", site_uuid),
            "publishable_key": pick("publishable_key", publishable_key),
            "secret_key": pick("secret_key", secret_key),
        }
        for name, value in values.items():
            var = ENV_VARS[name]
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(
                    f"{name} must be a string, not {type(value).__name__}",
                    setting=name,
                )
            if value is None or value == "":
                raise ConfigurationError(
                    f"{name} is not set: pass {name}=... or set the {var} "
                    "environment variable",
                    setting=name,
                )
            if not _TOKEN.fullmatch(value):
                shown = "<hidden>" if name == "secret_key" else repr(value)
                raise ConfigurationError(
                    f"{name} ({var}) is malformed: {shown} must be 1-200 letters, "
                    "digits, '-', '_' or '.' with no spaces or quotes",
                    setting=name,
                )
        insecure = env_flag("allow_insecure_http", allow_insecure_http, env)
        url = pick("base_url", base_url) or DEFAULT_BASE_URL
        if not isinstance(url, str):
            raise ConfigurationError(
                f"base_url must be a string, not {type(url).__name__}",
                setting="base_url",
            )
        url = cls._check_base_url(url, insecure)
        connect_timeout = check_number(
            "connect_timeout", connect_timeout, 0.001, 600, unit="seconds"
        )
        read_timeout = check_number(
            "read_timeout", read_timeout, 0.001, 600, unit="seconds"
        )
        return cls(
            site_uuid=values["site_uuid"] or "",
            publishable_key=values["publishable_key"] or "",
            secret_key=values["secret_key"] or "",
            base_url=url,
            connect_timeout=float(connect_timeout),
            read_timeout=float(read_timeout),
        )

    @staticmethod
    def _check_base_url(url: str, allow_insecure_http: bool) -> str:
        where = "base_url (BENTO_BASE_URL)"
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises ValueError on a malformed port
            # httpx is stricter than urlsplit (IDNA hosts, characters): what it
            # refuses must fail here, not later on the capture path.
            httpx.URL(url)
        except (ValueError, httpx.InvalidURL) as exc:
            raise ConfigurationError(
                f"{where} is malformed: {url!r} ({exc})", setting="base_url"
            ) from None
        if parts.scheme not in ("http", "https") or not host:
            raise ConfigurationError(
                f"{where} must be an http(s) URL with a host, such as "
                f"{DEFAULT_BASE_URL!r}; got {url!r}",
                setting="base_url",
            )
        if parts.username or parts.password:
            raise ConfigurationError(
                f"{where} must not embed credentials; use publishable_key and "
                "secret_key instead",
                setting="base_url",
            )
        if parts.query or parts.fragment:
            raise ConfigurationError(
                f"{where} must not carry a query string or fragment: {url!r}",
                setting="base_url",
            )
        if (
            parts.scheme == "http"
            and not allow_insecure_http
            and not _is_loopback(host)
        ):
            raise ConfigurationError(
                f"{where} uses plain http:// to a non-loopback host ({host}); the "
                "secret key would travel in clear text. Use https://, or pass "
                "allow_insecure_http=True (BENTO_ALLOW_INSECURE_HTTP=1) if you mean it",
                setting="base_url",
            )
        return url.rstrip("/")
