"""Starlette and FastAPI: the core `BentoMiddleware` does the capture (rules
name route templates, `"POST /orders/{order_id}"`); this module adds what a
view and an app's lifespan want.

```python
from fastapi import Depends, FastAPI
from bento_track import BentoMiddleware
from bento_track.integrations.fastapi import identity, lifespan

app = FastAPI(lifespan=lifespan)          # or keep yours: the middleware flushes too
app.add_middleware(
    BentoMiddleware,
    events={"POST /orders/{order_id}": "order.created"},
    identify=lambda info: info.header("x-user-email"),
)

@app.get("/me")
async def me(email: str | None = Depends(identity)):
    return {"email": email}
```

- `identity`: a dependency giving the request's email (asking the
  middleware's `identify=` if nobody has yet), or None; `require_identity`
  answers 401 instead of None.
- `lifespan`: an app lifespan that flushes every client when the app shuts
  down (in a worker thread, each within its `shutdown_timeout`);
  `flushing(your_lifespan)` adds the flush to a lifespan of your own.
  `BentoMiddleware` already flushes its client at lifespan shutdown; these
  are for apps without it, or with several clients. Both chain the SIGTERM
  handler of `bento_track.integrations.sigterm` at startup, so that after
  SIGTERM the shutdown is the clients' exit (a last flush, and a log line
  saying how many events were left), which uvicorn would otherwise skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from starlette.exceptions import HTTPException

from .._capture.context import current_email
from .sigterm import chain_sigterm, lifespan_ended, lifespan_started

__all__ = ["flushing", "identity", "lifespan", "require_identity"]

AppT = TypeVar("AppT")


async def identity() -> str | None:
    """The request's identity (a dependency: `Depends(identity)`)."""
    return current_email()


async def require_identity() -> str:
    """The request's identity; 401 when it has none."""
    email = current_email()
    if email is None:
        raise HTTPException(status_code=401, detail="not identified")
    return email


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """A lifespan that flushes every client when the app shuts down."""
    _starting()
    yield
    await lifespan_ended(every_client=True)


def flushing(
    inner: Callable[[AppT], AbstractAsyncContextManager[Any]],
) -> Callable[[AppT], AbstractAsyncContextManager[Any]]:
    """`inner` (your lifespan), then a flush of every client at shutdown."""

    @asynccontextmanager
    async def wrapped(app: AppT) -> AsyncIterator[Any]:
        _starting()
        try:
            async with inner(app) as state:
                yield state
        finally:
            await lifespan_ended(every_client=True)

    return wrapped


def _starting() -> None:
    chain_sigterm()
    lifespan_started()
