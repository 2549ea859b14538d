"""One inference call: the per-call :class:`Inference` and the model's hot-path series.

Per call: at most one SDK span (none under an unsampled parent with parent-based sampling), one
lock around plain-Python bucket increments (:class:`InferenceMetrics`), an exemplar on the
latency bucket when the trace is sampled, then - outside the lock - the rows and outputs handed
to the model's drift tracker and outcome store (:class:`Feeds`). Nothing here raises into the
caller: bad values are counted in the model's self-telemetry.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace

from otel_ml._internal import energy, instruments, names, selftelemetry, spans
from otel_ml._internal.bounded import read_bounded
from otel_ml._internal.context import ModelContext
from otel_ml._internal.labels import BoundedValues
from otel_ml._internal.logs import CURRENT_MODEL, READERS
from otel_ml._internal.producer import HistogramSeries

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_MAX_ID_LEN = 128

Outputs = str | Callable[[Any], Mapping[str, Any]] | None


class DriftSink(Protocol):
    """What an inference feeds drift with (the monitor's ``DriftTracker``)."""

    def update(self, features: Any) -> None: ...

    def update_predictions(self, values: Any) -> None: ...


class OutcomeSink(Protocol):
    """Where an inference leaves its predictions for delayed labels (the ``OutcomeTracker``)."""

    def remember(self, prediction_id: Any, predicted: Any, score: float | None = None,
                 confidence: float | None = None) -> None: ...

    def remember_many(self, prediction_ids: Sequence[Any], predicted: Sequence[Any],
                      scores: Sequence[float] | None = None,
                      confidences: Sequence[float] | None = None) -> None: ...


class Feeds:
    """The model's drift tracker and outcome store, as inferences see them."""

    __slots__ = ("drift", "outcomes", "prediction_kind")

    def __init__(self, drift: DriftSink | None, prediction_kind: str | None,
                 outcomes: Callable[[], OutcomeSink | None]) -> None:
        self.drift = drift
        # What the profile's prediction distribution holds: confidence | score | class | value.
        self.prediction_kind = prediction_kind
        self.outcomes = outcomes


class InferenceMetrics:
    """The hot-path series of one model, resolved once; updated under the source's one lock."""

    __slots__ = ("_base", "_by_method", "_class_series", "_duration_err", "_duration_spec", "_error_types",
                 "_methods", "_registry", "_source", "batch", "classes", "confidence", "confidence_bounds",
                 "duration_ok", "value", "value_bounds")

    def __init__(self, ctx: ModelContext, duration_buckets: tuple[float, ...]) -> None:
        self._source = ctx.source
        self._base = dict(ctx.attributes)
        self._registry = ctx.selftelemetry
        self._duration_spec = instruments.inference_duration(duration_buckets)
        with self._source.lock:
            self.duration_ok: HistogramSeries = self._source.series(self._duration_spec, self._base)
            self.batch: HistogramSeries = self._source.series(instruments.BATCH_SIZE, self._base)
            self.confidence: HistogramSeries = self._source.series(instruments.CONFIDENCE, self._base)
        self.confidence_bounds = self.confidence.bounds
        self.value: HistogramSeries | None = None  # created for the first regression output
        self.value_bounds = instruments.PREDICTION_VALUE.bounds
        self._by_method: dict[tuple[str, str | None], HistogramSeries] = {}
        self._duration_err: dict[str, HistogramSeries] = {}
        self._class_series: dict[str, Any] = {}
        self.classes = ctx.classes
        self._methods: BoundedValues | None = None  # both made on first use (monitor creation stays cheap)
        self._error_types: BoundedValues | None = None

    def _capped_method(self, method: str) -> str:
        if self._methods is None:
            self._methods = BoundedValues(names.MAX_METHODS, "method_cardinality_cap", self._registry)
        return self._methods.get(method)

    def _capped_error_type(self, error_type: str) -> str:
        if self._error_types is None:
            self._error_types = BoundedValues(names.MAX_ERROR_TYPES, "error_type_cardinality_cap", self._registry,
                                              overflow=names.ERROR_TYPE_OVERFLOW)
        return self._error_types.get(error_type)

    def record(self, inf: Inference, duration: float, error_type: str | None, trace_id: int,
               span_id: int) -> None:
        with self._source.lock:
            if inf._method is not None:
                self._method_series(inf._method, error_type).record(duration, trace_id, span_id)
            elif error_type is None:
                self.duration_ok.record(duration, trace_id, span_id)
            else:
                self._error_series(error_type).record(duration, trace_id, span_id)
            if inf._batch_size is not None:
                self.batch.record(inf._batch_size)
            conf = inf._conf_batch
            if conf is not None:
                self.confidence.record_many(*conf)
            elif inf._single_conf is not None:
                self.confidence.record(inf._single_conf)
            values = inf._value_batch
            if values is not None:
                self._value_series().record_many(*values)
            elif inf._pred_value is not None:
                self._value_series().record(inf._pred_value)
            counts = inf._class_counts
            if counts is not None:
                for label, n in counts.items():
                    self._class_counter(label).value += n
            elif inf._single_label is not None:
                self._class_counter(inf._single_label).value += 1

    def _value_series(self) -> HistogramSeries:
        if self.value is None:
            self.value = self._source.series(instruments.PREDICTION_VALUE, self._base)
        return self.value

    def _method_series(self, method: str, error_type: str | None) -> HistogramSeries:
        key = (method, error_type)
        series = self._by_method.get(key)
        if series is None:
            # (methods + 1) x (error types + 1) series at most: both attributes are capped.
            method = self._capped_method(method)
            if error_type is not None:
                error_type = self._capped_error_type(error_type)
            key = (method, error_type)
            series = self._by_method.get(key)
            if series is not None:
                return series
            attrs = {**self._base, names.MODEL_METHOD: method}
            if error_type is not None:
                attrs[names.ERROR_TYPE] = error_type
            series = self._by_method[key] = self._source.series(self._duration_spec, attrs)
        return series

    def record_energy(self, joules: float, trace_id: int, span_id: int) -> None:
        with self._source.lock:
            self._source.series(instruments.INFERENCE_ENERGY, self._base).record(joules, trace_id, span_id)

    def _error_series(self, error_type: str) -> HistogramSeries:
        series = self._duration_err.get(error_type)
        if series is None:
            error_type = self._capped_error_type(error_type)  # past the cap: "_OTHER", counted
            series = self._duration_err.get(error_type)
            if series is None:
                series = self._source.series(self._duration_spec, {**self._base, names.ERROR_TYPE: error_type})
                self._duration_err[error_type] = series
        return series

    def _class_counter(self, label: str) -> Any:
        series = self._class_series.get(label)
        if series is None:
            series = self._source.series(instruments.PREDICTIONS,
                                         {**self._base, names.PREDICTION_CLASS: label})
            self._class_series[label] = series
        return series


# Calls a QuickLane holds before the calling thread folds them itself (memory stays bounded when
# no reader collects); a reader's collection folds them first.
QUICK_FOLD_AT = 1024
_ENERGY = energy.CURRENT


class QuickLane:
    """Instrumented calls under an unsampled parent, recorded by one append and folded later.

    Why: under parent-based sampling most production calls have an unsampled parent: no span, no
    exemplar, only latency, batch size, confidence, class (or value) to count. Updating four
    series per call takes ~65 Python calls and touches dozens of objects, and right after a
    real model call (whose work evicts them from the CPU caches) that cost 23-27 us per
    scikit-learn ``predict_proba`` (1.10x bare) where the same code costs 7 us in a tight loop.
    Here a call appends one tuple; the series are updated in a batch with warm caches when a
    reader collects (``MetricSource.on_collect``) or every :data:`QUICK_FOLD_AT` calls.

    Only the plain case goes this way - one row, no error, no drift tracker, no prediction ids,
    no energy meter, an attached source; the instrumentor checks :meth:`open` and otherwise (or
    for what :meth:`add` cannot take) records through :class:`Inference` as before. The figures
    a reader sees are the same either way. While the model runs the instrumentor sets
    ``CURRENT_MODEL`` to :attr:`model_attributes` where a log filter reads it, as
    :class:`Inference` does.
    """

    __slots__ = ("__weakref__", "_ctx", "_metrics", "_spans", "model_attributes", "pending")

    def __init__(self, ctx: ModelContext, metrics: InferenceMetrics) -> None:
        self._ctx = ctx
        self._metrics = metrics
        self._spans = ctx.inference_spans
        self.model_attributes = ctx.span_attributes
        # (method, duration ns, raw class or None, confidence or None, regression value or None)
        self.pending: deque[tuple[str, int, Any, float | None, float | None]] = deque()
        ctx.source.on_collect(self._on_collect)

    def open(self) -> bool:
        """Whether a call starting now may be recorded by :meth:`add` (no span would be made)."""
        return self._ctx.attached and _ENERGY.meter is None and self._spans.skips_now()

    def add(self, method: str, duration_ns: int, label: Any, confidence: float | None,
            value: float | None = None) -> None:
        """One successful one-row call (``label`` raw: mapped and capped when folded)."""
        pending = self.pending
        pending.append((method, duration_ns, label, confidence, value))
        if len(pending) >= QUICK_FOLD_AT:
            self.fold()

    def _on_collect(self, _source: Any) -> None:
        self.fold()

    def fold(self) -> None:
        """Move the pending calls into the model's series (thread-safe; never raises)."""
        try:
            self._fold()
        except Exception as exc:
            self._ctx.selftelemetry.guard(exc, "metrics")

    def _fold(self) -> None:
        pending = self.pending
        pop = pending.popleft
        items = []
        try:
            for _ in range(len(pending)):
                items.append(pop())
        except IndexError:  # another thread folded some of them
            pass
        if not items:
            return
        methods, nanos, raw, confidence_column, value_column = zip(*items, strict=True)
        durations: dict[str, list[float]] = {}
        if methods.count(methods[0]) == len(methods):
            durations[methods[0]] = [d * 1e-9 for d in nanos]
        else:
            for method, duration_ns in zip(methods, nanos, strict=True):
                durations.setdefault(method, []).append(duration_ns * 1e-9)
        raw_labels = Counter(v for v in raw if v is not None)
        confidences = [c for c in confidence_column if c is not None and 0.0 <= c <= 1.0]
        bad_confidence = sum(c is not None for c in confidence_column) - len(confidences)
        values = [v for v in value_column if v is not None and math.isfinite(v)]
        bad_value = sum(v is not None for v in value_column) - len(values)
        metrics = self._metrics
        classes = metrics.classes
        labels: dict[str, int] = {}
        for raw_label, n in raw_labels.items():
            label = classes.get(raw_label)
            if label is not None:
                labels[label] = labels.get(label, 0) + n
        with metrics._source.lock:
            for method, seconds in durations.items():
                metrics._method_series(method, None).record_values(seconds)
            metrics.batch.record_values([1] * len(items))
            if confidences:
                metrics.confidence.record_values(confidences)
            if values:
                metrics._value_series().record_values(values)
            for label, n in labels.items():
                metrics._class_counter(label).value += n
        if bad_confidence:
            self._ctx.selftelemetry.dropped("invalid_confidence", "metrics", n=bad_confidence)
        if bad_value:
            self._ctx.selftelemetry.dropped("invalid_predictions", "metrics", n=bad_value)


class Inference:
    """One inference in progress; returned by ``ModelMonitor.inference()``."""

    __slots__ = (
        "_batch_size",
        "_class_counts",
        "_conf_aligned",
        "_conf_batch",
        "_conf_raw",
        "_ctx",
        "_ctx_token",
        "_energy",
        "_features",
        "_feeds",
        "_labels_raw",
        "_method",
        "_metrics",
        "_model_token",
        "_pred_value",
        "_pred_values",
        "_prediction_id",
        "_prediction_ids",
        "_row_labels",
        "_score",
        "_scores",
        "_single_conf",
        "_single_label",
        "_span",
        "_t0",
        "_value_batch",
    )

    def __init__(self, ctx: ModelContext, metrics: InferenceMetrics, feeds: Feeds, batch_size: Any,
                 features: Any, prediction_id: Any, prediction_ids: Any, method: str | None = None) -> None:
        self._ctx = ctx
        if method is not None and not isinstance(method, str):
            ctx.selftelemetry.dropped("invalid_method", "metrics", detail=type(method).__name__)
            method = None
        self._method = method
        self._metrics = metrics
        self._feeds = feeds
        self._batch_size: int | None = batch_size if batch_size is None or (
            type(batch_size) is int and 0 <= batch_size <= _MAX_BATCH_SIZE
        ) else _as_batch_size(batch_size, ctx.selftelemetry)
        self._features = features
        self._prediction_id = None if prediction_id is None else _id(prediction_id)
        self._prediction_ids: list[str] | None = None
        if prediction_ids is not None:
            self._set_ids(prediction_ids)
        self._single_label: str | None = None
        self._single_conf: float | None = None
        self._class_counts: dict[str, int] | None = None
        self._conf_batch: tuple[list[int], float, float, float] | None = None
        self._conf_raw: Any = None  # valid confidences, for the histogram's peers and drift
        self._conf_aligned: Any = None  # one per row (NaN where invalid), for outcomes
        self._labels_raw: Any = None
        self._row_labels: list[str | None] | None = None
        self._pred_value: float | None = None  # regression output, one row
        self._pred_values: Any = None  # regression outputs, a batch
        self._value_batch: tuple[list[int], float, float, float] | None = None
        self._score: float | None = None  # positive-class score, for ROC AUC
        self._scores: Any = None
        self._span: Any = None
        self._ctx_token: Any = None
        self._model_token: Any = None
        self._energy: Any = None  # (meter, token) while an energy meter is installed
        self._t0 = 0

    def __enter__(self) -> Inference:
        ctx = self._ctx
        try:
            span = ctx.inference_spans.start(ctx.inference_span_name)
            if span is not None:
                self._span = span
                self._ctx_token = otel_context.attach(trace.set_span_in_context(span))
            if READERS.model_filter:
                self._model_token = CURRENT_MODEL.set(ctx.span_attributes)
        except Exception as exc:
            ctx.selftelemetry.dropped("span_start_error", "traces", detail=exc)
        meter = energy.CURRENT.meter
        if meter is not None:
            self._energy = (meter, meter.start())
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        ctx = self._ctx
        try:
            self._finish(exc_type, exc)
        except Exception as err:
            ctx.selftelemetry.guard(err, "metrics")  # re-raises in strict mode: the context still goes back
        finally:
            spans.restore(self._model_token, self._ctx_token, ctx.selftelemetry)
        if self._feeds.drift is not None or self._prediction_id is not None or self._prediction_ids is not None:
            try:
                self._feed()
            except Exception as err:
                ctx.selftelemetry.guard(err, "metrics")

    def started_at(self, t0_ns: int) -> None:
        """Time the call from ``t0_ns`` (``time.perf_counter_ns()``) instead of from ``__enter__``:
        for instrumentors that ran the model before deciding they need this path."""
        self._t0 = t0_ns

    def _finish(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        duration = (time.perf_counter_ns() - self._t0) * 1e-9
        error_type = spans.error_type(exc_type) if exc_type is not None else None
        trace_id = span_id = 0
        span = self._span
        if span is not None:
            end_attrs: dict[str, Any] = {}
            if span.is_recording():
                if self._method is not None:
                    end_attrs[names.MODEL_METHOD] = self._method
                if self._batch_size is not None:
                    end_attrs[names.INFERENCE_BATCH_SIZE] = self._batch_size
                if self._prediction_id is not None:
                    end_attrs["ml.prediction.id"] = self._prediction_id
                if self._single_label is not None:
                    end_attrs[names.PREDICTION_CLASS] = self._single_label
                if self._single_conf is not None:
                    end_attrs[names.PREDICTION_CONFIDENCE] = self._single_conf
            trace_id, span_id = spans.end_span(span, end_attrs, error_type, exc)
        self._metrics.record(self, duration, error_type, trace_id, span_id)
        if self._energy is not None:
            meter, token = self._energy
            joules = meter.stop(token)
            if joules is not None:
                self._metrics.record_energy(joules, trace_id, span_id)
        ctx = self._ctx
        if not ctx.attached:
            ctx.retry_attach()

    def _feed(self) -> None:
        feeds = self._feeds
        drift = feeds.drift
        if drift is not None:
            if self._features is not None:
                drift.update(self._features)
            kind = feeds.prediction_kind
            if kind is not None:
                values = self._prediction_values(kind)
                if values is not None:
                    drift.update_predictions(values)
                elif self._has_outputs():
                    self._ctx.selftelemetry.dropped(
                        "prediction_drift_kind_mismatch", "drift",
                        detail=f"the reference profile holds {kind} predictions; record(...) gave none")
        if self._prediction_id is not None or self._prediction_ids is not None:
            self._remember()

    def _has_outputs(self) -> bool:
        return (self._conf_raw is not None or self._labels_raw is not None or self._pred_value is not None
                or self._pred_values is not None or self._score is not None or self._scores is not None)

    def _prediction_values(self, kind: str) -> Any:
        if kind == "confidence":
            return self._conf_raw
        if kind == "class":
            return self._labels_raw
        if kind == "score":
            return self._scores if self._scores is not None else self._score
        if kind == "value":
            return self._pred_values if self._pred_values is not None else self._pred_value
        return None

    def _remember(self) -> None:
        outcomes = self._feeds.outcomes()
        if outcomes is None:
            return
        regression = self._ctx.task == "regression"
        ids = self._prediction_ids
        if ids is None and self._prediction_id is not None:
            predicted: Any = self._pred_value if regression else self._single_label
            if predicted is not None:
                outcomes.remember(self._prediction_id, predicted, self._score, self._single_conf)
                return
            rows = self._pred_values if regression else self._row_labels
            if rows is not None and len(rows) == 1:
                ids = [self._prediction_id]
            elif rows is not None:
                self._ctx.selftelemetry.dropped("prediction_id_for_batch", "outcomes", n=len(rows),
                                                detail="use prediction_ids=[...] with one id per row")
                return
            else:
                return
        if ids is None:
            return
        rows = self._pred_values if regression else self._row_labels
        if rows is None:
            single = self._pred_value if regression else self._single_label
            if single is None:
                return
            rows = [single]
        scores = self._scores if self._scores is not None else (
            [self._score] if self._score is not None and len(rows) == 1 else None)
        confidences = self._conf_aligned if self._conf_aligned is not None else (
            [self._single_conf] if self._single_conf is not None and len(rows) == 1 else None)
        outcomes.remember_many(ids, rows, scores, confidences)

    @property
    def span(self) -> trace.Span:
        """The inference span (a non-recording span when the trace is not sampled)."""
        return self._span if self._span is not None else trace.INVALID_SPAN

    @property
    def prediction_id(self) -> str | None:
        return self._prediction_id

    @property
    def prediction_ids(self) -> list[str] | None:
        return None if self._prediction_ids is None else list(self._prediction_ids)

    def record(
        self,
        *,
        predictions: Any = None,
        confidence: Any = None,
        score: Any = None,
        prediction_id: Any = None,
        prediction_ids: Any = None,
    ) -> None:
        """Record the model's output for this call (never raises).

        ``predictions``: one class label, or a sequence / array of labels (one per row);
        regression monitors take the predicted value(s).
        ``confidence``: one probability in [0, 1], or one per row. Values that are not finite
        numbers in [0, 1] are dropped and counted (``otel_ml.dropped``, reason
        ``invalid_confidence``).
        ``score``: the positive class's probability (binary models), one or one per row, kept with
        the prediction ids so delayed labels give ROC AUC.
        ``prediction_id`` (one row) or ``prediction_ids`` (one per row of a batch, aligned with
        ``predictions``): the ids ``record_outcome(s)`` will join labels to.
        """
        try:
            if prediction_id is not None:
                self._prediction_id = _id(prediction_id)
            if prediction_ids is not None:
                self._set_ids(prediction_ids)
            if predictions is not None:
                self._record_predictions(predictions)
            if confidence is not None:
                self._record_confidence(confidence)
            if score is not None:
                self._record_score(score)
        except Exception as exc:
            self._ctx.selftelemetry.guard(exc, "metrics", "invalid_output")

    def _set_ids(self, prediction_ids: Any) -> None:
        values = _as_list(prediction_ids)
        if values is None or isinstance(prediction_ids, (str, bytes)):
            self._ctx.selftelemetry.dropped("invalid_prediction_ids", "outcomes", detail=type(prediction_ids).__name__)
            return
        self._prediction_ids = [_id(v) for v in values]

    def _record_predictions(self, predictions: Any) -> None:
        if self._ctx.task == "regression":
            self._record_values(predictions)
            return
        classes = self._metrics.classes
        if isinstance(predictions, (str, bytes, bool, int, float)) or getattr(predictions, "ndim", None) == 0:
            self._single_label = classes.get(predictions)
            self._labels_raw = predictions.item() if getattr(predictions, "ndim", None) == 0 else predictions
            if self._batch_size is None:
                self._batch_size = 1
            return
        values = _as_list(predictions)
        if values is None:
            self._ctx.selftelemetry.dropped("invalid_predictions", "metrics", detail=type(predictions).__name__)
            return
        counts: dict[str, int] = {}
        keep_rows = self._prediction_ids is not None or self._prediction_id is not None
        row_labels: list[str | None] | None = [] if keep_rows else None
        for value in values:
            label = classes.get(value)
            if label is not None:
                counts[label] = counts.get(label, 0) + 1
            if row_labels is not None:
                row_labels.append(label)
        self._class_counts = counts
        self._labels_raw = values
        self._row_labels = row_labels
        if self._batch_size is None:
            self._batch_size = len(values)

    def _record_values(self, predictions: Any) -> None:
        if (isinstance(predictions, (int, float)) and not isinstance(predictions, bool)) \
                or getattr(predictions, "ndim", None) == 0:
            value = _scalar_float(predictions)
            if math.isfinite(value):
                self._pred_value = value
                if self._batch_size is None:
                    self._batch_size = 1
            else:
                self._ctx.selftelemetry.dropped("invalid_predictions", "metrics", detail=value)
            return
        arr = _float_array(predictions)
        if arr is None or arr.ndim != 1:
            self._ctx.selftelemetry.dropped("invalid_predictions", "metrics", detail=type(predictions).__name__)
            return
        import numpy as np

        finite = arr[np.isfinite(arr)]
        if finite.size != arr.size:
            self._ctx.selftelemetry.dropped("invalid_predictions", "metrics", n=int(arr.size - finite.size))
        self._pred_values = arr
        if finite.size:
            bounds = self._metrics.value_bounds
            idx = np.searchsorted(np.asarray(bounds), finite, side="left")
            counts = np.bincount(idx, minlength=len(bounds) + 1).tolist()
            self._value_batch = (counts, float(finite.sum()), float(finite.min()), float(finite.max()))
        if self._batch_size is None:
            self._batch_size = int(arr.size)

    def _record_confidence(self, confidence: Any) -> None:
        if type(confidence) is float or (isinstance(confidence, (int, float)) and not isinstance(confidence, bool)):
            c = _scalar_float(confidence)
            if 0.0 <= c <= 1.0:
                self._single_conf = c
                self._conf_raw = c
            else:
                self._ctx.selftelemetry.dropped("invalid_confidence", "metrics", detail=confidence)
            return
        if getattr(confidence, "ndim", None) == 0:
            self._record_confidence(confidence.item())
            return
        arr = _float_array(confidence)
        if arr is None:
            self._ctx.selftelemetry.dropped("invalid_confidence", "metrics", detail=type(confidence).__name__)
            return
        import numpy as np

        self._conf_aligned, arr = self._unit_interval(arr.ravel(), "invalid_confidence")
        if arr.size == 0:
            return
        self._conf_raw = arr
        bounds = self._metrics.confidence_bounds
        idx = np.searchsorted(np.asarray(bounds), arr, side="left")
        counts = np.bincount(idx, minlength=len(bounds) + 1).tolist()
        self._conf_batch = (counts, float(arr.sum()), float(arr.min()), float(arr.max()))

    def _record_score(self, score: Any) -> None:
        if (isinstance(score, (int, float)) and not isinstance(score, bool)) or getattr(score, "ndim", None) == 0:
            value = _scalar_float(score)
            if 0.0 <= value <= 1.0:
                self._score = value
            else:
                self._ctx.selftelemetry.dropped("invalid_score", "metrics", detail=score)
            return
        arr = _float_array(score)
        if arr is None or arr.ndim != 1:
            self._ctx.selftelemetry.dropped("invalid_score", "metrics", detail=type(score).__name__)
            return
        self._scores, _ = self._unit_interval(arr, "invalid_score")

    def _unit_interval(self, arr: npt.NDArray[np.float64], reason: str
                       ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(one value per row with NaN where outside [0, 1], the valid values); invalid ones counted."""
        import numpy as np

        valid = (arr >= 0.0) & (arr <= 1.0)  # NaN fails both comparisons
        n_bad = int(arr.size - int(valid.sum()))
        if not n_bad:
            return arr, arr
        self._ctx.selftelemetry.dropped(reason, "metrics", n=n_bad)
        return np.where(valid, arr, np.nan), arr[valid]

    def record_output(self, result: Any, outputs: Outputs) -> None:
        """Read predictions and confidence from a predict function's return value (never raises).

        ``outputs``: ``"labels"`` (class labels), ``"proba"`` (rows x classes probabilities: the
        arg-max is the class, its probability the confidence), ``"scores"`` (one score per row,
        used as confidence), or a callable returning a mapping with ``predictions`` and/or
        ``confidence``.
        """
        if outputs is None:
            return
        try:
            if callable(outputs):
                got = outputs(result)
                self.record(predictions=got.get("predictions"), confidence=got.get("confidence"))
            elif outputs == "labels":
                self.record(predictions=result)
            elif outputs == "scores":
                self.record(confidence=result)
            elif outputs == "proba":
                import numpy as np

                proba = np.asarray(result, dtype=np.float64)
                if proba.ndim == 1:
                    proba = proba.reshape(1, -1)
                top = proba.argmax(axis=1)
                self.record(predictions=top, confidence=proba[np.arange(len(top)), top])
        except Exception as exc:
            self._ctx.selftelemetry.dropped("invalid_output", "metrics", detail=exc)


def _id(value: Any) -> str:
    # Ids are kept as (truncated) strings: the label side looks them up the same way.
    return str(value)[:_MAX_ID_LEN]


def _as_list(values: Any) -> list[Any] | None:
    tolist = getattr(values, "tolist", None)
    if tolist is not None:
        try:
            out = tolist()
        except Exception:
            return None
        return out if isinstance(out, list) else [out]
    if isinstance(values, (list, tuple)):
        return list(values)
    if isinstance(values, (str, bytes, Mapping)):
        return None
    try:  # a lazy iterable (range, generator) is read up to a bound: memory stays bounded
        return read_bounded(values)
    except TypeError:
        return None



_MAX_BATCH_SIZE = 2**53  # past this a batch size is garbage (and no longer a float's exact integer)


def _scalar_float(value: Any) -> float:
    """``float(value)``, NaN for what has none (numpy bytes/str/datetime scalars, ints past 1e308)."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _float_array(values: Any) -> npt.NDArray[np.float64] | None:
    import numpy as np

    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError, MemoryError):  # MemoryError: numpy refused e.g. range(10**12)
        return None
    return arr


def _as_batch_size(value: Any, registry: selftelemetry.SelfTelemetry) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        registry.dropped("invalid_batch_size", "metrics", detail=value)
        return None
    if not 0 <= n <= _MAX_BATCH_SIZE:
        registry.dropped("invalid_batch_size", "metrics", detail=value)
        return None
    return n
