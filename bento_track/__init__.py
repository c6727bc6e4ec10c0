__version__ = "0.1.0"

from ._default import flush, get_client, init, shutdown, stats, track
from ._signals import signals
from .asgi import BentoMiddleware
from .client import Client, DeliveryStats, identify
from .decorators import track_event
from .logging import BentoHandler
from .wsgi import BentoWSGIMiddleware

__all__ = [
    "BentoHandler",
    "BentoMiddleware",
    "BentoWSGIMiddleware",
    "Client",
    "DeliveryStats",
    "__version__",
    "flush",
    "get_client",
    "identify",
    "init",
    "shutdown",
    "signals",
    "stats",
    "track",
    "track_event",
]
