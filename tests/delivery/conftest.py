"""Helpers for the delivery tests: waiting on conditions with deadlines."""

from __future__ import annotations

from ..helpers import wait_until  # noqa: F401 (re-exported)
