"""The default queue backend: a deque in this process's memory. Fast, bounded
by the client's `max_queue_size` / `max_queue_bytes`, lost if the process dies."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from .._delivery.batcher import Record

__all__ = ["MemoryQueue"]


class MemoryQueue:
    """A FIFO of encoded events kept in memory."""

    def __init__(self) -> None:
        self._items: deque[Record] = deque()
        self._nbytes = 0

    def put(self, records: Iterable[Record]) -> None:
        batch = records if isinstance(records, list) else list(records)
        self._items.extend(batch)
        self._nbytes += sum(map(len, batch)) + len(batch)

    def requeue(self, records: list[Record]) -> None:
        self._items.extendleft(reversed(records))
        self._nbytes += sum(map(len, records)) + len(records)

    def get_batch(self, max_count: int, max_bytes: int) -> list[Record]:
        items = self._items
        popleft = items.popleft
        out = [popleft() for _ in range(min(max_count, len(items)))]
        size = sum(map(len, out)) + len(out)
        while size > max_bytes and len(out) > 1:  # too big: give back the tail
            last = out.pop()
            items.appendleft(last)
            size -= len(last) + 1
        self._nbytes -= size
        return out

    def drop_oldest(self, count: int) -> list[Record]:
        out = [self._items.popleft() for _ in range(min(count, len(self._items)))]
        self._nbytes -= sum(map(len, out)) + len(out)
        return out

    def drop_newest(self, count: int) -> list[Record]:
        out = [self._items.pop() for _ in range(min(count, len(self._items)))]
        out.reverse()
        self._nbytes -= sum(map(len, out)) + len(out)
        return out

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self._nbytes = 0

    def after_fork(self) -> None:
        self.clear()
