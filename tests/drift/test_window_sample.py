"""The window's raw-value sample: min(sample_size, rows) rows, uniform whatever the traffic shape.

Each row's value is its global index, so where a sampled value came from is known exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st

from otel_ml._internal.drift import DriftTracker, ReferenceProfile
from otel_ml._internal.drift.window import FeatureGroup

S = 2000


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


_PROFILE = ReferenceProfile.from_data({"x": np.arange(100_000.0)})


def _group(clock: _Clock, sub_windows: int = 5, seed: int = 0) -> FeatureGroup:
    return FeatureGroup(_PROFILE.features, window_s=50.0, sub_windows=sub_windows, sample_size=S,
                        clock=clock, seed=seed)


def _feed(group: FeatureGroup, clock: _Clock, counts: list[int], rows_from: int = -1) -> list[range]:
    """Rows 0, 1, ... into consecutive 10-second sub-windows; batches, or single rows for index >= rows_from."""
    spans, start = [], 0
    for i, c in enumerate(counts):
        clock.now = 10.0 * i + 1.0
        if 0 <= rows_from <= i:
            for v in range(start, start + c):
                group.update_row([float(v)], False)
        else:
            group.update_columns([np.arange(start, start + c, dtype=np.float64)], c)
        spans.append(range(start, start + c))
        start += c
    return spans


def test_one_busy_sub_window_fills_the_whole_sample() -> None:
    """All 10 000 rows in one of 5 sub-windows: the sample holds sample_size rows, not a fifth."""
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=5000)})
    batch = DriftTracker(profile, clock=lambda: 0.0)
    batch.update(rng.normal(size=(10_000, 1)))
    assert batch.evaluate()["x"].sample_n == S
    rows = DriftTracker(profile, clock=lambda: 0.0)
    for v in rng.normal(size=3000):
        rows.update({"x": float(v)})
    assert rows.evaluate()["x"].sample_n == S


@pytest.mark.parametrize("rows_from", [-1, 2], ids=["batches", "batches-then-rows"])
def test_uneven_traffic_gives_a_uniform_sample(rows_from: int) -> None:
    """Sub-windows of 5000, 300, 12000, 40 and 2600 rows: each row sampled with probability S/R."""
    clock = _Clock()
    group = _group(clock)
    counts = [5000, 300, 12000, 40, 2600]
    spans = _feed(group, clock, counts, rows_from)
    total = sum(counts)
    sample = group.window().sample[:, 0]
    assert sample.size == S
    assert np.unique(sample).size == S  # without replacement
    origin = np.searchsorted([s.stop for s in spans], sample, side="right")
    observed = np.bincount(origin, minlength=len(counts))
    expected = S * np.asarray(counts) / total
    assert np.all(np.abs(observed - expected) < 1.0 + 1e-9), (observed, expected)
    # within the sub-windows, sampled rows are spread uniformly over their rows
    assert st.kstest((sample + 0.5) / total, "uniform").pvalue > 1e-3
    big = sample[(sample >= spans[2].start) & (sample < spans[2].stop)]
    assert st.kstest((big - spans[2].start + 0.5) / counts[2], "uniform").pvalue > 1e-3


def test_rounding_of_each_share_is_unbiased() -> None:
    """Over many seeds each sub-window's mean share is S * rows_i / R, the rounding included."""
    counts = [5000, 300, 12000, 40, 2600]
    expected = S * np.asarray(counts) / sum(counts)
    shares = []
    for seed in range(300):
        clock = _Clock()
        group = _group(clock, seed=seed)
        spans = _feed(group, clock, counts)
        sample = group.window().sample[:, 0]
        shares.append(np.bincount(np.searchsorted([s.stop for s in spans], sample, side="right"), minlength=5))
    mean = np.mean(shares, axis=0)
    assert np.all(np.abs(mean - expected) < 0.1), (mean, expected)


def test_fewer_rows_than_sample_size_keeps_every_row() -> None:
    """450 rows over three sub-windows: the sample is exactly those 450 rows."""
    clock = _Clock()
    group = _group(clock)
    _feed(group, clock, [100, 50, 300])
    assert sorted(group.window().sample[:, 0].tolist()) == list(map(float, range(450)))


def test_closed_sub_windows_keep_only_what_the_window_can_need() -> None:
    """Even traffic over 5 sub-windows keeps ~S*(1 + 1/2 + ... + 1/5) rows, and the sample stays full."""
    clock = _Clock()
    group = _group(clock)
    _feed(group, clock, [10_000] * 5)
    sample = group.window().sample
    kept = sum(s.kept() for s in group.slots)
    bound = sum(math.ceil(S / k) for k in range(1, 6))
    assert kept == bound  # 400 + 500 + 667 + 1000 + 2000
    assert kept < 2.3 * S
    assert sample.shape[0] == S


def test_sample_follows_the_sliding_window() -> None:
    """After two sub-windows expire, the sample holds only live rows, uniformly, min(S, live rows) of them."""
    clock = _Clock()
    group = _group(clock)
    spans = _feed(group, clock, [3000, 3000, 500, 500, 200])
    clock.now = 61.0  # sub-windows 0 and 1 left the 50-second window; 6 is open
    group.update_columns([np.arange(7200.0, 7700.0)], 500)
    sample = group.window().sample[:, 0]
    live = [spans[2], spans[3], spans[4], range(7200, 7700)]
    assert sample.size == min(S, sum(len(r) for r in live)) == 1700
    assert sorted(sample.tolist()) == [float(v) for r in live for v in r]


def test_a_clock_going_backwards_counts_into_the_newest_sub_window() -> None:
    """Rows stamped before the newest sub-window are counted there; nothing is lost or raised."""
    clock = _Clock()
    group = _group(clock)
    _feed(group, clock, [1000, 1000, 1000])
    clock.now = 1.0
    group.update_columns([np.arange(5000.0, 5100.0)], 100)
    group.update_row([6000.0], False)
    clock.now = 21.0
    snap = group.window()
    assert snap.rows == 3101
    assert snap.sample.shape[0] == S
