"""DriftTracker: streaming drift and data-quality state of one model against its reference.

Usage::

    profile = ReferenceProfile.load("reference.json")
    tracker = DriftTracker(profile, window_s=300, sub_windows=5)
    tracker.update({"age": 41, "region": "eu"})          # one row (dict, list, 1-D numpy)
    tracker.update(batch_df)                              # a batch (DataFrame, 2-D numpy, dict of arrays)
    tracker.update_predictions(scores=probas[:, 1])
    results = tracker.evaluate()                          # {feature: DriftResult}
    tracker.register_metrics(meter, {"ml.model.name": "churn", "ml.model.version": "3"})

``update`` and ``update_predictions`` never raise: input that cannot be used is counted in the
data-quality counters (per feature) or, when a whole call is unusable (wrong length, unknown
type), in :func:`otel_ml._internal.selftelemetry.dropped`. All methods are thread-safe (one
lock per tracker, held only for the counting).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from otel_ml._internal import selftelemetry
from otel_ml._internal.drift import methods as _methods
from otel_ml._internal.drift.profile import FeatureKind, ReferenceProfile
from otel_ml._internal.drift.result import ISSUES, DriftResult, DriftStatus, FeatureQuality
from otel_ml._internal.drift.window import FeatureGroup

_SIGNAL = "drift"


class DriftTracker:
    """Windowed drift (PSI, JS, Wasserstein, KS, chi²) and data quality for one model.

    ``window_s``: length of the sliding window evaluated; ``sub_windows``: how many tumbling
    sub-windows it slides by (1 = tumbling). ``min_samples``: below this many valid current
    values a feature's status is INSUFFICIENT_DATA. ``reservoir_size``: raw values kept per
    window and numeric feature for KS/Wasserstein (memory: 8 bytes x features x this).
    ``methods``: override the per-kind defaults of :data:`methods.DEFAULT_METHODS` (methods
    not applicable to a kind are skipped for it). ``psi_warning`` / ``psi_drift``: the
    large-window PSI thresholds (see :mod:`otel_ml._internal.drift.methods` for the
    size-aware rule).
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        *,
        window_s: float = 300.0,
        sub_windows: int = 5,
        min_samples: int = 100,
        reservoir_size: int = 2000,
        methods: Sequence[str] | None = None,
        psi_warning: float = 0.1,
        psi_drift: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
    ) -> None:
        if not isinstance(profile, ReferenceProfile):
            raise TypeError(f"profile must be a ReferenceProfile, not {type(profile).__name__}")
        if not (isinstance(window_s, (int, float)) and window_s > 0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if not isinstance(sub_windows, int) or sub_windows < 1:
            raise ValueError(f"sub_windows must be an int >= 1, got {sub_windows!r}")
        if not isinstance(min_samples, int) or min_samples < 1:
            raise ValueError(f"min_samples must be an int >= 1, got {min_samples!r}")
        if not isinstance(reservoir_size, int) or reservoir_size < 10:
            raise ValueError(f"reservoir_size must be an int >= 10, got {reservoir_size!r}")
        if not 0 < psi_warning <= psi_drift:
            raise ValueError("need 0 < psi_warning <= psi_drift")
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds")
        if methods is not None:
            _methods.validate(methods)
        self.profile = profile
        self.min_samples = min_samples
        self.psi_warning = psi_warning
        self.psi_drift = psi_drift
        self._methods = tuple(methods) if methods is not None else None
        self._lock = threading.Lock()
        kw: dict[str, Any] = dict(window_s=float(window_s), sub_windows=sub_windows,
                                  reservoir_size=reservoir_size, clock=clock)
        self._features = FeatureGroup(profile.features, seed=seed, **kw)
        self._predictions = (FeatureGroup([profile.prediction], seed=seed + 1, **kw)
                             if profile.prediction is not None else None)
        self._n_features = len(profile.features)
        self._clock = clock
        self._eval_cache: tuple[float, dict[str, DriftResult]] | None = None

    @property
    def feature_names(self) -> list[str]:
        return list(self._features.names)

    # --- updates (never raise) --------------------------------------------------------------

    def update(self, features: Any) -> None:
        """Count one row or a batch of rows. Never raises; unusable input is counted."""
        try:
            self._update(self._features, features)
        except Exception as exc:
            selftelemetry.dropped("drift_update_error", _SIGNAL, 1, detail=repr(exc)[:200])

    def update_predictions(self, scores: Any = None, classes: Any = None) -> None:
        """Count prediction scores (numeric reference) or classes (categorical reference)."""
        try:
            group = self._predictions
            if group is None:
                selftelemetry.dropped("drift_no_prediction_reference", _SIGNAL, 1)
                return
            numeric = group.features[0].kind is FeatureKind.NUMERIC
            values = scores if numeric else classes
            if values is None:
                selftelemetry.dropped("drift_prediction_kind_mismatch", _SIGNAL, 1)
                return
            arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
            if arr.ndim == 0:
                with self._lock:
                    group.update_row([arr.item()], False)
            elif arr.ndim == 1:
                with self._lock:
                    group.update_columns([arr], arr.shape[0])
            else:
                selftelemetry.dropped("drift_bad_shape", _SIGNAL, 1)
        except Exception as exc:
            selftelemetry.dropped("drift_update_error", _SIGNAL, 1, detail=repr(exc)[:200])

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
                    selftelemetry.dropped("drift_wrong_length", _SIGNAL, 1)
                    return
                row = data.tolist()
                with self._lock:
                    group.update_row(row, False)
            elif data.ndim == 2:
                if data.shape[1] != nf:
                    selftelemetry.dropped("drift_wrong_length", _SIGNAL, data.shape[0])
                    return
                with self._lock:
                    group.update_columns([data[:, i] for i in range(nf)], data.shape[0])
            else:
                selftelemetry.dropped("drift_bad_shape", _SIGNAL, 1)
            return
        if isinstance(data, (list, tuple)):
            if data and isinstance(data[0], (list, tuple, np.ndarray, dict)):
                for row in data:  # a list of rows
                    self._update(group, row)
                return
            if len(data) != nf:
                selftelemetry.dropped("drift_wrong_length", _SIGNAL, 1)
                return
            with self._lock:
                group.update_row(data, False)
            return
        if hasattr(data, "columns") and hasattr(data, "__len__"):  # pandas DataFrame
            n = len(data)
            cols: list[Any] = []
            colset = {str(c): c for c in data.columns}
            cols = []
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
        selftelemetry.dropped("drift_unsupported_input", _SIGNAL, 1, detail=type(data).__name__)

    def _update_dict_of_columns(self, group: FeatureGroup, data: Mapping[Any, Any]) -> None:
        cols: list[Any] = []
        n = -1
        for name in group.names:
            c = data.get(name)
            if c is None:
                cols.append(None)
                continue
            arr = c.to_numpy() if hasattr(c, "to_numpy") else (
                c if isinstance(c, np.ndarray) else np.asarray(c, dtype=object))
            arr = arr.ravel()
            if n >= 0 and arr.shape[0] != n:
                selftelemetry.dropped("drift_wrong_length", _SIGNAL, max(n, arr.shape[0]))
                return
            n = arr.shape[0]
            cols.append(arr)
        if n < 0:
            selftelemetry.dropped("drift_no_known_feature", _SIGNAL, 1)
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
                n = int(counts.sum())
                if plan.num_col >= 0 and snap.sample.size:
                    col = snap.sample[:, plan.num_col]
                    sample = col[~np.isnan(col)]
                else:
                    sample = np.empty(0)
                if n < self.min_samples:
                    out[f.name] = DriftResult(f.name, f.kind, n, {}, DriftStatus.INSUFFICIENT_DATA,
                                              sample_n=int(sample.size))
                    continue
                wd = _methods.WindowData(f, counts, sample)
                scores: dict[str, float] = {}
                names = self._methods or _methods.DEFAULT_METHODS[f.kind]
                for m in names:
                    if m in _methods.available(f.kind):
                        scores.update(_methods.get(m, f.kind)(wd))
                psi = scores.get("psi")
                if psi is None:
                    psi = _methods.psi(counts / n, np.asarray(f.proportions))
                warn, drift = _methods.psi_thresholds(f, n, self.psi_warning, self.psi_drift)
                out[f.name] = DriftResult(f.name, f.kind, n, scores, _methods.status_for(psi, warn, drift),
                                          warn, drift, int(sample.size))
        return out

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

    def register_metrics(self, meter: Any, attributes: Mapping[str, str] | None = None) -> None:
        """Create observable instruments on ``meter`` (see :mod:`otel_ml._internal.drift.otel`)."""
        from otel_ml._internal.drift.otel import register_drift_metrics

        register_drift_metrics(self, meter, dict(attributes or {}))
