"""The Redis store's key names (what each key holds: `redis_scripts`).

An account's keys share one hash tag, `bt:{<namespace>:<account digest>}:`,
so a cluster keeps them in one slot, as scripts need. The keys written
before stores knew accounts have the namespace alone as their tag
(`legacy_keys`), and a hash per namespace names each account by its
`site_uuid` (`registry_key`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Keys", "account_keys", "legacy_keys", "registry_key"]


@dataclass(frozen=True)
class Keys:
    """One partition's keys (see `redis_scripts` for what each holds)."""

    q: str
    tot: str
    log: str
    fly: str
    pause: str
    epoch: str
    rel: str
    out: str
    seq: str
    procs: str

    def all(self) -> list[str]:
        """Every key, in the order of the fields (as `ADOPT` takes them)."""
        return [getattr(self, f.name) for f in fields(self)]


def _under(prefix: str) -> Keys:
    return Keys(**{f.name: prefix + f.name for f in fields(Keys)})


def account_keys(namespace: str, account: str) -> Keys:
    """The keys of the account whose digest (`Account.key`) is `account`."""
    return _under(f"bt:{{{namespace}:{account}}}:")


def legacy_keys(namespace: str) -> Keys:
    """The keys written before stores knew accounts (unassigned events)."""
    return _under(f"bt:{{{namespace}}}:")


def registry_key(namespace: str) -> str:
    """The hash of the namespace's accounts: digest -> `site_uuid`."""
    return f"bt:{{{namespace}}}:accounts"
