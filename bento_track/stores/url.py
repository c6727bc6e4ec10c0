"""Naming a store: `Client(store=...)` and `BENTO_STORE`.

- None, `""` or `"memory"`: this process's memory (the default);
- `"sqlite:////abs/path.db"`, `"sqlite:///relative.db"`: SQLAlchemy's form,
  four slashes for an absolute path, three for one relative to the working
  directory; `?lease_timeout=SECONDS` is the only option;
- `"redis://[:password@]host:port/db"`, `"rediss://..."`: a Redis store that
  every host shares (`bento_track.stores.redis`; options in its docstring,
  the URL's form in `redis_url`);
- a `Store` object: used as it is.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..errors import ConfigurationError
from .base import Store
from .redis_url import is_redis_url, redacted
from .sqlite import DEFAULT_LEASE_TIMEOUT, SQLiteStore, StoreError

__all__ = ["is_memory", "open_store", "sqlite_path"]

_SQLITE = "sqlite:///"


def is_memory(spec: object) -> bool:
    """Whether `spec` names the memory store (None, "" or "memory")."""
    return spec is None or (isinstance(spec, str) and spec.strip() in ("", "memory"))


def sqlite_path(url: str) -> tuple[str, dict[str, str]]:
    """The file and the options of a `sqlite:///` URL.

    Raises:
        ConfigurationError: not such a URL, or no file named.
    """
    if not url.startswith(_SQLITE):
        raise ConfigurationError(
            f"store must be 'memory', 'sqlite:///PATH' (four slashes for an "
            f"absolute path) or 'redis://HOST:PORT/DB', not {redacted(url)!r}",
            setting="store",
        )
    path, _, query = url[len(_SQLITE) :].partition("?")
    if not path or path == ":memory:":
        raise ConfigurationError(
            "store: a SQLite store needs a file every process can open, "
            f"e.g. sqlite:////var/lib/app/bento.db, not {url!r}",
            setting="store",
        )
    return path, dict(parse_qsl(query))


def open_store(spec: str | Store, *, max_bytes: int) -> Store:
    """The store `spec` names, opened and proven writable.

    Raises:
        ConfigurationError: a malformed name, or a file that cannot be
            opened, created, migrated or written (read-only or full disk, a
            missing directory, a newer schema): the message says which.
    """
    if not isinstance(spec, str):
        if isinstance(spec, Store):
            return spec
        raise ConfigurationError(
            f"store must be a URL string or a Store, not {type(spec).__name__}",
            setting="store",
        )
    url = spec.strip()
    if is_redis_url(url):
        # Any case, any malformation: the Redis parser refuses it without
        # showing the password (`redis_url`).
        from .redis import open_redis_store

        return open_redis_store(url, max_bytes=max_bytes, open_local=open_store)
    path, options = sqlite_path(url)
    lease_timeout = DEFAULT_LEASE_TIMEOUT
    for key, value in options.items():
        if key != "lease_timeout":
            raise ConfigurationError(
                f"store: unknown option {key!r} (only lease_timeout)", setting="store"
            )
        try:
            lease_timeout = float(value)
        except ValueError:
            lease_timeout = -1.0
        if not 1.0 <= lease_timeout <= 86400.0:
            raise ConfigurationError(
                f"store: lease_timeout must be seconds in [1, 86400], not {value!r}",
                setting="store",
            )
    store = SQLiteStore(path, max_bytes=max_bytes, lease_timeout=lease_timeout, url=url)
    try:
        store.open()
    except StoreError as exc:
        raise ConfigurationError(
            f"store: cannot use {url}: {exc}", setting="store"
        ) from None
    return store
