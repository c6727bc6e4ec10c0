"""Subscriber syncs: every user of an app to Bento's subscribers, within
the request budget the app's events spend, resumable from a checkpoint file.

```python
from bento_track.sync import sync_subscribers

result = sync_subscribers(
    ({"email": u.email, "fields": {"plan": u.plan}} for u in users),
    checkpoint="sync-subscribers.json",
)
print(result.summary())
```

`bento-track sync-subscribers --from-csv FILE` and Django's
`python manage.py bento_sync_subscribers` are built on it.
"""

from .backfill import MAX_BATCH, ROW_KEYS, SyncResult, row_upsert, sync_subscribers
from .checkpoint import CHECKPOINT_VERSION, Position, SyncCheckpoint
from .progress import MODES, Progress

__all__ = [
    "CHECKPOINT_VERSION",
    "MAX_BATCH",
    "MODES",
    "ROW_KEYS",
    "Position",
    "Progress",
    "SyncCheckpoint",
    "SyncResult",
    "row_upsert",
    "sync_subscribers",
]
