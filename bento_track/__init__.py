"""bento_track: turn what a Python web app does into Bento events, delivered
reliably within Bento's limits. The documentation (`docs/`, served by
`./scripts/docs`) has a page per task and this reference."""

from . import signals
from ._capture.request_info import RequestInfo
from ._capture.request_info import current_request_info as current_request
from ._capture.scrub import Scrubber
from ._default import (
    change_subscriber_email,
    flush,
    get_client,
    init,
    shutdown,
    stats,
    track,
    unsubscribe_subscriber,
    upsert_subscriber,
)
from ._version import __version__
from .asgi import BentoMiddleware
from .client import Client, DeliveryStats, identify
from .decorators import track_event
from .errors import (
    APIError,
    BentoError,
    ConfigurationError,
    InvalidEventError,
)
from .events import Event
from .logging import BentoHandler
from .stores import Store, StoreStats
from .sync import sync_subscribers
from .wsgi import BentoWSGIMiddleware

__all__ = [
    "APIError",
    "BentoError",
    "BentoHandler",
    "BentoMiddleware",
    "BentoWSGIMiddleware",
    "Client",
    "ConfigurationError",
    "DeliveryStats",
    "Event",
    "InvalidEventError",
    "RequestInfo",
    "Scrubber",
    "Store",
    "StoreStats",
    "__version__",
    "change_subscriber_email",
    "current_request",
    "flush",
    "get_client",
    "identify",
    "init",
    "shutdown",
    "signals",
    "stats",
    "sync_subscribers",
    "track",
    "track_event",
    "unsubscribe_subscriber",
    "upsert_subscriber",
]
