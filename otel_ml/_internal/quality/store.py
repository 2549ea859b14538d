"""Bounded store of recent predictions waiting for their ground truth.

An insertion-ordered dict (``OrderedDict``) of ``prediction_id -> (time, predicted, score)``:
entries older than ``ttl_s`` are swept from the front (insertion order is time order, since
re-remembering an id moves it to the end), and past ``max_pending`` the oldest is evicted.
Swept and evicted ids go to a smaller bounded tombstone set so that a late ``record`` is
reported as ``expired`` rather than ``unknown``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple


class Pending(NamedTuple):
    t: float
    predicted: Any
    score: float | None


class PendingStore:
    def __init__(self, max_pending: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self.clock = clock
        self._items: OrderedDict[Hashable, Pending] = OrderedDict()
        self._tombstones: OrderedDict[Hashable, None] = OrderedDict()
        self._max_tombstones = max(1, min(max_pending, 10_000))
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: Hashable, predicted: Any, score: float | None) -> None:
        now = self.clock()
        items = self._items
        if key in items:
            items.move_to_end(key)
        items[key] = Pending(now, predicted, score)
        self._tombstones.pop(key, None)
        self.sweep(now)
        while len(items) > self.max_pending:
            old, _ = items.popitem(last=False)
            self.evicted += 1
            self._bury(old)

    def pop(self, key: Hashable) -> tuple[Pending | None, str]:
        """(entry, "") when found and fresh; (None, "expired" | "unknown") otherwise."""
        now = self.clock()
        entry = self._items.pop(key, None)
        if entry is not None:
            if now - entry.t <= self.ttl_s:
                return entry, ""
            self.expired += 1
            return None, "expired"
        if key in self._tombstones:
            del self._tombstones[key]
            return None, "expired"
        return None, "unknown"

    def sweep(self, now: float) -> None:
        items = self._items
        while items:
            key, entry = next(iter(items.items()))
            if now - entry.t <= self.ttl_s:
                break
            items.popitem(last=False)
            self.expired += 1
            self._bury(key)

    def _bury(self, key: Hashable) -> None:
        self._tombstones[key] = None
        if len(self._tombstones) > self._max_tombstones:
            self._tombstones.popitem(last=False)
