"""The client's options, declared once: name, default, environment variable,
allowed range and meaning.

`Client`, `init()` and the delivery worker's settings take their defaults
and checks from here, the docs' configuration page is generated from it, and
`tests/test_options.py` fails if a signature's default disagrees with it.
The signatures stay written out (an IDE shows each keyword and its default);
this table is what they must agree with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import ENV_VARS, check_number

__all__ = ["OPTIONS", "Option", "default"]


@dataclass(frozen=True)
class Option:
    """One option of `Client` and `init()`.

    Attributes:
        name: the keyword argument.
        default: its default.
        doc: what it means, one line.
        low / high: the allowed range of a numeric option (None: not numeric).
        integer: a whole number.
        unit: the unit named in errors ("seconds").
    """

    name: str
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    integer: bool = False
    unit: str = ""

    @property
    def env(self) -> str | None:
        """The `BENTO_*` variable read when the argument is not given."""
        return ENV_VARS.get(self.name)

    def check(self, value: object) -> Any:
        """`value` if it is in range, else `ConfigurationError` naming the
        option (numeric options only)."""
        assert self.low is not None and self.high is not None, self.name
        return check_number(
            self.name, value, self.low, self.high, integer=self.integer, unit=self.unit
        )


_MiB = 1_048_576

OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("site_uuid", None, "the Bento site; required"),
        Option("publishable_key", None, "Basic auth user; required"),
        Option(
            "secret_key", None, "Basic auth password; required, never logged or shown"
        ),
        Option(
            "base_url",
            None,
            "the API's base URL (default https://app.bentonow.com/api/v1; plain "
            "http:// only to loopback hosts)",
        ),
        Option(
            "allow_insecure_http", None, "allow http:// to hosts other than loopback"
        ),
        Option(
            "connect_timeout", 5.0, "seconds to connect", 0.001, 600, unit="seconds"
        ),
        Option(
            "read_timeout",
            10.0,
            "seconds to read an answer",
            0.001,
            600,
            unit="seconds",
        ),
        Option(
            "max_batch_size",
            1000,
            "events per request (Bento's maximum: 1,000)",
            1,
            1000,
            integer=True,
        ),
        Option("max_batch_bytes", _MiB, "request body bytes", 1024, _MiB, integer=True),
        Option(
            "flush_interval",
            5.0,
            "seconds the oldest queued event waits before a partial batch is sent",
            0.01,
            3600,
            unit="seconds",
        ),
        Option(
            "requests_per_minute",
            100,
            "requests allowed per rate_window (the account's budget)",
            1,
            100_000,
            integer=True,
        ),
        Option("rate_window", 60.0, "the budget's window", 0.01, 3600, unit="seconds"),
        Option(
            "max_queue_size",
            10_000,
            "events waiting in memory",
            1,
            10_000_000,
            integer=True,
        ),
        Option(
            "max_queue_bytes",
            10 * _MiB,
            "bytes of events waiting in memory",
            1024,
            2**40,
            integer=True,
        ),
        Option(
            "overflow",
            "drop_newest",
            "when the queue is full: drop_newest, drop_oldest or block",
        ),
        Option(
            "block_timeout",
            0.1,
            "seconds a capture may wait for room under overflow='block'",
            0,
            60,
            unit="seconds",
        ),
        Option(
            "max_retry_time",
            300.0,
            "seconds of retrying before events are kept and retried every ~30 s",
            0,
            86400,
            unit="seconds",
        ),
        Option(
            "retry_base_delay",
            0.5,
            "the first retry's delay (jittered, doubling)",
            0.001,
            60,
            unit="seconds",
        ),
        Option(
            "shutdown_timeout",
            2.0,
            "seconds the exit flush may take",
            0,
            3600,
            unit="seconds",
        ),
        Option("sync_mode", False, "send in the calling thread (scripts, tests)"),
        Option(
            "sync_timeout",
            10.0,
            "seconds a sync-mode call may spend sending",
            0,
            3600,
            unit="seconds",
        ),
        Option("disabled", False, "accept and drop every event (counted as disabled)"),
        Option("strict", None, "raise InvalidEventError instead of dropping"),
        Option("before_send", None, "(event) -> Event | None: change or drop events"),
        Option("scrub", True, "replace denylisted keys' values; False or a Scrubber"),
        Option("queue", None, "the memory store's backend (a QueueBackend)"),
        Option(
            "store",
            None,
            "where events wait: memory, sqlite:////path or redis://host:port/db",
        ),
        Option(
            "max_store_bytes",
            256 * _MiB,
            "a durable store's bound on event bytes",
            _MiB,
            2**44,
            integer=True,
        ),
        Option("clock", None, "the worker's Clock (tests inject a fake one)"),
        Option("transport", None, "an httpx.BaseTransport for delivery"),
        Option("environ", None, "read BENTO_* from this mapping, not os.environ"),
    )
}


def default(name: str) -> Any:
    """The declared default of option `name`."""
    return OPTIONS[name].default
