"""The emulator's settings: the account it pretends to be and its limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .hosts import normalize_allowed_hosts
from .ratelimit import check_limit

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PUBLISHABLE_KEY",
    "DEFAULT_RATE_WINDOW",
    "DEFAULT_REQUESTS_PER_MINUTE",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_SITE_UUID",
    "EmulatorSettings",
]

DEFAULT_SITE_UUID = "emulator-site"
DEFAULT_PUBLISHABLE_KEY = "pk_emulator"
DEFAULT_SECRET_KEY = "sk_emulator"
#: Bento documents about 100 requests a minute per account for `/batch` and `/fetch`.
DEFAULT_REQUESTS_PER_MINUTE = 100
DEFAULT_RATE_WINDOW = 60.0
#: Bento documents no body limit (Cloudflare's applies); 10 MiB is ten times
#: what `bento_track` sends in one request, and small enough to hold.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass
class EmulatorSettings:
    """Everything that makes one emulated Bento account.

    Attributes:
        site_uuid: the `site_uuid` every request must carry.
        publishable_key: the Basic auth user name (also the rate-limit key).
        secret_key: the Basic auth password; never shown in reprs or pages.
        requests_per_minute: requests accepted in any `rate_window` seconds.
        rate_window: the sliding window of the rate limit, in seconds.
        db_path: the SQLite file, or `":memory:"`.
        authors: the sender addresses `/batch/emails` accepts; `None` accepts any.
        clock: monotonic seconds, for the rate limit and the request log.
        max_body_bytes: larger request bodies get 413, and are never read
            whole (API and inspection API alike).
        allowed_hosts: `Host` names answered besides `localhost`,
            `127.0.0.1`, `[::1]` and the address a connection arrives on
            (e.g. a docker-compose service name); others get 421.
    """

    site_uuid: str = DEFAULT_SITE_UUID
    publishable_key: str = DEFAULT_PUBLISHABLE_KEY
    secret_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    rate_window: float = DEFAULT_RATE_WINDOW
    db_path: str = ":memory:"
    authors: Sequence[str] | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    allowed_hosts: Sequence[str] = ()

    def __post_init__(self) -> None:
        check_limit(
            self.requests_per_minute,
            self.rate_window,
            names=("requests_per_minute", "rate_window"),
        )
        if (
            isinstance(self.max_body_bytes, bool)
            or not isinstance(self.max_body_bytes, int)
            or self.max_body_bytes < 1
        ):
            raise ValueError(
                "max_body_bytes must be a whole number of bytes, at least 1"
            )
        if isinstance(self.allowed_hosts, str):
            raise ValueError("allowed_hosts must be a list of names, not one string")
        self.allowed_hosts = normalize_allowed_hosts(self.allowed_hosts)
        if self.authors is not None:
            self.authors = tuple(a.strip().lower() for a in self.authors)

    def author_allowed(self, sender: str) -> bool:
        """Whether `/batch/emails` may send from `sender`."""
        return self.authors is None or sender.strip().lower() in self.authors
