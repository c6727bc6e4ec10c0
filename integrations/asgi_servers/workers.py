"""A gunicorn worker class that turns uvicorn's lifespan off (as deployments
do for apps without one): `-k workers.NoLifespanWorker`."""

from uvicorn.workers import UvicornWorker


class NoLifespanWorker(UvicornWorker):
    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "lifespan": "off"}
