"""Capture: what turns an app action into an `Event` on the calling thread.

- `context`: the request (or task) context in `contextvars`, and the identity.
- `request_info`: `RequestInfo`, what `identify=` and `capture=` callables get.
- `rules`: the rule engine both middlewares share.
- `build`: building events from user values, and reporting what cannot be built.

Nothing here does I/O. This package's `__init__` imports nothing, so the
delivery side may use `context` without loading the rest of capture.
"""
