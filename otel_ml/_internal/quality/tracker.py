"""OutcomeTracker: joins delayed ground truth to recent predictions and scores the model.

Usage::

    outcomes = OutcomeTracker("classification", ttl_s=3600)
    outcomes.remember(request_id, predicted="churn", score=0.83)   # at inference
    outcomes.record(request_id, actual="stay")                      # when the label arrives
    report = outcomes.evaluate()                                    # QualityReport over the window
    outcomes.register_metrics(meter, {"ml.model.name": "churn"})

Nothing here raises into the caller: unknown or expired ids are counted as
``ml.outcomes.unmatched`` (``otel_ml.reason`` = unknown | expired; an id evicted because the
store was full also reads as expired), unusable values through ``selftelemetry.dropped``.
State is windowed like drift (a ring of ``sub_windows`` tumbling sub-windows over
``window_s``) and bounded: at most ``max_classes`` distinct labels (the rest become
``other``), ``score_bins`` bins per score histogram, ``max_pending`` remembered predictions.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from otel_ml._internal import names, selftelemetry
from otel_ml._internal.quality.report import QualityReport, classification_report, regression_report
from otel_ml._internal.quality.store import PendingStore

_SIGNAL = "outcomes"
_EPS = float(np.finfo(np.float64).eps)
TASKS = ("classification", "regression")


class _Slot:
    __slots__ = ("confusion", "epoch", "neg", "pos", "reg")

    def __init__(self, score_bins: int) -> None:
        self.epoch = -1
        self.confusion: dict[tuple[Any, Any], int] = {}
        self.pos: npt.NDArray[np.int64] = np.zeros(score_bins, dtype=np.int64)
        self.neg: npt.NDArray[np.int64] = np.zeros(score_bins, dtype=np.int64)
        self.reg = [0, 0.0, 0.0, 0.0]  # n, sum |e|, sum e², sum |e|/max(|y|, eps)

    def reset(self, epoch: int) -> None:
        self.epoch = epoch
        self.confusion.clear()
        self.pos.fill(0)
        self.neg.fill(0)
        self.reg[:] = [0, 0.0, 0.0, 0.0]


class OutcomeTracker:
    """Windowed accuracy/precision/recall/F1/ROC AUC (classification) or MAE/RMSE/MAPE (regression).

    ``score``: the model's score for ``positive_label`` (a probability in [0, 1]; values outside
    are clipped into the edge bins, which keeps the AUC bound valid). ``score_bins``: equal-width
    bins over [0, 1] for ROC AUC (see :mod:`otel_ml._internal.quality.report` for the bound).
    """

    def __init__(
        self,
        task: str = "classification",
        *,
        max_pending: int = 100_000,
        ttl_s: float = 3600.0,
        window_s: float = 3600.0,
        sub_windows: int = 6,
        score_bins: int = 100,
        max_classes: int = 64,
        positive_label: Any = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        for name, v, lo in (("max_pending", max_pending, 1), ("sub_windows", sub_windows, 1),
                            ("score_bins", score_bins, 2), ("max_classes", max_classes, 2)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        for name, f in (("ttl_s", ttl_s), ("window_s", window_s)):
            if not isinstance(f, (int, float)) or not f > 0 or not math.isfinite(f):
                raise ValueError(f"{name} must be a positive number of seconds, got {f!r}")
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds")
        self.task = task
        self.positive_label = positive_label
        self.score_bins = score_bins
        self.max_classes = max_classes
        self._clock = clock
        self._lock = threading.Lock()
        self._store = PendingStore(max_pending, float(ttl_s), clock)
        self._sub_s = float(window_s) / sub_windows
        self._slots = [_Slot(score_bins) for _ in range(sub_windows)]
        self._classes: set[Any] = set()
        self._outcomes: dict[tuple[str, str], int] = {}  # cumulative, exported as ml.outcomes
        self._unmatched = {"unknown": 0, "expired": 0}
        self._cache: tuple[float, QualityReport] | None = None

    # --- ingest (never raises) -------------------------------------------------------------

    def remember(self, prediction_id: Hashable, predicted: Any, score: float | None = None) -> None:
        """Keep a prediction until its ground truth arrives (or ``ttl_s`` passes)."""
        try:
            hash(prediction_id)
            if score is not None:
                score = float(score)
                if math.isnan(score):
                    score = None
            with self._lock:
                before = self._store.evicted
                self._store.put(prediction_id, predicted, score)
                evicted = self._store.evicted - before
            if evicted:
                selftelemetry.dropped("outcome_store_full", _SIGNAL, evicted)
        except Exception as exc:
            selftelemetry.dropped("outcome_bad_prediction", _SIGNAL, 1, detail=repr(exc)[:200])

    def record(self, prediction_id: Hashable, actual: Any) -> None:
        """Join ``actual`` to the remembered prediction and count it."""
        with self._lock:
            self._record(prediction_id, actual, self._slot())

    def record_many(self, prediction_ids: Iterable[Hashable], actuals: Iterable[Any]) -> None:
        try:
            ids = list(prediction_ids)
            acts = list(actuals)
        except Exception as exc:
            selftelemetry.dropped("outcome_bad_input", _SIGNAL, 1, detail=repr(exc)[:200])
            return
        if len(ids) != len(acts):
            selftelemetry.dropped("outcome_length_mismatch", _SIGNAL, max(len(ids), len(acts)))
            return
        with self._lock:
            slot = self._slot()
            for i, a in zip(ids, acts, strict=True):
                self._record(i, a, slot)

    def _record(self, prediction_id: Hashable, actual: Any, slot: _Slot) -> None:
        try:
            entry, reason = self._store.pop(prediction_id)
        except TypeError:  # unhashable id
            self._unmatched["unknown"] += 1
            return
        if entry is None:
            self._unmatched[reason] += 1
            return
        try:
            if self.task == "regression":
                y = float(actual)
                yhat = float(entry.predicted)
                if not (math.isfinite(y) and math.isfinite(yhat)):
                    raise ValueError("non-finite value")
                e = abs(y - yhat)
                r = slot.reg
                r[0] += 1
                r[1] += e
                r[2] += e * e
                r[3] += e / max(abs(y), _EPS)
                key = ("", "")
            else:
                if actual is None or (isinstance(actual, float) and math.isnan(actual)):
                    raise ValueError("missing label")
                p = self._label(entry.predicted)
                a = self._label(actual)
                slot.confusion[(p, a)] = slot.confusion.get((p, a), 0) + 1
                if entry.score is not None:
                    s = min(max(entry.score, 0.0), 1.0)
                    b = min(int(s * self.score_bins), self.score_bins - 1)
                    if actual == self.positive_label:
                        slot.pos[b] += 1
                    else:
                        slot.neg[b] += 1
                key = (str(p), str(a))
            self._outcomes[key] = self._outcomes.get(key, 0) + 1
        except Exception as exc:
            selftelemetry.dropped("outcome_bad_value", _SIGNAL, 1, detail=repr(exc)[:200])

    def _label(self, v: Any) -> Any:
        if v in self._classes:
            return v
        hash(v)
        if len(self._classes) < self.max_classes:
            self._classes.add(v)
            return v
        return names.OVERFLOW_VALUE

    def _slot(self) -> _Slot:
        epoch = int(self._clock() // self._sub_s)
        s = self._slots[epoch % len(self._slots)]
        if s.epoch != epoch:
            s.reset(epoch)
        return s

    # --- reading ---------------------------------------------------------------------------

    def evaluate(self) -> QualityReport:
        """Quality over the live sub-windows of the window."""
        with self._lock:
            now_epoch = int(self._clock() // self._sub_s)
            live = [s for s in self._slots if now_epoch - len(self._slots) < s.epoch <= now_epoch]
            confusion: dict[tuple[Any, Any], int] = {}
            pos = np.zeros(self.score_bins, dtype=np.int64)
            neg = np.zeros(self.score_bins, dtype=np.int64)
            reg = [0, 0.0, 0.0, 0.0]
            for s in live:
                for k, v in s.confusion.items():
                    confusion[k] = confusion.get(k, 0) + v
                pos += s.pos
                neg += s.neg
                reg = [a + b for a, b in zip(reg, s.reg, strict=True)]
        if self.task == "regression":
            return regression_report(int(reg[0]), reg[1], reg[2], reg[3])
        has_scores = bool(pos.any() or neg.any())
        return classification_report(confusion, self.positive_label,
                                     pos if has_scores else None, neg if has_scores else None)

    def evaluate_cached(self, max_age_s: float = 1.0) -> QualityReport:
        now = self._clock()
        c = self._cache
        if c is not None and 0 <= now - c[0] < max_age_s:
            return c[1]
        rep = self.evaluate()
        self._cache = (now, rep)
        return rep

    @property
    def pending(self) -> int:
        return len(self._store)

    @property
    def unmatched(self) -> dict[str, int]:
        """Cumulative ``record`` calls that found no live prediction, by reason."""
        with self._lock:
            return dict(self._unmatched)

    @property
    def evicted(self) -> int:
        return self._store.evicted

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Cumulative joined outcomes by (predicted class, actual class) as strings."""
        with self._lock:
            return dict(self._outcomes)

    def register_metrics(self, meter: Any, attributes: Mapping[str, str] | None = None) -> None:
        from otel_ml._internal.quality.otel import register_quality_metrics

        register_quality_metrics(self, meter, dict(attributes or {}))
