"""`Account`: whose events a store holds.

Bento's request budget, its 429 pause and its keys belong to an account, and
several apps (staging next to production, two customers) may share one store
file or one Redis database. So a store partitions everything by account:
queue, leases, budget, pause and counters. An event leaves only with the keys
of the client that captured it, because a process claims only its own
account's events.

An account is the endpoint, the `site_uuid` and the publishable key of the
client (never the secret: a rotated secret is still the same account). The
store keeps a digest of the three (`key`) and shows only the `site_uuid`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["UNNAMED", "Account"]


@dataclass(frozen=True)
class Account:
    """The Bento account a client sends to (see the module docstring).

    Attributes:
        endpoint: the API's base URL.
        site_uuid: the site (shown by `stats().store` and `bento-track store`).
        publishable_key: the key sent with the secret (kept out of reprs).
    """

    endpoint: str
    site_uuid: str
    publishable_key: str = field(repr=False)

    @property
    def key(self) -> str:
        """A stable digest of the three parts: the store's name for the
        account (the keys themselves are never written to a store)."""
        raw = "\0".join(
            (self.endpoint.rstrip("/"), self.site_uuid, self.publishable_key)
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


#: The account of a store used without a client (tests, tools): a partition
#: of its own, never another client's.
UNNAMED = Account(endpoint="", site_uuid="", publishable_key="")
