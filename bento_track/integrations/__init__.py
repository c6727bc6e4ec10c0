"""Thin adapters that wire bento_track into frameworks the way their users
wire things: `django`, `flask`, `starlette` (and `fastapi`), `celery`.

Each one configures the core middleware, rules and identity; none captures
on its own. Import the one you use (each imports its framework).
"""
