"""Celery: `install(celery_app)`, one call where the app is made.

```python
from celery import Celery
from bento_track.integrations.celery import install

app = Celery("shop", broker="redis://localhost:6379/0")
install(app)

@app.task
def send_receipt(order_id):
    bento_track.track("receipt.sent", details={"order": order_id})  # no email needed
```

- The identity of the request (or context) that enqueues a task travels in
  the task message's headers (`bento_track_email`); inside the task,
  `track()` without `email=` uses it, as in the request.
- Every task runs in a context of its own: a task enqueued with no identity
  runs with none, and nothing one task binds (`bento_track.identify()`)
  reaches the next task of the same worker process. Eager tasks
  (`task_always_eager`, `.apply()`) run in the caller's context instead.
- Prefork children get a fresh delivery worker (the client renews itself
  after a fork), and each worker process flushes every client when it shuts
  down (`worker_process_shutdown` in a child, which exits without running
  `atexit`; `worker_shutdown` in the main process), each within its
  `shutdown_timeout`.
"""

from __future__ import annotations

import threading
from typing import Any

from .._capture.context import RequestContext, current_email, request_var
from .._internal import internal_error
from ..errors import InvalidEventError
from ..events import validate_email
from .extras import missing_framework
from .sigterm import flush_all

__all__ = ["HEADER", "install"]

#: the message header carrying the enqueuing context's identity
HEADER = "bento_track_email"
_TOKEN = "_bento_track_token"
_UID = "bento_track.integrations.celery"
_lock = threading.Lock()
_installed = False


def install(app: Any) -> None:
    """Wire `app` (a `celery.Celery`); calling it again, for this app or
    another in the process, does nothing more (Celery's signals are
    process-wide)."""
    global _installed
    with _lock:
        if _installed:
            return
        try:
            from celery import signals
        except ImportError as exc:
            raise missing_framework(exc, "celery") from None

        signals.before_task_publish.connect(
            _on_publish, weak=False, dispatch_uid=f"{_UID}.publish"
        )
        signals.task_prerun.connect(
            _on_prerun, weak=False, dispatch_uid=f"{_UID}.prerun"
        )
        signals.task_postrun.connect(
            _on_postrun, weak=False, dispatch_uid=f"{_UID}.postrun"
        )
        signals.worker_process_shutdown.connect(
            _on_shutdown, weak=False, dispatch_uid=f"{_UID}.child_shutdown"
        )
        signals.worker_shutdown.connect(
            _on_shutdown, weak=False, dispatch_uid=f"{_UID}.shutdown"
        )
        _installed = True


def _on_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Put the enqueuing context's identity in the message headers."""
    try:
        if headers is None:
            return
        email = current_email()
        if email is not None:
            headers[HEADER] = email
        else:
            headers.pop(HEADER, None)
    except Exception:
        internal_error("Celery before_task_publish")


def _on_prerun(task: Any = None, **_: Any) -> None:
    """Enter the task's own context, identified by its message (or not)."""
    try:
        request = getattr(task, "request", None)
        if request is None or getattr(request, "is_eager", False):
            return
        email = getattr(request, HEADER, None)
        if email is not None:
            try:
                email = validate_email(email, HEADER)
            except InvalidEventError:
                email = None
        ctx = RequestContext(email, "TASK", str(getattr(task, "name", "")))
        setattr(request, _TOKEN, request_var.set(ctx))
    except Exception:
        internal_error("Celery task_prerun")


def _on_postrun(task: Any = None, **_: Any) -> None:
    """Leave the task's context (whatever the task did to it)."""
    try:
        request = getattr(task, "request", None)
        token = getattr(request, _TOKEN, None) if request is not None else None
        if token is None:
            return
        setattr(request, _TOKEN, None)
        try:
            request_var.reset(token)
        except ValueError:  # set in another context: leave no identity behind
            request_var.set(None)
    except Exception:
        internal_error("Celery task_postrun")


def _on_shutdown(**_: Any) -> None:
    flush_all()
