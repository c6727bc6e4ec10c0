"""The tracking client: `track` validates and captures an event on the calling
thread; a per-process worker delivers it to Bento in batches, within the
account's request budget.

Capture costs a few microseconds and never does I/O: `Event.build` validates,
the event passes through the `event_captured` signal, and the client's
collector appends it to an in-memory inbox (an O(1) `deque.append` plus a
bound check). When the client's collector is the only receiver of
`event_captured` for this client, `track` calls it directly instead of going
through blinker's `send` (same effect, a fraction of the cost); connect a
receiver of your own and every event goes through `send` again.

The client's parts, one job a module, are in `bento_track._client`: the
intake (`EventIntake`, this class's base), its setup, the process hooks, the
request permit, the stats snapshot and the exit message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from . import signals
from ._capture.context import bind_email, current_email, current_request
from ._capture.filtering import (
    BeforeSend,
    EventFilter,
    check_before_send,
    check_scrub,
)
from ._capture.scrub import Scrubber
from ._client.exit_message import say_undelivered
from ._client.intake import EventIntake
from ._client.permits import permit_from
from ._client.process import clients, live_clients
from ._client.setup import OVERFLOW_POLICIES, connection, store_for, worker_settings
from ._client.stats import ClientStats, client_stats
from ._core.clock import Clock, SystemClock
from ._core.records import BODY_OVERHEAD
from ._delivery.worker import DeliveryStats
from ._internal import internal_error, library_section
from .config import check_number, env_flag
from .errors import InvalidEventError
from .events import Event, OversizeEventError, build_event, validate_email
from .options import OPTIONS
from .stores import DEFAULT_MAX_STORE_BYTES, QueueBackend, Store
from .subscribers import (
    SubscriberCommand,
    SubscriberUpsert,
    build_command,
    build_upsert,
)

__all__ = [
    "OVERFLOW_POLICIES",
    "Client",
    "ClientStats",
    "DeliveryStats",
    "identify",
    "live_clients",
]

_event_captured = signals.event_captured
_getpid = os.getpid

#: how long `flush()` waits when given no timeout
DEFAULT_FLUSH_TIMEOUT = 30.0


class Client(EventIntake):
    """Captures events and delivers them to Bento in the background.

    Connection settings fall back to the `BENTO_*` environment variables.

    Args:
        site_uuid: your Bento site's UUID (Settings -> API Keys), sent as the
            `site_uuid` query parameter. Required: None reads the variable.
        publishable_key: the Basic auth user. Required: None reads the
            variable.
        secret_key: the Basic auth password; never logged nor shown in a
            repr. Required: None reads the variable.
        base_url: Bento's API root. None: the variable, else
            `https://app.bentonow.com/api/v1`. Plain `http://` only to
            loopback hosts.
        allow_insecure_http: allow `http://` to other hosts too (the secret
            key then travels in clear text). None: the variable, else False.
        connect_timeout: seconds to connect, per request, 0.001..600.
        read_timeout: seconds to wait for an answer, per request, 0.001..600.
        max_batch_size: events per request, 1..1000 (Bento's maximum).
        max_batch_bytes: request body bytes, 1 KiB..1 MiB.
        flush_interval: seconds the oldest queued event waits before a partial
            batch is sent (when the request budget allows), 0.01..3600.
        requests_per_minute: requests allowed per `rate_window` (the account's
            budget, shared by retries), 1..100000.
        rate_window: the budget's window in seconds (default 60; for tests and
            unusual accounts).
        max_queue_size: events held in memory, 1..10,000,000. Checked when an
            event is captured.
        max_queue_bytes: encoded bytes held in memory. Measured by the worker
            as it encodes, so it is enforced when the worker next runs.
        overflow: `drop_newest` (default), `drop_oldest` or `block` (wait up to
            `block_timeout` seconds for room, then drop). Every drop is counted
            in `stats().dropped["queue_full"]` and sent on `event_dropped`.
        block_timeout: seconds `block` waits, 0..60.
        max_retry_time: seconds of consecutive failures (5xx, 408, network)
            after which a warning is logged. The in-memory queue KEEPS the
            events and goes on retrying every ~30 s; only the queue bound ever
            drops them (reason `queue_full`), so nothing is lost to an outage
            shorter than the queue can absorb.
        retry_base_delay: first backoff step in seconds (doubles, jittered,
            capped at 30 s).
        shutdown_timeout: seconds `shutdown()` and the exit hook may take.
        sync_mode: deliver in the caller's thread: each `track()` sends at once
            (with the same budget and retry policy, for at most `sync_timeout`
            seconds); what is not delivered stays queued for the next call or
            `flush()`. Errors are logged and counted, never raised. For
            scripts, serverless functions and tests.
        sync_timeout: longest a sync-mode `track()`/`flush()` may block.
        disabled: validate and signal events but send nothing; they are
            counted as dropped with reason `disabled`. Needs no credentials.
        strict: raise `InvalidEventError` from `track()` for an invalid event
            (for tests and development). The default (False, or the
            `BENTO_STRICT` variable) is lenient: an invalid event is dropped,
            counted in `stats().dropped["invalid"]`, sent on `event_dropped`
            with the reason and message, and logged as a warning (each
            distinct message at most once a minute); the app goes on.
        before_send: `(event) -> Event | None`, the app's last word on each
            event, run on the capturing thread after validation and
            scrubbing, before `event_captured` and the queue, for every way
            an event is captured. Return the event (or `event.replace(...)`)
            to send it, None to drop it (`stats().dropped["filtered"]`). A
            hook that raises or returns anything else drops the event
            (`hook_error`, logged with the traceback at most once a minute);
            in strict mode `track()`/`capture()` raise it instead.
        scrub: True (default): values of keys on the denylist (`password`,
            `token`, `authorization`, `card_number`, ...; see `Scrubber`) in
            `fields` and, at any depth, `details` become `"[Filtered]"`
            before `before_send` runs, counted in `stats().scrubbed`. False:
            off. A `Scrubber(extra_keys=..., allow_keys=...)`: tuned.
        queue: a `QueueBackend` for the memory store (default: a new
            `MemoryQueue`).
        store: where events wait and whose request budget is spent (or the
            `BENTO_STORE` variable). None or `"memory"`: this process's
            memory (the default). `"sqlite:////var/lib/app/bento.db"`
            (SQLAlchemy's form: four slashes for an absolute path, three for
            a relative one): a durable SQLite file (WAL) that every process
            on the host opening it shares: one queue (leased batches, taken
            over from processes that die), one request budget and 429 pause
            for all of them; events survive crashes and restarts and the
            next process delivers what a dead one left. A file that cannot
            be opened or written raises `ConfigurationError` here. See the
            documentation's "Many processes, restarts and crashes" (docs/processes.md).
        max_store_bytes: the SQLite store's bound on stored event bytes
            (default 256 MiB; the file is about that size), 1 MiB..16 TiB;
            the `overflow` policy applies when full (`block` drops the
            newest, as the memory queue's byte bound does). With a store,
            `max_queue_size` bounds only what waits in memory for the next
            grouped write (every ~50 ms).
        clock: the `Clock` the worker uses (tests inject a fake one).
        transport: an `httpx.BaseTransport` the delivery thread sends through
            (as `BentoAPI(transport=...)`): a proxy-aware or instrumented
            transport, or `httpx.MockTransport` in tests that need no
            server. Default: httpx's own, with keep-alive. A forked child
            keeps using the object it inherited.
        environ: where the `BENTO_*` variables are read (default:
            `os.environ`).

    Raises:
        ConfigurationError: a setting is missing or out of range (the message
            names it and the allowed range).
    """

    def __init__(
        self,
        *,
        site_uuid: str | None = None,
        publishable_key: str | None = None,
        secret_key: str | None = None,
        base_url: str | None = None,
        allow_insecure_http: bool | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        max_batch_size: int = 1000,
        max_batch_bytes: int = 1_048_576,
        flush_interval: float = 5.0,
        requests_per_minute: int = 100,
        rate_window: float = 60.0,
        max_queue_size: int = 10_000,
        max_queue_bytes: int = 10 * 1_048_576,
        overflow: str = "drop_newest",
        block_timeout: float = 0.1,
        max_retry_time: float = 300.0,
        retry_base_delay: float = 0.5,
        shutdown_timeout: float = 2.0,
        sync_mode: bool = False,
        sync_timeout: float = 10.0,
        disabled: bool = False,
        strict: bool | None = None,
        before_send: BeforeSend | None = None,
        scrub: bool | Scrubber = True,
        queue: QueueBackend | None = None,
        store: str | Store | None = None,
        max_store_bytes: int = DEFAULT_MAX_STORE_BYTES,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        _disabled_reason: str = "disabled",
    ) -> None:
        hook = check_before_send(before_send)
        scrubber = check_scrub(scrub)
        self._settings = worker_settings(
            overflow,
            sync_mode,
            max_batch_size=max_batch_size,
            max_batch_bytes=max_batch_bytes,
            flush_interval=flush_interval,
            requests_per_minute=requests_per_minute,
            rate_window=rate_window,
            max_queue_size=max_queue_size,
            max_queue_bytes=max_queue_bytes,
            block_timeout=block_timeout,
            max_retry_time=max_retry_time,
            retry_base_delay=retry_base_delay,
            sync_timeout=sync_timeout,
        )
        #: the most bytes one encoded event may take: what a request carries
        #: besides its envelope (validation stops past it)
        self.max_event_bytes: int = self._settings.max_batch_bytes - BODY_OVERHEAD - 1
        self.shutdown_timeout: float = OPTIONS["shutdown_timeout"].check(
            shutdown_timeout
        )
        self.disabled = bool(disabled)
        self.sync_mode = bool(sync_mode)
        self.strict = env_flag(
            "strict", strict, os.environ if environ is None else environ
        )
        self.config, self._settings = connection(
            self._settings,
            disabled,
            site_uuid=site_uuid,
            publishable_key=publishable_key,
            secret_key=secret_key,
            base_url=base_url,
            allow_insecure_http=allow_insecure_http,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            environ=environ,
        )
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._transport = transport
        self._filter = EventFilter(
            scrubber=scrubber,
            before_send=hook,
            max_event_bytes=self.max_event_bytes,
            drop=self._drop_filtered,
            refuse=self.refuse_invalid,
            clock=self._clock.monotonic,
        )
        #: the filter, when it has anything to do (None: no cost per event)
        self._filtering = self._filter if hook or scrubber else None
        self._store = store_for(
            store,
            queue,
            OPTIONS["max_store_bytes"].check(max_store_bytes),
            os.environ if environ is None else environ,
            self.disabled,
        )
        self._max_queue = self._settings.max_queue_size
        self._overflow = overflow
        #: why events are refused (None: accepted)
        self._refuse: str | None = _disabled_reason if disabled else None
        self._lifecycle = threading.Lock()
        self._undelivered_at_shutdown: int | None = None
        self._pid = _getpid()
        self._worker = self._new_worker()
        self._direct = False
        _event_captured.connect(self._collect, sender=self)
        clients.add(self)
        self._update_direct()
        if self._store.durable and not self.sync_mode:
            # Deliver what earlier (or dead) processes left, without waiting
            # for this one's first event.
            self._worker.poke()

    def __repr__(self) -> str:
        where = self.config.base_url if self.config else None
        site = self.config.site_uuid if self.config else None
        return (
            f"Client(site_uuid={site!r}, base_url={where!r}, "
            f"sync_mode={self.sync_mode}, disabled={self.disabled})"
        )

    # -- capture -----------------------------------------------------------------

    def track(
        self,
        type: str,
        *,
        email: str | None = None,
        fields: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        date: dt.datetime | dt.date | str | None = None,
    ) -> Event | None:
        """Validate and capture one event; `email` defaults to the identity bound
        by `identify()` (or the middleware) in the current request or context.

        Returns the captured `Event` (scrubbed, and as `before_send` left
        it), or None when it was dropped: invalid (lenient mode, the
        default), too large for a request (`oversize`), or by the hook.

        Raises:
            InvalidEventError: in strict mode only, for an invalid event; the
                message names the field (`OversizeEventError` for one known
                to be larger than a request).
            Exception: in strict mode only, what `before_send` raised (a
                `TypeError` when it returned something else than an event
                or None).
        """
        try:
            if email is None:
                email = current_email()
                if email is None:
                    raise InvalidEventError(
                        "email is required: pass email=... or call "
                        "bento_track.identify(email) earlier in this request or "
                        "context",
                        field="email",
                    )
            request = current_request()
            if (
                request is not None
                and request.attach_facts
                and (details is None or isinstance(details, Mapping))
            ):
                # The middleware asked for request facts on every event in it.
                try:
                    details = {**request.facts(), **(details or {})}
                except Exception:  # an unreadable mapping: `build` names it
                    pass
            filtering = self._filtering
            event, keys_known = build_event(
                Event,
                type,
                email,
                fields,
                details,
                date,
                self.max_event_bytes,
                None if filtering is None else filtering.known_keys,
            )
        except InvalidEventError as exc:
            self.refuse_invalid(exc)
            return None
        except Exception:
            if self.strict:
                raise
            internal_error("track()")
            return None
        return self._capture(event, None, keys_known)

    def refuse_invalid(
        self,
        error: InvalidEventError,
        where: str | None = None,
        what: str = "track()",
    ) -> None:
        """An event (or subscriber update) that could not be built: dropped
        (counted as `invalid`, or `oversize` for an `OversizeEventError`;
        signalled, logged). From a call of the app (`what`, no `where`) in
        strict mode, raised instead; capture paths pass `where` and never
        raise."""
        if self.strict and where is None:
            raise error
        reason = "oversize" if isinstance(error, OversizeEventError) else "invalid"
        self._worker.drop(
            [], reason, queued=False, count=1, error=error, where=where or what
        )

    def upsert_subscriber(
        self,
        email: str,
        fields: Mapping[str, Any] | None = None,
        tags: Iterable[str] | str | None = None,
        remove_tags: Iterable[str] | str | None = None,
    ) -> SubscriberUpsert | None:
        """Create or update a subscriber through the delivery pipeline (Bento's
        `/batch/subscribers`: fields merged, tags added and removed, no
        automation started), in batches of up to 1,000 within the account's
        request budget, with the events' retries, stores and `flush()`.
        Upserts of one email waiting together become one row: later fields
        win, tags are applied in order.

        Validated like `track()`: strict mode raises `InvalidEventError`
        naming the field; lenient mode drops it (counted `invalid`). Returns
        the queued upsert, or None when it was dropped.
        """
        try:
            update = build_upsert(email, fields, tags, remove_tags)
        except InvalidEventError as exc:
            self.refuse_invalid(exc, where=None, what="upsert_subscriber()")
            return None
        self._enqueue(update)
        return update

    def change_subscriber_email(
        self, old_email: str, new_email: str
    ) -> SubscriberCommand | None:
        """Queue Bento's `change_email` command: the subscriber `old_email`
        becomes `new_email`. It waits in the same queue as upserts, in order,
        so upserts of the new address made after it are sent after it.
        Validated like `upsert_subscriber()`."""
        return self._command("change_email", old_email, new_email)

    def unsubscribe_subscriber(self, email: str) -> SubscriberCommand | None:
        """Queue Bento's `unsubscribe` command (no automation starts), in
        order with the upserts and email changes queued before it."""
        return self._command("unsubscribe", email)

    def _command(
        self, command: str, email: str, query: str | None = None
    ) -> SubscriberCommand | None:
        try:
            update = build_command(command, email, query)
        except InvalidEventError as exc:
            self.refuse_invalid(exc, where=None, what=f"{command}()")
            return None
        self._enqueue(update)
        return update

    def capture(self, event: Event, *, where: str | None = None) -> Event | None:
        """Send an already built `Event` (e.g. `events.purchase(...)`) through
        scrubbing, `before_send` and the `event_captured` signal.

        Returns the event sent (`before_send` may have changed it), or None
        when it was dropped. `where` names a capture path (a middleware, the
        decorator, the log handler), which never raises; without it, strict
        mode raises what `before_send` raised, or `InvalidEventError` for an
        invalid event it returned.
        """
        return self._capture(event, where, False)

    # -- lifecycle ---------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event captured before this call is delivered (or
        definitively rejected or dropped); at most `timeout` seconds (default
        30). Returns False on timeout, or when sending stopped (bad credentials,
        shutdown). Sends partial batches now, still within the request budget."""
        limit = (
            DEFAULT_FLUSH_TIMEOUT
            if timeout is None
            else check_number("timeout", timeout, 0, 86400, unit="seconds")
        )
        if self.disabled:
            return True
        return self._worker.flush(limit)

    def shutdown(self, timeout: float | None = None) -> int:
        """Flush within `timeout` seconds (default `shutdown_timeout`), stop the
        worker, and refuse later events (counted as dropped, reason
        `shutdown`). Idempotent. Returns the number of events left undelivered,
        which is also logged when not zero."""
        limit = (
            self.shutdown_timeout
            if timeout is None
            else check_number("timeout", timeout, 0, 86400, unit="seconds")
        )
        with self._lifecycle:
            if self._undelivered_at_shutdown is not None:
                return self._undelivered_at_shutdown
            self._undelivered_at_shutdown = 0
            if self._refuse is None:
                self._refuse = "shutdown"
        deadline = time.monotonic() + limit
        worker = self._worker
        worker.deadline = deadline
        if not self.disabled:
            worker.flush(limit)
        worker.stop(deadline - time.monotonic())
        left = worker.enqueued() - worker.settled
        self._undelivered_at_shutdown = left
        if left > 0:
            with library_section():
                self._say_left(left, min(left, worker.left_in_store or 0))
        return left

    def _say_left(self, left: int, kept: int) -> None:
        """The exit message (see `say_undelivered`)."""
        worker = self._worker
        why = worker.last_error or "time ran out"
        say_undelivered(left, kept, why, self._store.location, worker.left_unanswered)

    def close(self) -> None:
        """`shutdown()` with the default timeout, for `contextlib.closing` and
        frameworks that call `close()`."""
        self.shutdown()

    def stats(self) -> ClientStats:
        """A snapshot of delivery counters (see `DeliveryStats`), and the
        values scrubbed (`scrubbed`)."""
        return client_stats(self._worker.snapshot(), self._filter.scrubbed)

    @contextlib.contextmanager
    def request_permit(self, timeout: float = 30.0) -> Iterator[None]:
        """Spend one request of this client's budget on a request of your own
        (the Django email backend's `/batch/emails`): wait up to `timeout`
        seconds until the budget and any 429 pause allow a request, run the
        block, and count the request as ended when the block exits, however
        it exits. Thread-safe. The budget is the store's, shared with the
        delivery thread: this process's for the memory store, every
        process's of the account for a SQLite or Redis store. Make one HTTP
        attempt per block; a retry takes a new permit.

            with client.request_permit(timeout=10):
                api.send_emails(batch)   # a BentoAPI(max_retries=0)

        A `RateLimitedError` (Bento's 429) raised by the block pauses every
        sender of the store for its `Retry-After` (clamped to 1..120 s; 1 s
        without one), as the delivery thread's 429s do.

        Raises:
            TimeoutError: no request was free within `timeout` (the block
                did not run).
            ConfigurationError: `timeout` is not 0..3600 seconds.
        """
        limit = check_number("timeout", timeout, 0, 3600, unit="seconds")
        if self._pid != _getpid():
            self._after_fork()
        with permit_from(self._store, self._clock, limit):
            yield


def identify(email: str) -> None:
    """Bind `email` to the current request (or context): later events tracked in
    it carry this email unless they name another."""
    bind_email(validate_email(email))
