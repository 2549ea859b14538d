"""Delayed labels: TTL and windows on a fake clock, the bounded store against a plain model of it,
and the memory a pending prediction costs."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Hashable

import pytest

from otel_ml._internal.quality import OutcomeTracker
from otel_ml._internal.selftelemetry import SelfTelemetry

DAY = 86400.0
HOUR = 3600.0


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("ttl_days", "joined", "expired"), [(7, 100, 0), (1, 0, 100)])
def test_labels_three_days_late(tel: SelfTelemetry, ttl_days: int, joined: int, expired: int) -> None:
    """Labels arriving 3 days after the predictions join with a 7-day TTL and read expired with a 1-day one."""
    clock = _Clock()
    t = OutcomeTracker(ttl_s=ttl_days * DAY, max_pending=1000, clock=clock, selftelemetry=tel)
    ids = [f"req-{i}" for i in range(100)]
    t.remember_many(ids, [i % 2 for i in range(100)])
    clock.now = 3 * DAY
    t.record_many(ids, [1] * 100)
    r = t.evaluate()
    assert r.n == joined
    assert t.unmatched == {"unknown": 0, "expired": expired}
    assert t.pending == 0
    if joined:
        assert r.accuracy == 0.5  # odd rows predicted 1, every label is 1


def _late_labels(window_by: str, tel: SelfTelemetry) -> tuple[OutcomeTracker, _Clock]:
    """100 right predictions at 0h, 50 wrong ones at 60h, every label at 66h; 1-day window of 6h parts."""
    clock = _Clock()
    t = OutcomeTracker(window_s=DAY, sub_windows=4, ttl_s=7 * DAY, window_by=window_by, clock=clock,
                       selftelemetry=tel)
    t.remember_many([f"a{i}" for i in range(100)], [1] * 100)
    clock.now = 60 * HOUR
    t.remember_many([f"b{i}" for i in range(50)], [0] * 50)
    clock.now = 66 * HOUR
    t.record_many([f"a{i}" for i in range(100)] + [f"b{i}" for i in range(50)], [1] * 150)
    return t, clock


def test_label_time_window_counts_when_labels_arrive(tel: SelfTelemetry) -> None:
    """window_by="label_time": all 150 labels that arrived at 66h count, until 66h leaves the window."""
    t, clock = _late_labels("label_time", tel)
    r = t.evaluate()
    assert r.n == 150 and r.accuracy == pytest.approx(100 / 150)
    assert t.late_outside_window == 0
    clock.now = 85 * HOUR  # live sub-windows start at 66h: the labels' one is still in
    assert t.evaluate().n == 150
    clock.now = 96 * HOUR  # live sub-windows now start at 78h
    assert t.evaluate().n == 0
    assert t.outcome_counts() == {("1", "1"): 100, ("0", "1"): 50}


def test_prediction_time_window_counts_when_predictions_were_made(tel: SelfTelemetry) -> None:
    """window_by="prediction_time": only the 50 predictions made at 60h are in the window; 100 are late."""
    t, clock = _late_labels("prediction_time", tel)
    r = t.evaluate()
    assert (r.n, r.accuracy) == (50, 0.0)
    assert t.late_outside_window == 100
    clock.now = 85 * HOUR  # the 60-66h sub-window has left; the labels' 66-72h one would still be in
    assert t.evaluate().n == 0
    # cumulative counters advance at label time whatever the window
    assert t.outcome_counts() == {("1", "1"): 100, ("0", "1"): 50}


def test_remembering_again_replaces(tel: SelfTelemetry) -> None:
    """An id remembered again by a later call replaces the earlier prediction (single and batch)."""
    t = OutcomeTracker(selftelemetry=tel)
    t.remember("a", 0)
    t.remember("a", 1)
    t.remember_many(["b", "c"], [0, 0])
    t.remember_many(["c", "d"], [1, 1])
    assert t.pending == 4
    t.record_many(["a", "b", "c", "d"], [1, 0, 1, 1])
    r = t.evaluate()
    assert (r.n, r.accuracy) == (4, 1.0)
    assert tel.count("duplicate_prediction_id") == 0


class _Reference:
    """The store's contract written the obvious way: an OrderedDict, one row at a time."""

    def __init__(self, max_pending: int, ttl_s: float) -> None:
        self.max_pending, self.ttl_s = max_pending, ttl_s
        self.max_tombstones = min(max_pending, 10_000)
        self.items: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self.tombstones: OrderedDict[Hashable, None] = OrderedDict()
        self.evicted = 0
        self.unmatched = {"unknown": 0, "expired": 0}
        self.joined: dict[tuple[int, int], int] = {}

    def _bury(self, key: Hashable) -> None:
        self.tombstones[key] = None
        if len(self.tombstones) > self.max_tombstones:
            self.tombstones.popitem(last=False)

    def sweep(self, now: float) -> None:
        while self.items:
            key, (t, _) = next(iter(self.items.items()))
            if now - t <= self.ttl_s:
                break
            del self.items[key]
            self._bury(key)

    def remember_many(self, ids: list[int], predicted: list[int], now: float) -> None:
        self.sweep(now)
        batch = dict(zip(reversed(ids), reversed(predicted), strict=True))  # first row of each id wins
        batch = {k: batch[k] for k in dict.fromkeys(ids)}
        for key in batch:  # a batch first takes its ids out, then appends in row order
            if self.items.pop(key, None) is None:
                self.tombstones.pop(key, None)
        for key, p in batch.items():
            self.items[key] = (now, p)
            if len(self.items) > self.max_pending:
                old, _ = self.items.popitem(last=False)
                self.evicted += 1
                self._bury(old)

    def record_many(self, ids: list[int], actuals: list[int], now: float) -> None:
        self.sweep(now)
        for key, a in zip(ids, actuals, strict=True):
            if key in self.items:
                t, p = self.items.pop(key)
                if now - t <= self.ttl_s:
                    self.joined[(p, a)] = self.joined.get((p, a), 0) + 1
                else:
                    self.unmatched["expired"] += 1
            elif key in self.tombstones:
                del self.tombstones[key]
                self.unmatched["expired"] += 1
            else:
                self.unmatched["unknown"] += 1


@pytest.mark.parametrize(("seed", "max_pending", "pool", "batch"), [
    (0, 7, 30, 12), (1, 7, 30, 12), (2, 40, 120, 50), (3, 3000, 6000, 1500),
])
@pytest.mark.parametrize("window_by", ["label_time", "prediction_time"])
def test_store_matches_a_plain_model_of_it(tel: SelfTelemetry, seed: int, max_pending: int, pool: int,
                                           batch: int, window_by: str) -> None:
    """Random remembers, re-remembers, joins and expiry: pending, evicted, unmatched and outcomes as the model says."""
    rng = random.Random(seed)
    clock = _Clock()
    ttl = 50.0
    t = OutcomeTracker(max_pending=max_pending, ttl_s=ttl, window_s=1e9, clock=clock, max_classes=8,
                       window_by=window_by, selftelemetry=tel)
    ref = _Reference(max_pending, ttl)
    for _ in range(300):
        clock.now += rng.choice([0.0, 0.5, 3.0, 20.0])
        k = rng.randint(1, batch)
        ids = [rng.randrange(pool) for _ in range(k)]
        values = [rng.randrange(3) for _ in range(k)]
        op = rng.random()
        if op < 0.15:
            t.remember(ids[0], values[0])
            ref.remember_many(ids[:1], values[:1], clock.now)
        elif op < 0.55:
            t.remember_many(ids, values)
            ref.remember_many(ids, values, clock.now)
        elif op < 0.65:
            t.record(ids[0], values[0])
            ref.record_many(ids[:1], values[:1], clock.now)
        else:
            t.record_many(ids, values)
            ref.record_many(ids, values, clock.now)
        ref.sweep(clock.now)
        assert t.pending == len(ref.items)
        assert t.evicted == ref.evicted
        assert t.unmatched == ref.unmatched
    assert t.outcome_counts() == {(str(p), str(a)): n for (p, a), n in ref.joined.items()}
    assert t.evaluate().n == sum(ref.joined.values())
    assert tel.count("outcome_store_full") == ref.evicted
