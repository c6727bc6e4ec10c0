"""The app's last word on each event: scrubbing, then its `before_send`
hook, run on the capturing thread after validation and before
`event_captured` and the queue, for every way an event is captured.

- The hook returns None: the event is dropped as `filtered` (counted,
  signalled, said at DEBUG only: a deliberate filter is not a problem).
- It returns the event it was given, or one `Event.replace` made: sent as is.
  Any other `Event` is validated again (invalid: strict raises, lenient
  drops it as `invalid`).
- It raises, or returns something else: the event is dropped as
  `hook_error` and never sent unchanged (the hook may exist to remove
  something); said with the traceback at most once a minute. In strict mode
  the exception propagates from `track()` or `capture()`; capture paths
  (middlewares, the decorator, the log handler) never raise into a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .._internal import library_section, logger, thread_state
from ..errors import ConfigurationError, InvalidEventError
from ..events import Event, OversizeEventError, is_validated
from .scrub import FLAT_TYPES, Scrubber

__all__ = [
    "HOOK_LOG_INTERVAL",
    "BeforeSend",
    "Drop",
    "EventFilter",
    "Refuse",
    "check_before_send",
    "check_scrub",
]

#: `(event) -> Event | None`: the app's hook
BeforeSend = Callable[[Event], "Event | None"]
#: the client's count-and-signal of a drop: (event, reason, error, message)
Drop = Callable[[Event, str, "BaseException | None", str], None]
#: the client's refusal of an invalid event: (error, where)
Refuse = Callable[[InvalidEventError, "str | None"], None]

#: seconds between two hook tracebacks in the log
HOOK_LOG_INTERVAL = 60.0


def check_before_send(value: object) -> BeforeSend | None:
    """`before_send=` as given, if it is None or a callable."""
    if value is not None and not callable(value):
        raise ConfigurationError(
            "before_send must be a callable (event) -> Event | None, not "
            f"{type(value).__name__}",
            setting="before_send",
        )
    return value


def check_scrub(value: object) -> Scrubber | None:
    """`scrub=` as the scrubber to use: True (the default denylist), False
    (none) or a `Scrubber`."""
    if value is True:
        return Scrubber()
    if value is False:
        return None
    if isinstance(value, Scrubber):
        return value
    raise ConfigurationError(
        f"scrub must be True, False or a bento_track.Scrubber, not {value!r}",
        setting="scrub",
    )


class EventFilter:
    """One client's scrubbing and `before_send`.

    Args:
        scrubber: the scrubber, or None when scrubbing is off.
        before_send: the hook, or None.
        max_event_bytes: the client's size limit, for events the hook changed.
        drop: counts and signals a drop (`filtered`, `hook_error`).
        refuse: the client's `refuse_invalid`.
        clock: monotonic seconds, for the traceback's once a minute.
    """

    def __init__(
        self,
        *,
        scrubber: Scrubber | None,
        before_send: BeforeSend | None,
        max_event_bytes: int,
        drop: Drop,
        refuse: Refuse,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scrubber = scrubber
        #: the scrubber's names known clean, for validation to look up
        #: (`events.build_event`); None without a scrubber
        self.known_keys = None if scrubber is None else scrubber.known_clean
        self.before_send = before_send
        self.max_event_bytes = max_event_bytes
        self._drop = drop
        self._refuse = refuse
        self._clock = clock
        self._lock = threading.Lock()
        #: values replaced by the scrubber (`stats().scrubbed`)
        self.scrubbed = 0
        self._logged_at: float | None = None
        self._held = 0

    def after_fork(self) -> None:
        """In a forked child: the child's own count and log limit, and a lock
        of its own (an inherited one may be held by a thread that does not
        exist here). What the parent scrubbed stays the parent's figure."""
        self._lock = threading.Lock()
        self.scrubbed = 0
        self._logged_at = None
        self._held = 0

    def apply(
        self,
        event: Event,
        where: str | None,
        strict: bool,
        keys_known: bool = False,
    ) -> Event | None:
        """The event to send in place of `event`, or None when it was dropped.
        `where` names a capture path (which never raises); None is a direct
        `track()`/`capture()` call, from which strict mode raises.
        `keys_known`: validation found every key among `known_keys`, so
        there is nothing to scrub."""
        scrubber = self.scrubber
        if scrubber is not None and not keys_known:
            # Inlined for the common event: flat fields and details whose
            # names are all known clean (C-level loops only).
            fields = event.fields
            details = event.details
            known = scrubber.known_clean
            if (fields and not known.issuperset(fields)) or (
                details
                and not (
                    known.issuperset(details)
                    and FLAT_TYPES.issuperset(map(type, details.values()))
                )
            ):
                event, replaced = scrubber.scrub(event)
                if replaced:
                    with self._lock:
                        self.scrubbed += replaced
        hook = self.before_send
        if hook is None:
            return event
        # Marked as library code: a tagged log record the hook writes is not
        # captured again (and cannot loop back into the hook).
        local = thread_state
        previous = getattr(local, "active", False)
        local.active = True
        try:
            result = hook(event)
        except Exception as exc:
            self._failed(event, exc, where, strict, traceback=True)
            return None
        finally:
            local.active = previous
        if result is None:
            self._filtered(event, where)
            return None
        if result is event or is_validated(result):
            return result
        if isinstance(result, Event):
            return self._validated(result, where)
        error = TypeError(
            f"before_send returned {_described(result)}; it must return the "
            "event (changed or not) or None to drop it"
        )
        self._failed(event, error, where, strict, traceback=False)
        return None

    def _validated(self, event: Event, where: str | None) -> Event | None:
        """An event the hook made: validated like `track()`'s."""
        try:
            checked = Event.build(
                event.type,
                email=event.email,
                fields=event.fields,
                details=event.details,
                date=event.date,
                max_bytes=self.max_event_bytes,
            )
        except OversizeEventError as exc:
            self._refuse(
                OversizeEventError(
                    f"before_send returned an oversize event: {exc}",
                    field=exc.field or "details",
                    size=exc.size,
                    limit=exc.limit,
                ),
                where,
            )
            return None
        except InvalidEventError as exc:
            self._refuse(
                InvalidEventError(
                    f"before_send returned an invalid event: {exc}", field=exc.field
                ),
                where,
            )
            return None
        checked.captured_at = event.captured_at
        return checked

    def _filtered(self, event: Event, where: str | None) -> None:
        message = f"{event.type!r} dropped by before_send"
        if logger.isEnabledFor(logging.DEBUG):
            with library_section():
                logger.debug(
                    "bento_track: %s: %s (filtered)", where or "track()", message
                )
        self._drop(event, "filtered", None, message)

    def _failed(
        self,
        event: Event,
        exc: Exception,
        where: str | None,
        strict: bool,
        *,
        traceback: bool,
    ) -> None:
        if strict and where is None:
            raise exc
        if traceback:
            message = f"before_send raised {type(exc).__name__}: {_text(exc)}"
        else:
            message = _text(exc)
        self._say(event, message, exc if traceback else None, where)
        self._drop(event, "hook_error", exc, message)

    def _say(
        self,
        event: Event,
        message: str,
        exc: Exception | None,
        where: str | None,
    ) -> None:
        """Log a hook failure, at most once per `HOOK_LOG_INTERVAL`; the next
        line says how many were held back."""
        now = self._clock()
        with self._lock:
            if (
                self._logged_at is not None
                and now - self._logged_at < HOOK_LOG_INTERVAL
            ):
                self._held += 1
                return
            held, self._held, self._logged_at = self._held, 0, now
        since = f"; {held} more since the last such message" if held else ""
        with library_section():
            logger.error(
                "bento_track: %s: %s; the event %r was dropped (hook_error%s)",
                where or "track()",
                message,
                event.type,
                since,
                exc_info=exc,
            )


def _text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        return "<message unreadable>"
    return text if len(text) <= 300 else text[:300] + "..."


def _described(value: object) -> str:
    """What a hook returned, for the message: its type and a short repr."""
    try:
        shown = repr(value)
    except Exception:
        shown = "?"
    if len(shown) > 80:
        shown = shown[:80] + "..."
    return f"{type(value).__name__} {shown}"
