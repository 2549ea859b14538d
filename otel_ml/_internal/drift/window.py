"""Windowed, mergeable per-feature state: bin counts, data-quality counts, a raw-value sample.

A window is a ring of ``sub_windows`` tumbling sub-windows of ``window_s / sub_windows``
seconds; evaluation merges the live ones (sliding window), ``sub_windows=1`` is tumbling.
A sub-window that leaves the ring is folded into cumulative totals (what the OTel counters
export), so memory is fixed: per sub-window one int64 bin array, one int64 issue array and a
``rows x numeric_features`` float64 reservoir (float64 because reference and current values
tie exactly in real data, and float32 would move KS). Single rows update Python lists (cheaper
than numpy scalar writes); batches update numpy arrays with ``np.searchsorted`` + ``np.bincount``.
Callers hold the tracker's lock.

Sample: a window's sample is a uniform sample of ``min(sample_size, rows in window)`` rows,
whatever the traffic shape (bursts, replays, a batch job landing in one sub-window). The open
sub-window keeps an Algorithm R reservoir of up to ``sample_size`` rows (one random draw per
row). Sub-windows expire oldest first and the newer ones' row counts only grow, so a *closed*
sub-window ``i`` never contributes more than ``ceil(S * rows_i / sum_{j >= i, live} rows_j)``
rows to a window's sample; at rotation and at evaluation its reservoir is cut to that (a uniform
subsample of a uniform sample is uniform). With even traffic over 5 sub-windows that is
S·(1 + 1/2 + ... + 1/5) ~ 2.3·S rows instead of 5·S. Merging gives each live sub-window its
share ``m * rows_i / R`` of the ``m = min(S, R)`` rows, rounded by systematic sampling so that
every row of the window has the same inclusion probability ``m / R``.

A clock that goes backwards keeps counting into the newest sub-window (rows are never written
into a closed, already cut reservoir).
"""

from __future__ import annotations

import math
import random
import sys
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from otel_ml._internal.drift.features import FeatureKind, FeatureProfile, numeric_bin_index
from otel_ml._internal.drift.result import ISSUES

I64 = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MISSING, NAN, INF, UNSEEN, OUT_OF_RANGE, TYPE_MISMATCH = range(len(ISSUES))
N_ISSUES = len(ISSUES)
_INF = math.inf
_FLOAT_MAX = sys.float_info.max
_BOOL_MAP: dict[Any, int] = {False: 0, True: 1, "false": 0, "true": 1, "False": 0, "True": 1}


@dataclass(frozen=True)
class _Plan:
    name: str
    kind: int  # 0 numeric, 1 categorical, 2 boolean
    offset: int  # first bin in the flat bin array
    n_bins: int
    edges: list[float]
    edges_arr: FloatArray
    lo: float
    hi: float
    codes: dict[Any, int]
    issue_offset: int
    num_col: int  # column in the reservoir, -1 for non-numeric


def _plan(features: Sequence[FeatureProfile]) -> list[_Plan]:
    plans, off, col = [], 0, 0
    for i, f in enumerate(features):
        if f.kind is FeatureKind.NUMERIC:
            plans.append(_Plan(f.name, 0, off, f.n_bins, list(f.edges), f.edges_array,
                               f.edges[0], f.edges[-1], {}, i * N_ISSUES, col))
            col += 1
        else:
            codes: dict[Any, int] = {}
            if f.kind is FeatureKind.BOOLEAN:
                codes = dict(_BOOL_MAP)
            else:
                for j, c in enumerate(f.categories):
                    codes.setdefault(c, j)
                for j, c in enumerate(f.categories):
                    codes.setdefault(str(c), j)
            plans.append(_Plan(f.name, 1 if f.kind is FeatureKind.CATEGORICAL else 2, off, f.n_bins,
                               [], f.edges_array, 0.0, 0.0, codes, i * N_ISSUES, -1))
        off += f.n_bins
    return plans


_UNUSED = -(2**62)  # epoch of a slot that never held rows (any real epoch is larger)


class _Slot:
    __slots__ = ("batch_bins", "batch_issues", "epoch", "res", "row_bins", "row_issues", "rows")

    def __init__(self, n_bins: int, n_issues: int) -> None:
        self.epoch = _UNUSED
        self.rows = 0
        self.row_bins = [0] * n_bins
        self.row_issues = [0] * n_issues
        self.batch_bins: I64 = np.zeros(n_bins, dtype=np.int64)
        self.batch_issues: I64 = np.zeros(n_issues, dtype=np.int64)
        # Rows 0 .. min(rows, len(res)) - 1 are the sample: a reservoir of ``sample_size`` rows
        # while the slot is open, cut to what the window can still need once it is closed.
        self.res: FloatArray | None = None

    def reset(self, epoch: int, capacity: int) -> None:
        self.epoch = epoch
        self.rows = 0
        n = len(self.row_bins)
        self.row_bins[:] = [0] * n
        self.row_issues[:] = [0] * len(self.row_issues)
        self.batch_bins.fill(0)
        self.batch_issues.fill(0)
        if self.res is not None and self.res.shape[0] < capacity:
            self.res = None  # a cut reservoir; a full one is overwritten in place

    def kept(self) -> int:
        """Sample rows held."""
        return 0 if self.res is None else min(self.rows, self.res.shape[0])


@dataclass(frozen=True)
class Snapshot:
    rows: int
    bins: I64
    issues: I64
    sample: FloatArray  # rows x numeric features, NaN where a value was not valid


class FeatureGroup:
    """State of a set of features that arrive together (the model inputs, or the predictions)."""

    def __init__(self, features: Sequence[FeatureProfile], *, window_s: float, sub_windows: int,
                 sample_size: int, clock: Callable[[], float], seed: int) -> None:
        self.features = list(features)
        self.names = [f.name for f in self.features]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.plans = _plan(self.features)
        self.n_bins = sum(f.n_bins for f in self.features)
        self.n_issues = len(self.features) * N_ISSUES
        self.num_plans = [p for p in self.plans if p.kind == 0]
        self.sub_s = window_s / sub_windows
        self.sub_windows = sub_windows
        self.res_rows = sample_size
        self.clock = clock
        self.slots = [_Slot(self.n_bins, self.n_issues) for _ in range(sub_windows)]
        self.retired_bins: I64 = np.zeros(self.n_bins, dtype=np.int64)
        self.retired_issues: I64 = np.zeros(self.n_issues, dtype=np.int64)
        self.retired_rows = 0
        self.rand = random.Random(seed).random
        self.rng = np.random.default_rng(seed)
        self.cur = self.slots[0]
        self.cur_epoch = _UNUSED

    # --- sub-window ring --------------------------------------------------------------

    def slot(self) -> _Slot:
        epoch = int(self.clock() // self.sub_s)
        if epoch > self.cur_epoch:
            self._rotate(epoch)
        return self.cur

    def _rotate(self, epoch: int) -> None:
        s = self.slots[epoch % self.sub_windows]
        if s.epoch != _UNUSED:
            self.retired_bins += s.batch_bins
            self.retired_bins += np.asarray(s.row_bins, dtype=np.int64)
            self.retired_issues += s.batch_issues
            self.retired_issues += np.asarray(s.row_issues, dtype=np.int64)
            self.retired_rows += s.rows
        s.reset(epoch, self.res_rows)
        self.cur = s
        self.cur_epoch = epoch
        self._cut(self.live_slots())

    def _reservoir(self, s: _Slot) -> FloatArray:
        if s.res is None:
            s.res = np.full((self.res_rows, len(self.num_plans)), np.nan)
        return s.res

    def _cut(self, live: list[_Slot]) -> None:
        """Cut each closed live slot's sample to the most any later window can take from it."""
        after = 0  # rows in this slot and the newer live ones
        for s in reversed(live):  # newest first
            after += s.rows
            if s is self.cur or s.res is None or not s.rows:
                continue
            need = -(-self.res_rows * s.rows // after)  # exact integer ceil
            kept = s.kept()
            if need < kept:
                s.res = s.res[np.sort(self.rng.choice(kept, need, replace=False))]

    # --- single rows --------------------------------------------------------------------

    def update_row(self, values: Mapping[str, Any] | Sequence[Any], by_name: bool) -> None:
        s = self.slot()
        rb, ri = s.row_bins, s.row_issues
        n = s.rows
        s.rows = n + 1
        res_j = -1
        res: FloatArray | None = None
        if self.num_plans:
            if n < self.res_rows:
                res_j = n
            else:
                j = int(self.rand() * (n + 1))
                if j < self.res_rows:
                    res_j = j
            res = self._reservoir(s) if res_j >= 0 else None
            if res is not None:
                res[res_j].fill(math.nan)  # features missing from this row
        get = values.get if by_name else None  # type: ignore[union-attr]
        for i, p in enumerate(self.plans):
            v: Any = get(p.name) if get is not None else values[i]  # type: ignore[index]
            t = type(v)
            if p.kind == 0:
                if t is not float and t is not int:
                    if v is None:
                        ri[p.issue_offset] += 1
                        continue
                    if t is str or t is bytes:
                        ri[p.issue_offset + TYPE_MISMATCH] += 1
                        continue
                    try:
                        v = float(v)
                    except (TypeError, ValueError, OverflowError):
                        ri[p.issue_offset + TYPE_MISMATCH] += 1
                        continue
                if v != v:
                    ri[p.issue_offset + NAN] += 1
                    continue
                if v < p.lo:
                    if v == -_INF or (t is int and v < -_FLOAT_MAX):  # an int no float holds: infinite
                        ri[p.issue_offset + INF] += 1
                        continue
                    b = 0
                    ri[p.issue_offset + OUT_OF_RANGE] += 1
                elif v > p.hi:
                    if v == _INF or (t is int and v > _FLOAT_MAX):
                        ri[p.issue_offset + INF] += 1
                        continue
                    b = p.n_bins - 1
                    ri[p.issue_offset + OUT_OF_RANGE] += 1
                else:
                    b = bisect_right(p.edges, v)
                    if b == p.n_bins - 1:
                        b -= 1
                rb[p.offset + b] += 1
                if res_j >= 0:
                    res[res_j, p.num_col] = v  # type: ignore[index]  # res is set when res_j >= 0
            else:
                if t is str:
                    code = p.codes.get(v)
                elif v is None:
                    ri[p.issue_offset] += 1
                    continue
                elif t is float and v != v:
                    ri[p.issue_offset + NAN] += 1
                    continue
                else:
                    try:
                        code = p.codes.get(v)
                        if code is None and p.kind == 1:
                            code = p.codes.get(str(v))
                    except TypeError:  # unhashable
                        ri[p.issue_offset + TYPE_MISMATCH] += 1
                        continue
                if code is None:
                    if p.kind == 2:
                        ri[p.issue_offset + TYPE_MISMATCH] += 1
                        continue
                    code = p.n_bins - 1
                    ri[p.issue_offset + UNSEEN] += 1
                rb[p.offset + code] += 1

    # --- batches ------------------------------------------------------------------------

    def update_columns(self, cols: Sequence[Any], n_rows: int) -> None:
        """``cols[i]`` is feature i's values (array-like of length ``n_rows``) or None (absent)."""
        if n_rows <= 0:
            return
        s = self.slot()
        bb, bi = s.batch_bins, s.batch_issues
        num = np.full((n_rows, len(self.num_plans)), np.nan) if self.num_plans else None
        for p, col in zip(self.plans, cols, strict=True):
            io = p.issue_offset
            if col is None:
                bi[io + MISSING] += n_rows
                continue
            if p.kind == 0:
                arr, missing, mismatch = _as_float(col)
                bi[io + MISSING] += missing
                bi[io + TYPE_MISMATCH] += mismatch
                finite = np.isfinite(arr)
                n_fin = int(np.count_nonzero(finite))
                if n_fin != arr.size:
                    nan = int(np.count_nonzero(np.isnan(arr))) - missing - mismatch
                    bi[io + NAN] += nan
                    bi[io + INF] += arr.size - n_fin - nan - missing - mismatch
                    valid = arr[finite]
                else:
                    valid = arr
                idx = numeric_bin_index(p.edges_arr, valid)
                counts = np.bincount(idx, minlength=p.n_bins)
                bb[p.offset:p.offset + p.n_bins] += counts
                bi[io + OUT_OF_RANGE] += int(counts[0] + counts[-1])
                if num is not None:
                    num[:, p.num_col] = np.where(finite, arr, np.nan) if n_fin != arr.size else arr
            else:
                codes, missing, nan, unseen, mismatch = _codes(p, col)
                bi[io + MISSING] += missing
                bi[io + NAN] += nan
                bi[io + UNSEEN] += unseen
                bi[io + TYPE_MISMATCH] += mismatch
                if codes.size:
                    bb[p.offset:p.offset + p.n_bins] += np.bincount(codes, minlength=p.n_bins)
        start = s.rows
        s.rows = start + n_rows
        if num is not None:
            pos = start + np.arange(n_rows)
            j = np.where(pos < self.res_rows, pos,
                         (self.rng.random(n_rows) * (pos + 1)).astype(np.int64))
            keep = j < self.res_rows
            if keep.any():
                self._reservoir(s)[j[keep]] = num[keep]

    # --- reading ------------------------------------------------------------------------

    def live_slots(self) -> list[_Slot]:
        """Slots of the current window, oldest first."""
        now_epoch = max(int(self.clock() // self.sub_s), self.cur_epoch)
        live = [s for s in self.slots if now_epoch - self.sub_windows < s.epoch <= now_epoch]
        return sorted(live, key=lambda s: s.epoch)

    def window(self) -> Snapshot:
        """Merged state of the live sub-windows and a uniform sample of min(sample_size, rows) rows."""
        live = self.live_slots()
        bins = np.zeros(self.n_bins, dtype=np.int64)
        issues = np.zeros(self.n_issues, dtype=np.int64)
        rows = 0
        for s in live:
            bins += s.batch_bins
            bins += np.asarray(s.row_bins, dtype=np.int64)
            issues += s.batch_issues
            issues += np.asarray(s.row_issues, dtype=np.int64)
            rows += s.rows
        self._cut(live)
        return Snapshot(rows, bins, issues, self._sample(live, rows))

    def _sample(self, live: list[_Slot], total: int) -> FloatArray:
        parts = [s for s in live if s.res is not None and s.rows]
        if not parts:
            return np.empty((0, len(self.num_plans)))
        m = min(self.res_rows, total)
        # Slot i's share is m * rows_i / total rows: its integer part always, one more row with
        # probability equal to the fractional part (systematic sampling over the remainders,
        # exactly m rows in all), so every row is in the sample with probability m / total.
        shares = [m * s.rows for s in parts]
        take = [sh // total for sh in shares]
        extra = m - sum(take)
        if extra:
            point = int(self.rng.integers(total))
            low = 0
            for i, sh in enumerate(shares):
                high = low + sh % total
                # slot i gets a row when some point + j * total (j < extra) falls in [low, high)
                j = max(0, -(-(low - point) // total))
                if j < extra and point + j * total < high:
                    take[i] += 1
                low = high
        chunks = []
        for s, k in zip(parts, take, strict=True):
            kept = s.kept()
            res = s.res
            if res is None:
                continue
            # _cut keeps at least ceil(S * rows_i / rows of this and newer slots) >= k rows
            k = min(k, kept)
            if k == kept:
                chunks.append(res[:kept])
            elif k:
                chunks.append(res[self.rng.choice(kept, k, replace=False)])
        if len(chunks) == 1:
            return chunks[0].copy()  # the open reservoir changes after the tracker's lock is released
        return np.concatenate(chunks) if chunks else np.empty((0, len(self.num_plans)))

    def cumulative(self) -> tuple[int, I64, I64]:
        bins = self.retired_bins.copy()
        issues = self.retired_issues.copy()
        rows = self.retired_rows
        for s in self.slots:
            if s.epoch != _UNUSED:
                bins += s.batch_bins
                bins += np.asarray(s.row_bins, dtype=np.int64)
                issues += s.batch_issues
                issues += np.asarray(s.row_issues, dtype=np.int64)
                rows += s.rows
        return rows, bins, issues


def _as_float(col: Any) -> tuple[FloatArray, int, int]:
    """(float64 values with NaN for missing/mismatched, n missing, n type mismatches)."""
    arr = col if isinstance(col, np.ndarray) else np.asarray(col, dtype=object)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64, copy=False).ravel(), 0, 0
    out = np.empty(arr.size, dtype=np.float64)
    missing = mismatch = 0
    for i, v in enumerate(arr.ravel().tolist()):
        if v is None:
            out[i] = math.nan
            missing += 1
        elif isinstance(v, (str, bytes)):
            out[i] = math.nan
            mismatch += 1
        else:
            try:
                out[i] = float(v)
            except (TypeError, ValueError, OverflowError):
                out[i] = math.nan
                mismatch += 1
    return out, missing, mismatch


def _codes(p: _Plan, col: Any) -> tuple[npt.NDArray[np.intp], int, int, int, int]:
    vals = col.tolist() if isinstance(col, np.ndarray) else list(col)
    codes = p.codes
    other = p.n_bins - 1
    out: list[int] = []
    missing = nan = unseen = mismatch = 0
    for v in vals:
        t = type(v)
        if t is str:
            c = codes.get(v)
        elif v is None:
            missing += 1
            continue
        elif t is float and v != v:
            nan += 1
            continue
        else:
            try:
                c = codes.get(v)
                if c is None and p.kind == 1:
                    c = codes.get(str(v))
            except TypeError:
                mismatch += 1
                continue
        if c is None:
            if p.kind == 2:
                mismatch += 1
                continue
            c = other
            unseen += 1
        out.append(c)
    return np.asarray(out, dtype=np.intp), missing, nan, unseen, mismatch
