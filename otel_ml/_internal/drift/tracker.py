"""DriftTracker: streaming drift and data-quality state of one model against its reference.

Usage::

    profile = ReferenceProfile.load("reference.json")
    tracker = DriftTracker(profile, policy=DriftPolicy(window_s=300, sub_windows=5))
    tracker.update({"age": 41, "region": "eu"})          # one row (dict, list, 1-D numpy)
    tracker.update(batch_df)                              # a batch (DataFrame, 2-D numpy, dict of arrays)
    tracker.update_predictions(probas.max(axis=1))        # values of the profile's prediction_kind
    results = tracker.evaluate()                          # {feature: DriftResult}

The tracker only holds state; turning it into OpenTelemetry instruments is the wiring module's
job (it reads :meth:`evaluate_cached`, :meth:`cumulative_bins`, ``data_quality(cumulative=True)``
and the profile's proportions).

``update`` and ``update_predictions`` never raise: input that cannot be used is counted in the
data-quality counters (per feature) or, when a whole call is unusable (wrong length, unknown
type), in the tracker's :class:`~otel_ml._internal.selftelemetry.SelfTelemetry` registry. All
methods are thread-safe (one lock per tracker, held only for the counting).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from otel_ml._internal import forksafe
from otel_ml._internal import selftelemetry as _selftelemetry
from otel_ml._internal.clock import guarded
from otel_ml._internal.drift import methods as _methods
from otel_ml._internal.drift.features import FeatureProfile, PredictionKind, ProfileLike
from otel_ml._internal.drift.policy import DriftPolicy
from otel_ml._internal.drift.result import ISSUES, STATUS_SCORE_KEYS, DriftResult, DriftStatus, FeatureQuality
from otel_ml._internal.drift.window import FeatureGroup

_SIGNAL = "drift"


class DriftTracker:
    """Windowed drift (PSI, JS, Wasserstein, KS, chi²) and data quality for one model.

    Args:
        profile: the reference (a :class:`~otel_ml._internal.drift.profile.ReferenceProfile`).
        policy: methods, status rule, thresholds, window and sample size; default ``DriftPolicy()``.
        clock: seconds, for the sliding window (``time.monotonic``; pass a fixed or replayed one
            to evaluate recorded traffic).
        seed: seed of the reservoir sampling.
        selftelemetry: where unusable input is counted; default the process's registry.
    """

    def __init__(
        self,
        profile: ProfileLike,
        *,
        policy: DriftPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        selftelemetry: _selftelemetry.SelfTelemetry | None = None,
    ) -> None:
        feats = getattr(profile, "features", None)
        pred = getattr(profile, "prediction", None)
        if (not isinstance(feats, (tuple, list)) or not all(isinstance(f, FeatureProfile) for f in feats)
                or not (pred is None or isinstance(pred, FeatureProfile))):
            raise TypeError(f"profile must be a ReferenceProfile, not {type(profile).__name__}")
        if policy is None:
            policy = DriftPolicy()
        elif not isinstance(policy, DriftPolicy):
            raise TypeError(f"policy must be a DriftPolicy, not {type(policy).__name__}")
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        if selftelemetry is None:
            selftelemetry = _selftelemetry.DEFAULT
        elif not isinstance(selftelemetry, _selftelemetry.SelfTelemetry):
            raise TypeError(f"selftelemetry must be a SelfTelemetry registry, not {type(selftelemetry).__name__}")
        self.profile = profile
        self.policy = policy
        self._telemetry = selftelemetry
        clock = guarded(clock, selftelemetry)
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")
        kw: dict[str, Any] = dict(window_s=float(policy.window_s), sub_windows=policy.sub_windows,
                                  sample_size=policy.sample_size, clock=clock)
        self._features = FeatureGroup(feats, seed=seed, **kw)
        self._predictions = FeatureGroup([pred], seed=seed + 1, **kw) if pred is not None else None
        self._n_features = len(feats)
        self._clock = clock
        self._eval_cache: tuple[float, dict[str, DriftResult]] | None = None

    @property
    def prediction_kind(self) -> PredictionKind | None:
        """What :meth:`update_predictions` takes: the profile's prediction kind (None: no predictions)."""
        return self.profile.prediction_kind if self._predictions is not None else None

    @property
    def feature_names(self) -> list[str]:
        return list(self._features.names)

    # --- updates (never raise) --------------------------------------------------------------

    def update(self, features: Any) -> None:
        """Count one row or a batch of rows. Never raises; unusable input is counted."""
        try:
            self._update(self._features, features)
        except Exception as exc:
            self._telemetry.guard(exc, _SIGNAL, "drift_update_error")

    def update_predictions(self, values: Any) -> None:
        """Count predictions of the profile's :attr:`prediction_kind` (one value or a 1-D batch).

        The caller picks the values of that kind (top-class confidences, positive-class scores,
        class labels or regression outputs). Never raises; unusable input is counted.
        """
        try:
            group = self._predictions
            if group is None:
                self._telemetry.dropped("drift_no_prediction_reference", _SIGNAL, 1)
                return
            try:
                arr = values if isinstance(values, np.ndarray) else np.asarray(values)
            except (TypeError, ValueError, MemoryError):  # ragged nesting, or [range(10**12)] expanded
                self._telemetry.dropped("drift_bad_shape", _SIGNAL, 1)
                return
            if arr.ndim == 0:
                with self._lock:
                    group.update_row([arr.item()], False)
            elif arr.ndim == 1 and arr.shape[0] == 1:
                value = arr.tolist()[0]
                with self._lock:
                    group.update_row([value], False)
            elif arr.ndim == 1:
                with self._lock:
                    group.update_columns([arr], arr.shape[0])
            else:
                self._telemetry.dropped("drift_bad_shape", _SIGNAL, 1)
        except Exception as exc:
            self._telemetry.guard(exc, _SIGNAL, "drift_update_error")

    def _update(self, group: FeatureGroup, data: Any) -> None:
        nf = self._n_features
        if isinstance(data, dict):
            first = next(iter(data.values()), None)  # {} is a row with every feature missing
            if isinstance(first, (np.ndarray, list, tuple)) or hasattr(first, "to_numpy"):
                self._update_dict_of_columns(group, data)
            else:
                with self._lock:
                    group.update_row(data, True)
            return
        if isinstance(data, np.ndarray):
            if data.ndim == 1:
                if data.shape[0] != nf:
                    self._telemetry.dropped("drift_wrong_length", _SIGNAL, 1)
                    return
                row = data.tolist()
                with self._lock:
                    group.update_row(row, False)
            elif data.ndim == 2:
                if data.shape[1] != nf:
                    self._telemetry.dropped("drift_wrong_length", _SIGNAL, data.shape[0])
                    return
                if data.shape[0] == 1:
                    # One row - an online request: the per-row path costs ~1/10 of 30 numpy column passes.
                    row = data[0].tolist()
                    with self._lock:
                        group.update_row(row, False)
                    return
                with self._lock:
                    group.update_columns([data[:, i] for i in range(nf)], data.shape[0])
            else:
                self._telemetry.dropped("drift_bad_shape", _SIGNAL, 1)
            return
        if isinstance(data, (list, tuple)):
            if data and isinstance(data[0], (list, tuple, np.ndarray, dict)):
                for row in data:  # a list of rows
                    self._update(group, row)
                return
            if len(data) != nf:
                self._telemetry.dropped("drift_wrong_length", _SIGNAL, 1)
                return
            with self._lock:
                group.update_row(data, False)
            return
        if hasattr(data, "columns") and hasattr(data, "__len__"):  # pandas DataFrame
            n = len(data)
            colset = {str(c): c for c in data.columns}
            cols: list[Any] = []
            for name in group.names:
                c = colset.get(name)
                if c is None:
                    cols.append(None)
                    continue
                s = data[c]
                cols.append(s.to_numpy() if s.dtype.kind in "fiub" else
                            s.astype(object).where(s.notna(), None).to_numpy())
            with self._lock:
                group.update_columns(cols, n)
            return
        if hasattr(data, "index") and hasattr(data, "to_dict"):  # pandas Series = one row
            self._update(group, {str(k): v for k, v in data.to_dict().items()})
            return
        self._telemetry.dropped("drift_unsupported_input", _SIGNAL, 1, detail=type(data).__name__)

    def _update_dict_of_columns(self, group: FeatureGroup, data: Mapping[Any, Any]) -> None:
        cols: list[Any] = []
        n = -1
        for name in group.names:
            c = data.get(name)
            if c is None:
                cols.append(None)
                continue
            try:
                arr = c.to_numpy() if hasattr(c, "to_numpy") else (
                    c if isinstance(c, np.ndarray) else np.asarray(c, dtype=object))
            except (ValueError, MemoryError):  # ragged, or numpy expanding e.g. [range(10**12)]
                self._telemetry.dropped("drift_bad_shape", _SIGNAL, 1)
                return
            arr = arr.ravel()
            if n >= 0 and arr.shape[0] != n:
                self._telemetry.dropped("drift_wrong_length", _SIGNAL, max(n, arr.shape[0]))
                return
            n = arr.shape[0]
            cols.append(arr)
        if n < 0:
            self._telemetry.dropped("drift_no_known_feature", _SIGNAL, 1)
            return
        with self._lock:
            group.update_columns(cols, n)

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(self) -> dict[str, DriftResult]:
        """Drift of every feature (and ``__prediction__`` if profiled) over the current window."""
        with self._lock:
            snaps = [(g, g.window()) for g in self._groups()]
        out: dict[str, DriftResult] = {}
        for g, snap in snaps:
            for i, f in enumerate(g.features):
                plan = g.plans[i]
                counts = snap.bins[plan.offset:plan.offset + plan.n_bins]
                if plan.num_col >= 0 and snap.sample.size:
                    col = snap.sample[:, plan.num_col]
                    sample = col[~np.isnan(col)]
                else:
                    sample = np.empty(0)
                out[f.name] = self._judge(f, counts, sample)
        return out

    def _judge(self, f: FeatureProfile, counts: npt.NDArray[np.int64], sample: npt.NDArray[np.float64]
               ) -> DriftResult:
        policy = self.policy
        n = int(counts.sum())
        status_method = policy.status_method
        # PSI stands in where the status method cannot judge: not defined for the kind, or a
        # sample too small for it (a mostly-missing feature); the result says which decided.
        if status_method not in _methods.available(f.kind) or (
                status_method in _methods.SAMPLE_METHODS and sample.size < policy.min_samples):
            status_method = "psi"
        if n < policy.min_samples:
            return DriftResult(f.name, f.kind, n, {}, DriftStatus.INSUFFICIENT_DATA, status_method,
                               sample_n=int(sample.size))
        wd = _methods.WindowData(f, counts, sample)
        scores: dict[str, float] = {}
        to_run = policy.methods_for(f.kind)
        for m in (*to_run, *(() if status_method in to_run else (status_method,))):
            scores.update(_methods.get(m, f.kind)(wd))
        warning, drift = policy.thresholds(status_method)
        warning = max(warning, _methods.significance_floor(status_method, f, n, int(sample.size),
                                                           policy.warning_alpha))
        drift = max(drift, _methods.significance_floor(status_method, f, n, int(sample.size),
                                                       policy.drift_alpha))
        score = scores[STATUS_SCORE_KEYS[status_method]]
        return DriftResult(f.name, f.kind, n, scores, _methods.status_for(score, warning, drift),
                           status_method, warning, drift, int(sample.size))

    def evaluate_cached(self, max_age_s: float = 1.0) -> dict[str, DriftResult]:
        """:meth:`evaluate`, reused for ``max_age_s`` (one evaluation per metrics collection)."""
        now = self._clock()
        cache = self._eval_cache
        if cache is not None and 0 <= now - cache[0] < max_age_s:
            return cache[1]
        res = self.evaluate()
        self._eval_cache = (now, res)
        return res

    def data_quality(self, *, cumulative: bool = False) -> dict[str, FeatureQuality]:
        """Per-feature issue counts and rates over the window, or since start."""
        out: dict[str, FeatureQuality] = {}
        with self._lock:
            states = [(g, g.cumulative() if cumulative else
                       (lambda s: (s.rows, s.bins, s.issues))(g.window())) for g in self._groups()]
        for g, (rows, bins, issues) in states:
            for i, f in enumerate(g.features):
                plan = g.plans[i]
                iss = issues[i * len(ISSUES):(i + 1) * len(ISSUES)]
                out[f.name] = FeatureQuality(
                    f.name, rows, int(bins[plan.offset:plan.offset + plan.n_bins].sum()),
                    {k: int(v) for k, v in zip(ISSUES, iss, strict=True)})
        return out

    def cumulative_bins(self) -> dict[str, list[int]]:
        """Bin counts since start per feature (what ``ml.feature.bin.count`` exports)."""
        with self._lock:
            states = [(g, g.cumulative()) for g in self._groups()]
        return {f.name: states_bins[p.offset:p.offset + p.n_bins].tolist()
                for g, (_, states_bins, _) in states for f, p in zip(g.features, g.plans, strict=True)}

    def _groups(self) -> list[FeatureGroup]:
        return [self._features] + ([self._predictions] if self._predictions is not None else [])
