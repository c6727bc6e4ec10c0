"""`BentoHandler`: a `logging.Handler` that turns *tagged* log records into
Bento events; every other record costs one dict lookup.

```python
logging.getLogger().addHandler(BentoHandler(level=logging.INFO))

log.info("upgraded to %s", plan, extra={"bento": {"type": "plan.upgraded",
                                                  "fields": {"plan": plan}}})
log.warning("payment failed", extra={"bento": "payment.failed"})  # type only
log.error("export crashed", exc_info=True, extra={"bento": True})  # default type
```

A tag is the `bento` attribute of the record (from `extra=`): a dict with
`type`, `email`, `fields`, `details` (all optional), an event type string,
or True. Without a type the event is `event_type` with `{level}` replaced by
the record's level name in lower case (default `log.{level}`, e.g.
`log.warning`). Without an email, the current request's (or context's)
identity is used. Details always carry `level`, `logger` and `message` (the
formatted `record.getMessage()`), `exception` (type and message) when the
record has `exc_info`, the formatted `traceback` only with
`include_traceback=True`, the request facts when the middleware has
`attach_facts=True`, then the tag's own `details`.

Loop-proof: records logged while bento_track itself is running on this thread
(a thread-local guard) and records from the `bento_track`, `httpx`,
`httpcore`, `urllib3` and `blinker` loggers (extend with `ignore_logger`) are
never forwarded; `emit` only builds and enqueues an event, it does no I/O.

From `logging.config.dictConfig`:

```python
"handlers": {"bento": {"class": "bento_track.logging.BentoHandler",
                       "level": "INFO", "event_type": "app.{level}"}}
```
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._capture.build import capture_event, exception_summary, report_invalid
from ._capture.context import current_request
from ._internal import inside_library, internal_error, thread_state
from .errors import InvalidEventError

if TYPE_CHECKING:
    from .client import Client

__all__ = ["IGNORED_LOGGERS", "BentoHandler", "ignore_logger"]

#: loggers whose records are never forwarded (delivery logs through them)
IGNORED_LOGGERS: set[str] = {"bento_track", "blinker", "httpcore", "httpx", "urllib3"}
_TAG_KEYS = frozenset({"type", "email", "fields", "details"})


#: logger name -> ignored? (bounded by the number of loggers that log tagged
#: records; cleared by `ignore_logger`)
_ignored_cache: dict[str, bool] = {}


def ignore_logger(name: str) -> None:
    """Never forward records from logger `name` (and its children)."""
    IGNORED_LOGGERS.add(name)
    _ignored_cache.clear()


def _ignored(name: str) -> bool:
    return name in IGNORED_LOGGERS or any(
        name.startswith(prefix + ".") for prefix in IGNORED_LOGGERS
    )


class BentoHandler(logging.Handler):
    """Forwards records tagged `extra={"bento": ...}` to Bento as events.

    Args:
        level: the handler's threshold (records below it are not looked at).
        client: the `Client` to use (default: the process default client).
        event_type: the type of events whose tag names none; `{level}` is
            replaced by the level name in lower case.
        include_traceback: add the formatted traceback to `details`.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        level: int | str = logging.NOTSET,
        *,
        client: Client | None = None,
        event_type: str = "log.{level}",
        include_traceback: bool = False,
    ) -> None:
        super().__init__(level)
        self.client = client
        self.event_type = event_type
        self.include_traceback = include_traceback
        self._types: dict[str, str] = {}

    def handle(self, record: logging.LogRecord) -> bool:
        """Emit `record` if it is tagged `bento`, its logger is not ignored,
        it is not logged by bento_track itself and the filters pass; return
        whether it was emitted. Unlike `logging.Handler.handle`, takes no
        lock (`emit` only enqueues)."""
        # Untagged records leave at once: no filters, no lock, no formatting.
        tag = record.__dict__.get("bento")
        if tag is None or tag is False:
            return False
        name = record.name
        ignored = _ignored_cache.get(name)
        if ignored is None:
            ignored = _ignored_cache[name] = _ignored(name)
        if ignored or inside_library():
            return False
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Build and enqueue the record's event (no I/O); never raises."""
        # `library_section()` inlined: a context manager costs as much as the
        # rest of a tagged record's path.
        local = thread_state
        previous = getattr(local, "active", False)
        local.active = True
        try:
            self._emit(record)
        except Exception:
            internal_error("BentoHandler")
        finally:
            local.active = previous

    def _emit(self, record: logging.LogRecord) -> None:
        tag = record.__dict__.get("bento")
        event_type: Any = None
        email = fields = user_details = None
        if isinstance(tag, str):
            event_type = tag
        elif isinstance(tag, Mapping):
            unknown = set(tag) - _TAG_KEYS
            if unknown:
                report_invalid(
                    "BentoHandler",
                    InvalidEventError(
                        f"log tag has unknown keys {sorted(map(str, unknown))}; "
                        "use type, email, fields, details"
                    ),
                    self.client,
                )
                return
            event_type = tag.get("type")
            email = tag.get("email")
            fields = tag.get("fields")
            user_details = tag.get("details")
        elif tag is not True:
            report_invalid(
                "BentoHandler",
                InvalidEventError(
                    "the bento tag must be a dict, an event type or True, not "
                    f"{type(tag).__name__}"
                ),
                self.client,
            )
            return
        if event_type is None:
            event_type = self._default_type(record.levelname)
        ctx = current_request()
        trusted: dict[str, Any] = (
            ctx.facts() if ctx is not None and ctx.attach_facts else {}
        )
        trusted["level"] = record.levelname
        trusted["logger"] = record.name
        trusted["message"] = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            trusted["exception"] = exception_summary(record.exc_info[1])
            if self.include_traceback:
                trusted["traceback"] = "".join(
                    traceback.format_exception(*record.exc_info)
                )
        capture_event(
            self.client,
            event_type,
            email=email,
            fields=fields,
            details=user_details,
            trusted=trusted,
            where="BentoHandler",
        )

    def _default_type(self, levelname: str) -> str:
        found = self._types.get(levelname)
        if found is None:
            found = self.event_type.replace("{level}", levelname.lower())
            self._types[levelname] = found
        return found

    def __repr__(self) -> str:
        return f"<BentoHandler ({logging.getLevelName(self.level)})>"
