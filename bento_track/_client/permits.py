"""A request of the app's own, spent from a client's request budget: wait
for a permit from the store, and count the request as ended however the
block exits (a 429 pausing every sender of the store)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from .._core.clock import Clock
from .._transport.http import RETRY_AFTER_MIN, clamp_retry_after
from ..errors import RateLimitedError
from ..stores import Store

__all__ = ["permit_from"]


@contextlib.contextmanager
def permit_from(store: Store, clock: Clock, limit: float) -> Iterator[None]:
    """Run the block with one request permit of `store`, waited for at most
    `limit` seconds (real time: the caller's deadline), on `clock`'s waits.
    See `Client.request_permit`.

    Raises:
        TimeoutError: no request was free within `limit` (the block did not run).
    """
    deadline = time.monotonic() + limit  # the caller's deadline: real time
    never = threading.Event()
    while True:
        permit, wait = store.acquire()
        if permit is not None:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"bento_track: no request free in the budget within {limit:g} s "
                f"(the next in {wait:.2f} s)"
            )
        clock.wait(never, min(wait, left))
    try:
        yield
    except RateLimitedError as exc:
        if exc.status == 429:
            store.pause(clamp_retry_after(exc.retry_after) or RETRY_AFTER_MIN)
        raise
    finally:
        store.complete(permit)
