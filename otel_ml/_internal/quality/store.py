"""Bounded, columnar store of predictions waiting for their ground truth.

Labels can arrive days after the prediction, so the store has to hold many predictions
cheaply. A pending prediction is one row of five numpy columns (time float64; predicted float64,
a class code or a regression value; score and confidence float32, NaN for none; the id object,
kept so the oldest row can be evicted) plus one ``dict`` entry ``id -> row``. Per-row Python
objects (tuples, boxed floats, linked-list nodes) are what made the previous OrderedDict store
cost ~200 B per prediction besides its id; here they are gone, and what remains per row is the
dict entry (~31 B), its boxed row number (28 B) and 32-40 B of columns, ~96 B in all (the
measured budget is in :mod:`otel_ml._internal.quality.tracker`).

The columns form a ring in arrival order. A joined, expired or replaced row becomes a hole (time
NaN, id None); the head skips holes as it reaches them. The columns are allocated at the first
prediction and double as needed up to ``max_pending * 5/4`` rows: the extra quarter lets holes
left by out-of-order joins pile up between compactions (which copy the live rows to the front,
O(live)), so each compaction frees at least ``max_pending / 4`` rows and costs O(1) amortized.

* Expiry: rows older than ``ttl_s`` are swept from the head at every call (arrival order is time
  order under a monotonic clock; a join re-checks the age, so a clock that steps back only delays
  the sweep).
* Eviction: past ``max_pending`` live rows the oldest go (``evicted``).
* Tombstones: swept and evicted ids go to a bounded set (the latest ``min(max_pending, 10 000)``),
  so a late label reads "expired" rather than "unknown".
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from itertools import islice, repeat
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

_INITIAL_ROWS = 1024
_MAX_TOMBSTONES = 10_000
# Scans from the head look at this many rows first and 4x more each round, so the common case
# (the row we want is near the head) stays O(1) and a long run of holes stays O(run).
_FIRST_SCAN = 64
_STEPS = 8
_UNHASHABLE = -2


class Joined(NamedTuple):
    """Rows of a :meth:`PendingStore.pop_many` lookup that found a fresh prediction."""

    rows: npt.NDArray[np.intp]  # positions in the looked-up keys
    t: npt.NDArray[np.float64]
    predicted: npt.NDArray[np.float64]
    score: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    unknown: int
    expired: int
    unhashable: int


class PendingStore:
    """Not thread-safe: the tracker serialises calls."""

    def __init__(self, max_pending: int, ttl_s: float) -> None:
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self.evicted = 0
        self.expired = 0  # swept by age
        self._limit = max_pending + max(1, max_pending // 4)
        self._index: dict[Hashable, int] = {}
        self._tombstones: OrderedDict[Hashable, None] = OrderedDict()
        self._max_tombstones = max(1, min(max_pending, _MAX_TOMBSTONES))
        self._cap = 0
        self._head = 0
        self._used = 0  # rows from the head to the tail, holes included
        self._t: npt.NDArray[np.float64] = np.empty(0, np.float64)
        self._pred: npt.NDArray[np.float64] = np.empty(0, np.float64)
        self._score: npt.NDArray[np.float32] = np.empty(0, np.float32)
        self._conf: npt.NDArray[np.float32] = np.empty(0, np.float32)
        self._ids: npt.NDArray[np.object_] = np.empty(0, object)

    def __len__(self) -> int:
        return len(self._index)

    @property
    def capacity(self) -> int:
        """Rows allocated in each column."""
        return self._cap

    # --- writing ---------------------------------------------------------------------------

    def put(self, key: Hashable, now: float, predicted: float, score: float, confidence: float) -> int:
        """Keep one prediction (``key`` hashable); returns how many older ones were evicted."""
        self.sweep(now)
        old = self._index.pop(key, None)
        if old is not None:
            self._t[old] = math.nan
            self._ids[old] = None
            self._skip_holes()
        elif self._tombstones:
            self._tombstones.pop(key, None)
        evicted = self._make_room(1)
        slot = (self._head + self._used) % self._cap
        self._t[slot] = now
        self._pred[slot] = predicted
        self._score[slot] = score
        self._conf[slot] = confidence
        self._ids[slot] = key
        self._used += 1
        self._index[key] = slot
        return evicted

    def put_many(self, keys: list[Hashable], now: float, predicted: npt.NDArray[np.float64],
                 scores: npt.NDArray[np.float32], confidences: npt.NDArray[np.float32]) -> int:
        """Keep a batch (``keys`` hashable and distinct, columns aligned); returns rows evicted."""
        k = len(keys)
        if not k:
            return 0
        self.sweep(now)
        index = self._index
        if index:
            again = index.keys() & keys
            if again:
                old = np.fromiter([index.pop(key) for key in again], np.intp, len(again))
                self._t[old] = np.nan
                self._ids[old] = None
                self._skip_holes()
        if self._tombstones:
            for key in self._tombstones.keys() & keys:
                del self._tombstones[key]
        unstored: list[Hashable] = []
        if k > self.max_pending:  # the batch alone overflows: its oldest rows never get a place
            cut = k - self.max_pending
            unstored = keys[:cut]
            keys, predicted, scores, confidences = keys[cut:], predicted[cut:], scores[cut:], confidences[cut:]
            k = self.max_pending
        evicted = self._make_room(k)
        # Buried after the rows evicted for room, as if the batch had been kept row by row.
        self._bury(unstored)
        self.evicted += len(unstored)
        ids = np.fromiter(keys, dtype=object, count=k)  # fromiter keeps tuple ids as scalars
        done = 0
        for a, b in self._spans(self._used, k):
            n = b - a
            self._t[a:b] = now
            self._pred[a:b] = predicted[done:done + n]
            self._score[a:b] = scores[done:done + n]
            self._conf[a:b] = confidences[done:done + n]
            self._ids[a:b] = ids[done:done + n]
            index.update(zip(keys[done:done + n], range(a, b), strict=True))
            done += n
        self._used += k
        return evicted + len(unstored)

    # --- joining ---------------------------------------------------------------------------

    def pop(self, key: Hashable, now: float) -> tuple[float, float, float, float] | str:
        """(time, predicted, score, confidence) of ``key`` (hashable), or why not: "unknown" | "expired"."""
        self.sweep(now)
        slot = self._index.pop(key, -1)
        if slot < 0:
            if self._tombstones and self._tombstones.pop(key, False) is None:
                return "expired"
            return "unknown"
        t = float(self._t[slot])
        row = (t, float(self._pred[slot]), float(self._score[slot]), float(self._conf[slot]))
        self._t[slot] = math.nan
        self._ids[slot] = None
        if slot == self._head:
            self._skip_holes()
        return "expired" if now - t > self.ttl_s else row

    def pop_many(self, keys: list[Hashable], now: float) -> Joined:
        """Take the predictions of ``keys`` out of the store (any keys; duplicates join once)."""
        self.sweep(now)
        k = len(keys)
        index = self._index
        unhashable = 0
        found: list[int] = []
        while len(found) < k:
            try:
                if not index:  # dict.pop on an empty dict would not even hash the key
                    raise TypeError
                # extend keeps what it popped before an unhashable key stops it
                found.extend(map(index.pop, islice(keys, len(found), None), repeat(-1)))
            except TypeError:  # the key at len(found) is unhashable, or the index is empty
                key = keys[len(found)]
                try:
                    hash(key)
                    found.append(index.pop(key, -1))
                except TypeError:
                    found.append(_UNHASHABLE)
                    unhashable += 1
        slots = np.fromiter(found, np.intp, k)
        rows = np.flatnonzero(slots >= 0)
        s = slots[rows]
        t = self._t[s]
        predicted = self._pred[s]
        score = self._score[s]
        confidence = self._conf[s]
        if s.size:
            self._t[s] = np.nan
            self._ids[s] = None
            self._skip_holes()
        fresh = (now - t) <= self.ttl_s
        expired = int(s.size - np.count_nonzero(fresh))
        unknown = k - len(rows) - unhashable
        if unknown and self._tombstones:
            tombstones = self._tombstones
            for i in np.flatnonzero(slots == -1).tolist():
                if tombstones.pop(keys[i], False) is None:
                    expired += 1
                    unknown -= 1
        if not fresh.all():
            rows, t, predicted, score, confidence = (rows[fresh], t[fresh], predicted[fresh], score[fresh],
                                                     confidence[fresh])
        return Joined(rows, t, predicted, score, confidence, unknown, expired, unhashable)

    def sweep(self, now: float) -> None:
        """Drop rows older than ``ttl_s`` from the head."""
        if not self._used:
            return
        cutoff = now - self.ttl_s
        # The head row is always live (holes are skipped eagerly), so one comparison settles
        # the common case of nothing to do.
        if not self._t[self._head] < cutoff:
            return
        self.expired += self._drop_front(self._first(lambda t: t >= cutoff))

    # --- ring internals --------------------------------------------------------------------

    def _spans(self, start: int, count: int) -> list[tuple[int, int]]:
        """Physical [a, b) ranges of the ``count`` rows from logical row ``start`` (head = 0)."""
        if count <= 0:
            return []
        a = (self._head + start) % self._cap
        first = min(count, self._cap - a)
        spans = [(a, a + first)]
        if count > first:
            spans.append((0, count - first))
        return spans

    def _first(self, test: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.bool_]]) -> int:
        """Logical index of the first used row whose time passes ``test`` (``_used`` if none)."""
        pos, step = 0, _FIRST_SCAN
        while pos < self._used:
            n = min(step, self._used - pos)
            off = pos
            for a, b in self._spans(pos, n):
                hits = np.flatnonzero(test(self._t[a:b]))
                if hits.size:
                    return off + int(hits[0])
                off += b - a
            pos += n
            step *= 4
        return self._used

    def _end_of_oldest(self, count: int) -> int:
        """Logical index just past the ``count``-th live row from the head."""
        pos, step, need = 0, max(_FIRST_SCAN, count), count
        while pos < self._used:
            n = min(step, self._used - pos)
            off = pos
            for a, b in self._spans(pos, n):
                live = np.flatnonzero(~np.isnan(self._t[a:b]))
                if live.size >= need:
                    return off + int(live[need - 1]) + 1
                need -= live.size
                off += b - a
            pos += n
            step *= 4
        return self._used

    def _skip_holes(self) -> None:
        t = self._t
        # Labels arriving roughly in order leave short runs of holes at the head: step over a
        # few one by one (cheaper than a numpy call), scan longer runs.
        for _ in range(_STEPS):
            if not self._used or not math.isnan(t[self._head]):
                return
            self._advance(1)
        if self._used and math.isnan(t[self._head]):
            self._advance(self._first(lambda col: ~np.isnan(col)))

    def _advance(self, n: int) -> None:
        self._used -= n
        self._head = (self._head + n) % self._cap if self._used else 0

    def _drop_front(self, n: int) -> int:
        """Remove the first ``n`` logical rows, burying the live ones; returns how many were live."""
        gone: list[Hashable] = []
        for a, b in self._spans(0, n):
            live = ~np.isnan(self._t[a:b])
            gone.extend(self._ids[a:b][live].tolist())
            self._t[a:b] = np.nan
            self._ids[a:b] = None
        index = self._index
        for key in gone:
            del index[key]
        self._bury(gone)
        self._advance(n)
        self._skip_holes()
        return len(gone)

    def _bury(self, keys: list[Hashable]) -> None:
        if not keys:
            return
        tombstones = self._tombstones
        for key in keys[-self._max_tombstones:]:
            tombstones[key] = None
        for _ in range(len(tombstones) - self._max_tombstones):
            tombstones.popitem(last=False)

    def _make_room(self, k: int) -> int:
        """Evict and grow or compact so ``k`` more rows fit (``k <= max_pending``)."""
        evicted = 0
        over = len(self._index) + k - self.max_pending
        if over > 0:
            evicted = self._drop_front(self._end_of_oldest(over))
            self.evicted += evicted
        if self._used + k > self._cap:
            cap = self._cap
            if cap < self._limit:
                cap = max(2 * cap, _INITIAL_ROWS)
                while cap < self._used + k:
                    cap *= 2
                cap = min(cap, self._limit)
                if self._head + self._used <= self._cap and self._used + k <= cap:
                    # Rows that do not wrap keep their positions, so the index stays valid.
                    self._grow(cap)
                    return evicted
            self._rebuild(cap)
        return evicted

    def _grow(self, cap: int) -> None:
        a, b = self._head, self._head + self._used
        cols: list[npt.NDArray[Any]] = [self._t, self._pred, self._score, self._conf, self._ids]
        for i, c in enumerate(cols):
            d = np.empty(cap, c.dtype)
            d[a:b] = c[a:b]
            cols[i] = d
        self._t, self._pred, self._score, self._conf, self._ids = cols
        self._cap = cap

    def _rebuild(self, cap: int) -> None:
        """Copy the live rows, in order, to the front of new columns of ``cap`` rows."""
        spans = self._spans(0, self._used)
        cols: tuple[npt.NDArray[Any], ...] = (self._t, self._pred, self._score, self._conf, self._ids)
        # np.empty leaves unused rows unwritten (and their pages untouched until used); only
        # rows below _used are ever read.
        new: list[npt.NDArray[Any]] = [np.empty(cap, c.dtype) for c in cols]
        n = 0
        if spans:
            t = np.concatenate([self._t[a:b] for a, b in spans])
            live = ~np.isnan(t)
            for c, d in zip(cols, new, strict=True):
                rows = np.concatenate([c[a:b] for a, b in spans])[live]
                n = len(rows)
                d[:n] = rows
        self._t, self._pred, self._score, self._conf, self._ids = new
        self._cap, self._head, self._used = cap, 0, n
        self._index.update(zip(self._ids[:n].tolist(), range(n), strict=True))
