"""OutcomeTracker: joins delayed ground truth to remembered predictions and scores the model.

Usage::

    outcomes = OutcomeTracker("classification", ttl_s=3 * 86400)
    outcomes.remember(request_id, predicted="churn", score=0.83)         # at inference
    outcomes.remember_many(ids, predicted=classes, scores=proba[:, 1])   # or a batch, row by row
    outcomes.record(request_id, actual="stay")                           # when the label arrives
    outcomes.record_many(ids, actuals)                                   # or many labels at once
    report = outcomes.evaluate()                                         # QualityReport over the window

The tracker only holds state. A wiring module turns it into instruments: ``outcome_counts()``
(cumulative joined outcomes by predicted x actual class, ``ml.outcomes``), ``unmatched``
(``ml.outcomes.unmatched`` by reason) and ``evaluate_cached()`` (``ml.quality.score``).

Windows (``window_by``)
    Quality is computed over ``window_s``, a ring of ``sub_windows`` tumbling sub-windows.

    * ``"label_time"`` (default): a joined outcome counts in the sub-window in which its label
      arrived. The window answers "how good were the labels we got in the last hour".
    * ``"prediction_time"``: it counts in the sub-window in which the prediction was made. The
      window answers "how good were the predictions made in the last hour (day)". A label that
      arrives after its prediction's sub-window has left the window is in the cumulative counters
      but in no window; such labels are counted in ``late_outside_window``.

    Either way the exported cumulative counters (``outcome_counts()``) advance when the label
    arrives: a Prometheus counter cannot be back-dated.

    ``clock`` drives every window and the TTL, so tests and replays of historical traffic are
    deterministic with a fake clock.

Retention and memory budget
    Predictions wait at most ``ttl_s`` and at most ``max_pending`` of them are kept (the oldest
    are evicted, counted as ``outcome_store_full``); see :mod:`otel_ml._internal.quality.store`
    for the columnar layout. Budget: **about 150 MiB per 1 M pending predictions, id strings
    included** (158 B each, of which 62 B is an id like ``"req-000000001"``, kept alive by the
    tracker; 96 B without it), 175 MiB of RSS growth. Same run, same entries: a plain
    ``dict[str, tuple[float, str, float]]`` takes 195 MiB (216 MiB RSS), the previous
    OrderedDict store 250 MiB. Measured by
    ``otel_ml._internal.bench.outcomes.measure_pending_memory()`` (CPython 3.11, numpy 2.4,
    1 M pending, tracemalloc). Size ``max_pending`` from it: a 3-day TTL at 10 predictions/s is
    2.6 M pending, ~390 MiB. Longer ids cost their own length on top.

Never raises into the caller
    Unknown or expired ids are counted in ``unmatched`` (``unknown`` | ``expired``; an id evicted
    because the store was full, or swept after ``ttl_s``, reads as ``expired``). Everything else
    that cannot be used is counted on the :class:`SelfTelemetry` registry (signal ``outcomes``)
    and logged once per reason:

    * ``prediction_ids_length_mismatch``: a batch whose columns differ in length (nothing kept);
    * ``duplicate_prediction_id``: an id repeated within one ``remember_many`` batch (the first
      row is kept; an id remembered again by a later call replaces the earlier prediction);
    * ``unhashable_prediction_id``: an id that cannot be a dict key (a label for one is also
      ``unknown``);
    * ``outcome_bad_input``: a batch argument that is not a 1-D sequence;
    * ``outcome_bad_prediction``: a predicted class of None/NaN/unhashable, a regression value
      that is not a finite number (the prediction is not kept);
    * ``outcome_bad_score`` / ``outcome_bad_confidence``: not a number (kept as missing);
    * ``outcome_bad_value``: ground truth that is None, NaN, unhashable or (regression) not a
      finite number. The prediction stays pending, so a corrected label can still join;
    * ``outcome_store_full``: predictions evicted to respect ``max_pending``;
    * ``internal_error``: a bug in otel_ml, caught.

State is bounded: the first ``max_classes`` distinct labels get their own code (the positive
label always among them) and later ones share ``other``; ``score_bins`` bins per score
histogram; ``max_pending`` predictions.
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from otel_ml._internal import forksafe
from otel_ml._internal import selftelemetry as _selftelemetry
from otel_ml._internal.bounded import read_bounded
from otel_ml._internal.clock import guarded
from otel_ml._internal.quality.codes import BAD, NEW, ClassCodes, usable
from otel_ml._internal.quality.report import QualityReport, classification_report, regression_report
from otel_ml._internal.quality.store import Joined, PendingStore
from otel_ml._internal.quality.window import OutcomeWindow, SubWindow
from otel_ml._internal.selftelemetry import SelfTelemetry

TASKS = ("classification", "regression")
WINDOW_BY = ("label_time", "prediction_time")

_SIGNAL = "outcomes"
LENGTH_MISMATCH = "prediction_ids_length_mismatch"
DUPLICATE_ID = "duplicate_prediction_id"
UNHASHABLE_ID = "unhashable_prediction_id"
BAD_INPUT = "outcome_bad_input"
BAD_PREDICTION = "outcome_bad_prediction"
BAD_SCORE = "outcome_bad_score"
BAD_CONFIDENCE = "outcome_bad_confidence"
BAD_VALUE = "outcome_bad_value"
STORE_FULL = "outcome_store_full"
CLASS_CAP = "outcome_class_cardinality_cap"  # a label past max_classes, counted under "other"

_POSITIVE_CODE = 0  # the positive label is the first one given a code
# Scores and confidences are stored as float32; larger magnitudes would overflow (and warn).
_F32_MAX = float(np.finfo(np.float32).max)

# Batch arguments: lists, tuples, ranges, 1-D numpy arrays, pandas Series (one value per row).
Ids: TypeAlias = Iterable[Hashable]
Values: TypeAlias = Iterable[object]
Floats: TypeAlias = Iterable[float | None]
_Col: TypeAlias = "list[Any] | npt.NDArray[Any]"


class OutcomeTracker:
    """Windowed accuracy/precision/recall/F1/ROC AUC (classification) or MAE/RMSE/MAPE (regression).

    ``score``: the model's score for ``positive_label`` (a probability in [0, 1]; values outside
    are clipped into the edge bins, which keeps the AUC bound valid). ``score_bins``: equal-width
    bins over [0, 1] for ROC AUC (see :mod:`otel_ml._internal.quality.report` for the bound).
    ``confidence``: the model's confidence in the predicted class, kept with the prediction.
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
        positive_label: Hashable = 1,
        window_by: str = "label_time",
        clock: Callable[[], float] = time.monotonic,
        selftelemetry: SelfTelemetry | None = None,
    ) -> None:
        _choice("task", task, TASKS)
        _choice("window_by", window_by, WINDOW_BY)
        self.max_pending = _int_at_least("max_pending", max_pending, 1)
        self.sub_windows = _int_at_least("sub_windows", sub_windows, 1)
        self.score_bins = _int_at_least("score_bins", score_bins, 2)
        self.max_classes = _int_at_least("max_classes", max_classes, 2)
        self.ttl_s = _seconds("ttl_s", ttl_s)
        self.window_s = _seconds("window_s", window_s)
        try:
            hash(positive_label)
        except TypeError:
            raise TypeError(f"positive_label must be hashable, got {type(positive_label).__name__}") from None
        if not usable(positive_label):
            raise ValueError(f"positive_label must be a class label, got {positive_label!r}")
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds")
        if selftelemetry is not None and not isinstance(selftelemetry, SelfTelemetry):
            raise TypeError(f"selftelemetry must be a SelfTelemetry or None, got {type(selftelemetry).__name__}")
        self.task = task
        self.window_by = window_by
        self.positive_label = positive_label
        self._tel = selftelemetry if selftelemetry is not None else _selftelemetry.DEFAULT
        self._clock = guarded(clock, self._tel)
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")
        self._store = PendingStore(self.max_pending, self.ttl_s)
        self._codes = ClassCodes(self.max_classes, (positive_label,)) if task == "classification" else None
        self._sub_s = self.window_s / self.sub_windows
        self._window = OutcomeWindow(self.sub_windows, self.score_bins)
        self._outcomes: dict[int, int] = {}  # cumulative joined outcomes by pair code
        self._unmatched = {"unknown": 0, "expired": 0}
        self._late = 0
        self._cache: tuple[float, QualityReport] | None = None

    # --- remembering predictions (never raises) --------------------------------------------

    def remember(self, prediction_id: Hashable, predicted: object, score: float | None = None,
                 confidence: float | None = None) -> None:
        """Keep a prediction until its ground truth arrives (or ``ttl_s`` passes)."""
        try:
            self._remember_one(prediction_id, predicted, score, confidence)
        except Exception as exc:  # a bug here must not reach the inference path
            self._tel.guard(exc, _SIGNAL)

    def remember_many(self, prediction_ids: Ids, predicted: Values, scores: Floats | None = None,
                      confidences: Floats | None = None) -> None:
        """Keep a batch of predictions; every argument holds one value per row, aligned by row."""
        try:
            self._remember_many(prediction_ids, predicted, scores, confidences)
        except Exception as exc:
            self._tel.guard(exc, _SIGNAL)

    def _remember_one(self, prediction_id: Hashable, predicted: object, score: object, confidence: object) -> None:
        try:
            hash(prediction_id)
        except TypeError:
            self._tel.dropped(UNHASHABLE_ID, _SIGNAL, 1, detail=type(prediction_id).__name__)
            return
        s, bad_score = _one_float(score)
        c, bad_conf = _one_float(confidence)
        evicted = 0
        with self._lock:
            over = False
            if self._codes is not None:
                code = self._codes.encode(predicted)
                value = float(code) if code != BAD else math.nan
                over = code == self._codes.overflow
            else:
                value = _finite_or_nan(predicted)
            if not math.isnan(value):
                evicted = self._store.put(prediction_id, self._clock(), value, s, c)
        if over:
            self._tel.dropped(CLASS_CAP, _SIGNAL, 1, detail=_brief(predicted))
        if math.isnan(value):
            self._tel.dropped(BAD_PREDICTION, _SIGNAL, 1, detail=_brief(predicted))
        if bad_score:
            self._tel.dropped(BAD_SCORE, _SIGNAL, 1, detail=_brief(score))
        if bad_conf:
            self._tel.dropped(BAD_CONFIDENCE, _SIGNAL, 1, detail=_brief(confidence))
        if evicted:
            self._tel.dropped(STORE_FULL, _SIGNAL, evicted)

    def _remember_many(self, prediction_ids: Ids, predicted: Values, scores: Floats | None,
                       confidences: Floats | None) -> None:
        batch = self._batch(prediction_ids, predicted, scores, confidences)
        if batch is None:
            return
        ids, preds, (score_col, conf_col) = batch
        k = len(ids)
        if not k:
            return
        id_list: list[Any] = ids.tolist() if isinstance(ids, np.ndarray) else ids
        rows, duplicates, unhashable = _first_rows(id_list)
        scores_f, bad_scores = _floats(score_col, k) if score_col is not None else (None, 0)
        confs_f, bad_confs = _floats(conf_col, k) if conf_col is not None else (None, 0)
        if self._codes is None:
            values, _ = _floats(preds, k)
            if rows is not None:
                values = values[rows]
            keep = np.isfinite(values)
        else:
            labels: list[Any] = preds.tolist() if isinstance(preds, np.ndarray) else preds
            if rows is not None:
                labels = [labels[i] for i in rows.tolist()]
            with self._lock:
                codes = self._codes.encode_many(labels)
            over = int(np.count_nonzero(codes == self._codes.overflow))
            if over:
                self._tel.dropped(CLASS_CAP, _SIGNAL, over)
            keep = codes != BAD
            values = codes.astype(np.float64)
        bad_predictions = len(keep) - int(np.count_nonzero(keep))
        if bad_predictions:
            rows = np.flatnonzero(keep) if rows is None else rows[keep]
            values = values[keep]
        keys = id_list if rows is None else [id_list[i] for i in rows.tolist()]
        n = len(keys)
        s = _rows_f32(scores_f, rows, n)
        c = _rows_f32(confs_f, rows, n)
        with self._lock:
            evicted = self._store.put_many(keys, self._clock(), values, s, c)
        tel = self._tel
        for reason, count in ((DUPLICATE_ID, duplicates), (UNHASHABLE_ID, unhashable),
                              (BAD_PREDICTION, bad_predictions), (BAD_SCORE, bad_scores),
                              (BAD_CONFIDENCE, bad_confs), (STORE_FULL, evicted)):
            if count:
                tel.dropped(reason, _SIGNAL, count)

    # --- joining ground truth (never raises) -----------------------------------------------

    def record(self, prediction_id: Hashable, actual: object) -> None:
        """Join ``actual`` to the remembered prediction and count it."""
        try:
            self._record_one(prediction_id, actual)
        except Exception as exc:
            self._tel.guard(exc, _SIGNAL)

    def record_many(self, prediction_ids: Ids, actuals: Values) -> None:
        """Join each row's ``actual`` to the prediction remembered under its id."""
        try:
            self._record_many(prediction_ids, actuals)
        except Exception as exc:
            self._tel.guard(exc, _SIGNAL)

    def _record_one(self, prediction_id: Hashable, actual: object) -> None:
        # One label at a time is common (a feedback stream), so it skips the batch machinery;
        # the outcome is counted exactly as a one-row batch would be.
        try:
            hash(prediction_id)
        except TypeError:
            with self._lock:
                self._unmatched["unknown"] += 1
            self._tel.dropped(UNHASHABLE_ID, _SIGNAL, 1, detail=type(prediction_id).__name__)
            return
        joined = False
        with self._lock:
            codes = self._codes
            if codes is not None:
                code = codes.lookup(actual)
                value = math.nan if code == BAD else float(code)
            else:
                value = _finite_or_nan(actual)
            if not math.isnan(value):
                now = self._clock()
                found = self._store.pop(prediction_id, now)
                if isinstance(found, str):
                    self._unmatched[found] += 1
                else:
                    if codes is not None and value == NEW:
                        value = float(codes.encode(actual))
                    self._count_one(now, found, value)
                    self._cache = None
                    joined = True
        if joined and codes is not None and value == codes.overflow:
            self._tel.dropped(CLASS_CAP, _SIGNAL, 1, detail=_brief(actual))
        if math.isnan(value):
            self._tel.dropped(BAD_VALUE, _SIGNAL, 1, detail=_brief(actual))

    def _count_one(self, now: float, row: tuple[float, float, float, float], actual: float) -> None:
        t, predicted, score, _ = row
        now_epoch = int(now // self._sub_s)
        epoch = now_epoch if self.window_by == "label_time" else min(int(t // self._sub_s), now_epoch)
        sub = self._window.sub(epoch) if epoch > now_epoch - self.sub_windows else None
        if sub is None:
            self._late += 1
        codes = self._codes
        if codes is not None:
            pair = int(predicted) * codes.size + int(actual)
            self._outcomes[pair] = self._outcomes.get(pair, 0) + 1
            if sub is not None:
                score_bin = -1 if math.isnan(score) else \
                    min(int(min(max(score, 0.0), 1.0) * self.score_bins), self.score_bins - 1)
                sub.add_one(pair, score_bin, int(actual) == _POSITIVE_CODE)
        else:
            self._outcomes[0] = self._outcomes.get(0, 0) + 1
            if sub is not None:
                sub.add_one_error(abs(actual - predicted), actual)

    def _record_many(self, prediction_ids: Ids, actuals: Values) -> None:
        batch = self._batch(prediction_ids, actuals)
        if batch is None:
            return
        ids, acts, _ = batch
        k = len(ids)
        if not k:
            return
        id_list: list[Any] = ids.tolist() if isinstance(ids, np.ndarray) else ids
        # Validate labels before the join: a missing label must not use up its prediction.
        labels: list[Any] = []
        if self._codes is None:
            values, _ = _floats(acts, k)
            ok = np.isfinite(values)
        else:
            labels = acts.tolist() if isinstance(acts, np.ndarray) else acts
            with self._lock:
                values = self._codes.lookup_many(labels).astype(np.float64)
            ok = values != BAD
        bad = k - int(np.count_nonzero(ok))
        keys = id_list
        if bad:
            kept = np.flatnonzero(ok)
            keys = [id_list[i] for i in kept.tolist()]
            values = values[kept]
            if labels:
                labels = [labels[i] for i in kept.tolist()]
        over_labels = 0
        with self._lock:
            now = self._clock()
            joined = self._store.pop_many(keys, now)
            self._unmatched["unknown"] += joined.unknown + joined.unhashable
            self._unmatched["expired"] += joined.expired
            if len(joined.rows):
                actual = values[joined.rows]
                if self._codes is not None:
                    new = np.flatnonzero(actual == NEW)
                    for i in new.tolist():
                        actual[i] = self._codes.encode(labels[int(joined.rows[i])])
                    over_labels = int(np.count_nonzero(actual == self._codes.overflow))
                self._count(now, joined, actual)
            self._cache = None
        if bad:
            self._tel.dropped(BAD_VALUE, _SIGNAL, bad)
        if over_labels:
            self._tel.dropped(CLASS_CAP, _SIGNAL, over_labels)
        if joined.unhashable:
            self._tel.dropped(UNHASHABLE_ID, _SIGNAL, joined.unhashable)

    def _count(self, now: float, joined: Joined, actual: npt.NDArray[np.float64]) -> None:
        """Add joined rows to the cumulative counts and to their sub-windows (lock held)."""
        n = len(actual)
        if self._codes is not None:
            predicted = joined.predicted.astype(np.int64)
            actual_codes = actual.astype(np.int64)
            pairs = predicted * self._codes.size + actual_codes
            positive = actual_codes == _POSITIVE_CODE
            bins = np.full(n, -1, dtype=np.int64)
            scored = ~np.isnan(joined.score)
            if scored.any():
                s = np.clip(joined.score[scored].astype(np.float64), 0.0, 1.0)
                bins[scored] = np.minimum((s * self.score_bins).astype(np.int64), self.score_bins - 1)
            everything = _pair_counts(pairs)
            for key, c in everything:
                self._outcomes[key] = self._outcomes.get(key, 0) + c

            def add(sub: SubWindow, rows: npt.NDArray[np.bool_] | None) -> None:
                if rows is None:
                    sub.add_pairs(everything)
                    sub.add_scores(bins, positive)
                else:
                    sub.add_pairs(_pair_counts(pairs[rows]))
                    sub.add_scores(bins[rows], positive[rows])
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # inf is the honest error of 1e308 - -1e308
                err = np.abs(actual - joined.predicted)
            self._outcomes[0] = self._outcomes.get(0, 0) + n

            def add(sub: SubWindow, rows: npt.NDArray[np.bool_] | None) -> None:
                if rows is None:
                    sub.add_errors(err, actual)
                else:
                    sub.add_errors(err[rows], actual[rows])

        now_epoch = int(now // self._sub_s)
        if self.window_by == "label_time":
            sub = self._window.sub(now_epoch)
            if sub is None:  # only when the clock stepped back past a sub-window
                self._late += n
            else:
                add(sub, None)
            return
        epochs = np.minimum(np.floor_divide(joined.t, self._sub_s).astype(np.int64), now_epoch)
        inside = epochs > now_epoch - self.sub_windows
        self._late += n - int(np.count_nonzero(inside))
        for epoch in np.unique(epochs[inside]).tolist():
            rows = epochs == epoch
            sub = self._window.sub(int(epoch))
            if sub is None:
                self._late += int(np.count_nonzero(rows))
            else:
                add(sub, rows)

    # --- reading ---------------------------------------------------------------------------

    def evaluate(self) -> QualityReport:
        """Quality over the live sub-windows of the window."""
        with self._lock:
            now_epoch = int(self._clock() // self._sub_s)
            pair_counts, pos, neg, reg = self._window.merged(now_epoch)
            confusion = self._decode(pair_counts, str_keys=False)
        if self.task == "regression":
            return regression_report(int(reg[0]), reg[1], reg[2], reg[3])
        has_scores = bool(pos.any() or neg.any())
        return classification_report(confusion, self.positive_label,
                                     pos if has_scores else None, neg if has_scores else None)

    def evaluate_cached(self, max_age_s: float = 1.0) -> QualityReport:
        """:meth:`evaluate`, reused for ``max_age_s`` of the tracker's clock (or until a join)."""
        now = self._clock()
        c = self._cache
        if c is not None and 0 <= now - c[0] < max_age_s:
            return c[1]
        rep = self.evaluate()
        self._cache = (now, rep)
        return rep

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Cumulative joined outcomes by (predicted class, actual class) as strings.

        Regression has one key, ``("", "")``. Advances when labels arrive, whatever ``window_by``.
        """
        with self._lock:
            if self._codes is None:
                return {("", ""): self._outcomes[0]} if self._outcomes else {}
            return self._decode(self._outcomes, str_keys=True)

    @property
    def pending(self) -> int:
        """Predictions waiting for their ground truth (expired ones excluded)."""
        with self._lock:
            self._store.sweep(self._clock())
            return len(self._store)

    @property
    def unmatched(self) -> dict[str, int]:
        """Cumulative labels that found no live prediction, by reason (``unknown`` | ``expired``)."""
        with self._lock:
            return dict(self._unmatched)

    @property
    def unlabelled(self) -> dict[str, int]:
        """Predictions that left the store without a label in time, since start, by reason:
        ``expired`` (older than ``ttl_s``) and ``evicted`` (``max_pending`` were already waiting)."""
        with self._lock:
            self._store.sweep(self._clock())
            return {"expired": self._store.expired, "evicted": self._store.evicted}

    @property
    def evicted(self) -> int:
        """Predictions evicted because ``max_pending`` were already waiting."""
        return self._store.evicted

    @property
    def late_outside_window(self) -> int:
        """Joined outcomes whose sub-window had already left the window (``window_by="prediction_time"``)."""
        return self._late

    @property
    def selftelemetry(self) -> SelfTelemetry:
        """The registry this tracker counts what it drops into."""
        return self._tel

    def _decode(self, pair_counts: Mapping[int, int], *, str_keys: bool) -> dict[Any, int]:
        codes = self._codes
        if codes is None:
            return {}
        out: dict[Any, int] = {}
        for pair, n in pair_counts.items():
            p, a = divmod(pair, codes.size)
            key: tuple[Any, Any] = (codes.decode(p), codes.decode(a))
            if str_keys:
                key = (str(key[0]), str(key[1]))
            # Two labels can share a name (a real "other" and the overflow): add, never overwrite.
            out[key] = out.get(key, 0) + n
        return out

    def _batch(self, ids: object, values: object, *optional: object) -> tuple[_Col, _Col, list[_Col | None]] | None:
        """The batch arguments as lists or 1-D arrays of one length, or None (counted)."""
        given = (ids, values, *optional)
        cols = [None if c is None else _column(c) for c in given]
        id_col, value_col, *rest = cols
        if id_col is None or value_col is None or any(o is None for o, c in zip(rest, optional, strict=True)
                                                      if c is not None):
            self._tel.dropped(BAD_INPUT, _SIGNAL, 1, detail=[type(c).__name__ for c in given])
            return None
        lengths = [None if o is None else len(o) for o in cols]
        if len({n for n in lengths if n is not None}) > 1:
            self._tel.dropped(LENGTH_MISMATCH, _SIGNAL, max(n for n in lengths if n is not None),
                              detail=f"column lengths {lengths}")
            return None
        return id_col, value_col, rest


# --- argument checks -----------------------------------------------------------------------

def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {allowed}, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _int_at_least(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")
    return int(value)


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    f = float(value)
    if not (math.isfinite(f) and f > 0):
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return f


# --- value conversion (never raises) ------------------------------------------------------

def _column(value: object) -> _Col | None:
    if isinstance(value, np.ndarray):
        return value if value.ndim == 1 else None
    if isinstance(value, list):
        return value
    if isinstance(value, (str, bytes, bytearray, Mapping)):  # iterable, but not a column
        return None
    tolist = getattr(value, "tolist", None)  # pandas Series / Index
    if callable(tolist):
        try:
            out = tolist()
        except Exception:
            return None
        return out if isinstance(out, list) else None
    if not isinstance(value, Iterable):
        return None
    try:  # a lazy iterable (range, generator) is read up to a bound: range(10**12) must not eat the host
        return read_bounded(value)
    except Exception:
        return None


def _first_rows(ids: list[Any]) -> tuple[npt.NDArray[np.intp] | None, int, int]:
    """(rows to keep or None for all, duplicate rows, rows with an unhashable id)."""
    try:
        if len(set(ids)) == len(ids):
            return None, 0, 0
    except TypeError:
        pass
    first: dict[Any, int] = {}
    unhashable = 0
    for i, key in enumerate(ids):
        try:
            first.setdefault(key, i)
        except TypeError:
            unhashable += 1
    rows = np.fromiter(first.values(), np.intp, len(first))
    return rows, len(ids) - unhashable - len(first), unhashable


def _floats(col: _Col, k: int) -> tuple[npt.NDArray[np.float64], int]:
    """``col`` as float64 (NaN for None) and how many values were not numbers at all."""
    if isinstance(col, np.ndarray) and col.dtype.kind in "biuf":
        return col.astype(np.float64, copy=False), 0
    try:
        arr = np.asarray(col, dtype=np.float64)
        if arr.shape == (k,):
            return arr, 0
    except Exception:
        pass
    out = np.empty(k, dtype=np.float64)
    bad = 0
    for i, v in enumerate(col):
        if v is None:
            out[i] = math.nan
            continue
        try:
            out[i] = float(v)
        except Exception:
            out[i] = math.nan
            bad += 1
    return out, bad


def _rows_f32(values: npt.NDArray[np.float64] | None, rows: npt.NDArray[np.intp] | None,
              n: int) -> npt.NDArray[np.float32]:
    if values is None:
        return np.full(n, np.nan, dtype=np.float32)
    return np.clip(values if rows is None else values[rows], -_F32_MAX, _F32_MAX).astype(np.float32)


def _one_float(value: object) -> tuple[float, bool]:
    """(value as float32-safe float, NaN for None; whether it was not a number at all)."""
    if value is None:
        return math.nan, False
    try:
        f = float(value)  # type: ignore[arg-type]
    except Exception:
        return math.nan, True
    return min(max(f, -_F32_MAX), _F32_MAX), False  # NaN passes through


def _finite_or_nan(value: object) -> float:
    if value is None:
        return math.nan
    try:
        f = float(value)  # type: ignore[arg-type]
    except Exception:
        return math.nan
    return f if math.isfinite(f) else math.nan


def _pair_counts(pairs: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    keys, counts = np.unique(pairs, return_counts=True)
    return list(zip(keys.tolist(), counts.tolist(), strict=True))


def _brief(value: object) -> str:
    try:
        return repr(value)[:100]
    except Exception:
        return type(value).__name__
