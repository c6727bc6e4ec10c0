"""Deprecated name of `bento_track.stores` (renamed after 0.1.0: the package holds
stores, not queues). Importing it warns once; its names are the stores'.
Submodules moved too: `bento_track.queues.sqlite` is now
`bento_track.stores.sqlite`, and so on."""

from __future__ import annotations

import warnings

from . import stores
from .stores import *  # noqa: F403

__all__ = list(stores.__all__)

warnings.warn(
    "bento_track.queues is renamed bento_track.stores; import from there",
    DeprecationWarning,
    stacklevel=2,
)
