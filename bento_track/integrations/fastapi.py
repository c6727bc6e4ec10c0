"""FastAPI: the same helpers as `bento_track.integrations.starlette` (FastAPI
is Starlette underneath); see there."""

from __future__ import annotations

from .starlette import flushing, identity, lifespan, require_identity

__all__ = ["flushing", "identity", "lifespan", "require_identity"]
