"""``ModelMonitor``: every signal of one served model, recorded with a cheap hot path.

Per inference the monitor takes one lock and updates plain-Python aggregates prepared once per
model (see ``producer.py`` for why and how they reach the SDK), starts at most one SDK span, and
stores an exemplar (trace id, span id) on the latency bucket when the trace is sampled. When the
parent span is not sampled and the sampler is parent-based, no span is created at all.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, StaticSampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_ml._internal import instruments, names, selftelemetry
from otel_ml._internal.labels import BoundedLabels, label_of
from otel_ml._internal.logs import CURRENT_MODEL
from otel_ml._internal.producer import MetricSource, producer_for
from otel_ml._internal.version import __version__

_TASKS = frozenset({"classification", "regression", "ranking", "embedding", "generation", "other"})
_MAX_ERROR_TYPES = 20
_ATTACH_RETRY_S = 1.0

F = TypeVar("F", bound=Callable[..., Any])

_predictions_logger = logging.getLogger("otel_ml.predictions")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class ModelMonitor:
    """Telemetry for one model version: metrics, spans, logs, drift and delayed-label quality.

    Args:
        name: model name, e.g. ``"fraud-detector"`` (``ml.model.name`` on every signal).
        version: model version (``ml.model.version``).
        task: ``classification`` | ``regression`` | ``ranking`` | ``embedding`` | ``generation`` | ``other``.
        variant: deployment variant for A/B tests and canaries (``ml.model.variant``), e.g. ``"canary"``.
        classes: the class labels the model can predict; anything else is counted as ``other``.
            Without it, the first ``max_classes`` distinct labels are kept.
        max_classes: cap on distinct ``ml.prediction.class`` values (default 50).
        duration_buckets: histogram boundaries in seconds for ``ml.inference.duration``.
        reference: a :class:`~otel_ml.ReferenceProfile` to compute drift and data quality against.
        drift_window_s: length of the sliding drift window in seconds.
        positive_class: the positive label of a binary classifier, for precision, recall, F1
            and ROC AUC from delayed labels (default: the label ``1``).
        outcome_ttl_s, max_pending_outcomes: how long and how many predictions are kept to be
            joined with delayed ground truth by ``record_outcome``.
        capture_content: let raw features / outputs into prediction logs (default: off, or env
            ``OTEL_ML_CAPTURE_CONTENT``).
        prediction_log_sample_rate: fraction of ``log_prediction`` calls that emit a record.
        tracer_provider, meter_provider: providers to use instead of the global ones.

    Raises:
        TypeError, ValueError: at construction, for arguments of the wrong type or value.
    """

    def __init__(
        self,
        name: str,
        *,
        version: str | int = "unversioned",
        task: str = "classification",
        variant: str | None = None,
        classes: Iterable[Any] | None = None,
        max_classes: int = 50,
        duration_buckets: Iterable[float] | None = None,
        reference: Any = None,
        drift_window_s: float = 300.0,
        positive_class: Any = None,
        outcome_ttl_s: float = 3600.0,
        max_pending_outcomes: int = 100_000,
        capture_content: bool | None = None,
        prediction_log_sample_rate: float = 1.0,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: otel_metrics.MeterProvider | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if not name.strip():
            raise ValueError("name must not be empty")
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise TypeError(f"version must be a str or int, got {type(version).__name__}")
        if not isinstance(task, str) or task not in _TASKS:
            raise ValueError(f"task must be one of {sorted(_TASKS)}, got {task!r}")
        if variant is not None and not isinstance(variant, str):
            raise TypeError(f"variant must be a str or None, got {type(variant).__name__}")
        if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 1:
            raise ValueError(f"max_classes must be a positive int, got {max_classes!r}")
        if not isinstance(prediction_log_sample_rate, (int, float)) or not 0.0 <= prediction_log_sample_rate <= 1.0:
            raise ValueError(f"prediction_log_sample_rate must be within [0, 1], got {prediction_log_sample_rate!r}")
        for arg, value in (("drift_window_s", drift_window_s), ("outcome_ttl_s", outcome_ttl_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{arg} must be a positive number, got {value!r}")
        if isinstance(max_pending_outcomes, bool) or not isinstance(max_pending_outcomes, int) \
                or max_pending_outcomes < 1:
            raise ValueError(f"max_pending_outcomes must be a positive int, got {max_pending_outcomes!r}")
        bounds: tuple[float, ...] = instruments.DURATION_BUCKETS
        if duration_buckets is not None:
            bounds = tuple(float(b) for b in duration_buckets)
            if not bounds or any(not math.isfinite(b) for b in bounds) or list(bounds) != sorted(set(bounds)):
                raise ValueError("duration_buckets must be finite, strictly increasing and not empty")
        allowed = None
        if classes is not None:
            if isinstance(classes, (str, bytes)):
                raise TypeError("classes must be an iterable of labels, not a single string")
            labels = [label_of(c) for c in classes]
            if any(label is None for label in labels):
                raise ValueError("classes must be str, int or bool labels")
            allowed = frozenset(cast(list[str], labels))
            max_classes = max(max_classes, len(allowed))

        self.name = name
        self.version = str(version)
        self.task = task
        self.variant = variant
        self.capture_content = _env_flag("OTEL_ML_CAPTURE_CONTENT") if capture_content is None else capture_content
        self._log_rate = float(prediction_log_sample_rate)
        self._random = random.Random()

        base: dict[str, str] = {names.MODEL_NAME: name, names.MODEL_VERSION: self.version}
        if variant:
            base[names.MODEL_VARIANT] = variant
        self.attributes: Mapping[str, str] = base
        self._span_attributes = {**base, names.MODEL_TASK: task}
        self._span_name = f"inference {name}"
        self._classes = BoundedLabels(max_classes, allowed)

        # Pre-aggregated streams, with their series resolved once for the hot path.
        self._source = MetricSource()
        self._duration_spec = instruments.inference_duration(bounds)
        with self._source.lock:
            self._duration_ok = self._source.series(self._duration_spec, base)
            self._batch = self._source.series(instruments.BATCH_SIZE, base)
            self._confidence = self._source.series(instruments.CONFIDENCE, base)
        self._duration_err: dict[str, Any] = {}
        self._class_series: dict[str, Any] = {}

        self._explicit_tracer_provider = tracer_provider
        self._tracer_provider_seen: object = None
        self._tracer: trace.Tracer = trace.NoOpTracer()
        self._skip_unsampled_children = False
        # Attributes handed to start_span (seen by the sampler); None when the sampler is one of
        # the SDK's built-in ones, which never read them - they are then added without
        # re-validation right after the span starts (see set_trusted_attributes).
        self._start_attributes: dict[str, str] | None = self._span_attributes
        self._meter_provider = meter_provider
        self._sdk_meter_provider: SdkMeterProvider | None = None  # once attached
        self._attached = False
        self._next_attach_try = 0.0
        self._drift: Any = None
        self._outcomes: Any = None
        self._try_attach()

        self._drift_on_predictions = False
        if reference is not None:
            from otel_ml._internal.integrations import make_drift_tracker

            self._drift = make_drift_tracker(self, reference, drift_window_s)
            # Prediction drift compares what record() gets - confidence, or class labels - with
            # the profile's `predictions`; build the profile from the same quantity.
            self._drift_on_predictions = getattr(self._drift, "_predictions", None) is not None
        self._outcome_args = (outcome_ttl_s, max_pending_outcomes)
        self.positive_class = positive_class

    # ------------------------------------------------------------------ wiring
    def _try_attach(self) -> None:
        """Attach our metric source to the SDK meter provider (now, or once one is installed)."""
        provider = self._meter_provider or otel_metrics.get_meter_provider()
        if isinstance(provider, SdkMeterProvider):
            producer_for(provider).add(self._source)
            self._attached = True
            from otel_ml._internal.integrations import on_meter_provider

            on_meter_provider(self, provider)
            return
        self._next_attach_try = time.monotonic() + _ATTACH_RETRY_S
        if self._meter_provider is not None:
            selftelemetry.log_once(
                f"meter_provider_not_sdk:{type(provider).__name__}",
                "otel_ml: meter provider %s is not the OpenTelemetry SDK's; otel_ml metrics are not exported",
                type(provider).__name__,
            )

    def _resolve_tracer(self) -> trace.Tracer:
        provider = self._explicit_tracer_provider or trace.get_tracer_provider()
        if provider is not self._tracer_provider_seen:
            self._tracer_provider_seen = provider
            self._tracer = provider.get_tracer("otel_ml", __version__)
            sampler = getattr(provider, "sampler", None) if isinstance(provider, SdkTracerProvider) else None
            self._skip_unsampled_children = isinstance(sampler, ParentBased) and all(
                getattr(sampler, attr, None) is ALWAYS_OFF
                for attr in ("_remote_parent_not_sampled", "_local_parent_not_sampled")
            )
            self._start_attributes = None if _ignores_attributes(sampler) else self._span_attributes
        return self._tracer

    def _start_span(self, name: str, attributes: Mapping[str, Any] | None,
                    trusted: Mapping[str, Any] | None = None) -> Any:
        """A span under the current one, or None where a parent-based sampler would drop it.

        ``trusted`` attributes are added after the start without re-validation
        (see :func:`set_trusted_attributes`).
        """
        tracer = self._resolve_tracer()
        parent = trace.get_current_span().get_span_context()
        if self._skip_unsampled_children and parent.is_valid and not parent.trace_flags.sampled:
            return None
        span = tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes,
                                 record_exception=False, set_status_on_exception=False)
        if trusted and span.is_recording():
            set_trusted_attributes(span, dict(trusted))
        return span

    @property
    def metric_source(self) -> MetricSource:
        return self._source

    # ---------------------------------------------------------------- hot path
    def inference(
        self,
        *,
        batch_size: int | None = None,
        features: Any = None,
        prediction_id: str | None = None,
    ) -> Inference:
        """Context manager around one inference call (a single row or a batch).

        ``features`` (optional) feed drift and data-quality state when the monitor has a
        reference profile; they are never exported raw. Inside the block call
        ``inf.record(predictions=..., confidence=...)``. An exception inside the block is
        recorded (``error.type``, span status) and re-raised unchanged.
        """
        return Inference(self, batch_size, features, prediction_id)

    def _finish(self, inf: Inference, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        duration = (time.perf_counter_ns() - inf._t0) * 1e-9
        span = inf._span
        trace_id = span_id = 0
        error_type: str | None = None
        if exc_type is not None:
            error_type = _error_type(exc_type)
        if span is not None:
            ctx = span.get_span_context()
            if ctx.trace_flags & 1:
                trace_id, span_id = ctx.trace_id, ctx.span_id
            if span.is_recording():
                end_attrs: dict[str, Any] = {}
                if inf._batch_size is not None:
                    end_attrs[names.INFERENCE_BATCH_SIZE] = inf._batch_size
                if inf._prediction_id is not None:
                    end_attrs["ml.prediction.id"] = inf._prediction_id
                if inf._single_label is not None:
                    end_attrs[names.PREDICTION_CLASS] = inf._single_label
                if inf._single_conf is not None:
                    end_attrs[names.PREDICTION_CONFIDENCE] = inf._single_conf
                if error_type is not None:
                    end_attrs[names.ERROR_TYPE] = error_type
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__ if exc is not None else None))
                    if exc is not None:
                        span.record_exception(exc)
                if end_attrs:
                    set_trusted_attributes(span, end_attrs)
            span.end()

        with self._source.lock:
            if error_type is None:
                self._duration_ok.record(duration, trace_id, span_id)
            else:
                self._error_series(error_type).record(duration, trace_id, span_id)
            if inf._batch_size is not None:
                self._batch.record(inf._batch_size)
            conf = inf._conf_batch
            if conf is not None:
                self._confidence.record_many(*conf)
            elif inf._single_conf is not None:
                self._confidence.record(inf._single_conf)
            classes = inf._class_counts
            if classes is not None:
                for label, n in classes.items():
                    self._class_counter(label).value += n
            elif inf._single_label is not None:
                self._class_counter(inf._single_label).value += 1

        if not self._attached and time.monotonic() >= self._next_attach_try:
            self._try_attach()

    def _error_series(self, error_type: str) -> Any:
        series = self._duration_err.get(error_type)
        if series is None:
            if len(self._duration_err) >= _MAX_ERROR_TYPES:
                selftelemetry.dropped("error_type_cardinality_cap", "metrics", detail=error_type)
                error_type = "_OTHER"  # the semantic conventions' fallback value for error.type
                series = self._duration_err.get(error_type)
            if series is None:
                series = self._source.series(self._duration_spec, {**self.attributes, names.ERROR_TYPE: error_type})
                self._duration_err[error_type] = series
        return series

    def _class_counter(self, label: str) -> Any:
        series = self._class_series.get(label)
        if series is None:
            series = self._source.series(instruments.PREDICTIONS, {**self.attributes, names.PREDICTION_CLASS: label})
            self._class_series[label] = series
        return series

    # ------------------------------------------------------------- decorator
    def observe(
        self,
        func: F | None = None,
        *,
        outputs: str | Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> Any:
        """Decorate a predict function (sync, async, generator or async generator).

        ``outputs`` says how to read predictions from the return value:
        ``"labels"`` (class labels, one or many), ``"proba"`` (class probabilities, rows x
        classes: the predicted class is the arg-max and its probability the confidence),
        ``"scores"`` (one score per row in [0, 1], used as confidence), or a callable returning
        a mapping with ``predictions`` and/or ``confidence``. Generators of a ``generation``
        monitor record GenAI metrics: each yielded item is one output token.
        """
        if outputs is not None and not callable(outputs) and outputs not in ("labels", "proba", "scores"):
            raise ValueError(f"outputs must be 'labels', 'proba', 'scores' or a callable, got {outputs!r}")

        def decorate(fn: F) -> F:
            if not callable(fn):
                raise TypeError("observe() decorates a callable")
            if inspect.isasyncgenfunction(fn):
                return cast(F, self._wrap_async_gen(fn))
            if inspect.isgeneratorfunction(fn):
                return cast(F, self._wrap_gen(fn))
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    with self.inference() as inf:
                        result = await fn(*args, **kwargs)
                        inf._record_outputs(result, outputs)
                        return result

                return cast(F, async_wrapper)

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.inference() as inf:
                    result = fn(*args, **kwargs)
                    inf._record_outputs(result, outputs)
                    return result

            return cast(F, wrapper)

        if func is not None:
            return decorate(func)
        return decorate

    def _wrap_gen(self, fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if self.task == "generation":
                return cast(Iterator[Any], self.wrap_stream(fn(*args, **kwargs)))
            return self._iterate_as_inference(fn(*args, **kwargs))

        return wrapper

    def _iterate_as_inference(self, it: Iterator[Any]) -> Iterator[Any]:
        with self.inference():
            yield from it

    def _wrap_async_gen(self, fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            if self.task == "generation":
                return cast(AsyncIterator[Any], self.wrap_stream(fn(*args, **kwargs)))
            return self._aiterate_as_inference(fn(*args, **kwargs))

        return wrapper

    async def _aiterate_as_inference(self, it: AsyncIterator[Any]) -> AsyncIterator[Any]:
        with self.inference():
            async for item in it:
                yield item

    # ---------------------------------------------------------------- GenAI
    def generation(self, **kwargs: Any) -> Any:
        """Context manager for one LLM generation; see :class:`otel_ml.Generation`."""
        from otel_ml._internal.genai import Generation

        return Generation(self, **kwargs)

    def wrap_stream(self, stream: Any, **kwargs: Any) -> Any:
        """Wrap a token stream (sync or async iterable) as one generation, timed from now.

        The generation ends when the stream is exhausted, closed or raises, so it suits
        responses streamed after the request handler returned (e.g. ``StreamingResponse``).
        """
        from otel_ml._internal.genai import wrap_stream

        return wrap_stream(self, stream, **kwargs)

    # ------------------------------------------------------------ prediction log
    def log_prediction(
        self,
        *,
        prediction: Any = None,
        confidence: float | None = None,
        prediction_id: str | None = None,
        features: Any = None,
        output: Any = None,
        level: int = logging.INFO,
        **attributes: Any,
    ) -> None:
        """Emit one structured, sampled prediction log record (never raises).

        Raw ``features`` and ``output`` are included only with ``capture_content=True``;
        otherwise only their size is recorded.
        """
        try:
            if self._log_rate < 1.0 and self._random.random() >= self._log_rate:
                return
            extra: dict[str, Any] = dict(self.attributes)
            if prediction is not None:
                label = label_of(prediction)
                if label is not None:
                    extra[names.PREDICTION_CLASS] = label
            if isinstance(confidence, (int, float)) and math.isfinite(confidence):
                extra[names.PREDICTION_CONFIDENCE] = float(confidence)
            if prediction_id is not None:
                extra["ml.prediction.id"] = str(prediction_id)[:128]
            for key, value in attributes.items():
                if isinstance(value, (str, bool, int, float)):
                    extra[key] = value
            if features is not None:
                if self.capture_content:
                    extra["ml.features"] = repr(features)[:4096]
                else:
                    extra["ml.features.count"] = _size_of(features)
            if output is not None:
                if self.capture_content:
                    extra["ml.output"] = repr(output)[:4096]
                else:
                    extra["ml.output.size"] = _size_of(output)
            extra["otel.event.name"] = "ml.prediction"
            _predictions_logger.log(level, "prediction %s", extra.get(names.PREDICTION_CLASS, ""), extra=extra)
        except Exception as exc:
            selftelemetry.dropped("prediction_log_error", "logs", detail=exc)

    # ------------------------------------------------------- drift and quality
    def record_outcome(self, prediction_id: Any, actual: Any) -> None:
        """Join delayed ground truth to a remembered prediction (never raises)."""
        try:
            tracker = self._outcome_tracker()
            tracker.record(_id_key(prediction_id), self._actual_key(actual))
        except Exception as exc:
            selftelemetry.dropped("outcome_error", "metrics", detail=exc)

    def record_outcomes(self, prediction_ids: Iterable[Any], actuals: Iterable[Any]) -> None:
        """Batch form of :meth:`record_outcome` (never raises)."""
        try:
            tracker = self._outcome_tracker()
            tracker.record_many([_id_key(i) for i in prediction_ids], [self._actual_key(a) for a in actuals])
        except Exception as exc:
            selftelemetry.dropped("outcome_error", "metrics", detail=exc)

    def _actual_key(self, actual: Any) -> Any:
        # Predicted classes are kept as label strings (labels.py); labels must match them.
        if self.task == "regression" or actual is None:
            return actual
        label = label_of(actual)
        return actual if label is None else label

    def drift(self) -> dict[str, Any]:
        """Per-feature drift of the current window (empty without a reference profile)."""
        if self._drift is None:
            return {}
        return cast(dict[str, Any], self._drift.evaluate())

    def quality(self) -> Any:
        """Quality metrics from the outcomes recorded so far in the window."""
        return self._outcome_tracker().evaluate()

    def _outcome_tracker(self) -> Any:
        if self._outcomes is None:
            from otel_ml._internal.integrations import make_outcome_tracker

            self._outcomes = make_outcome_tracker(self, *self._outcome_args)
        return self._outcomes

    def __repr__(self) -> str:
        return f"ModelMonitor(name={self.name!r}, version={self.version!r}, task={self.task!r})"


def restore_context(model_token: Any, ctx_token: Any) -> None:
    """Undo what entering an inference or a generation set in the context (never raises)."""
    try:
        if model_token is not None:
            CURRENT_MODEL.reset(model_token)
        if ctx_token is not None:
            otel_context.detach(ctx_token)
    except Exception as err:
        selftelemetry.dropped("context_error", "traces", detail=err)


def _ignores_attributes(sampler: Sampler | None) -> bool:
    """True for the SDK's built-in samplers, whose decisions never depend on span attributes."""
    if isinstance(sampler, (StaticSampler, TraceIdRatioBased)):
        return True
    if isinstance(sampler, ParentBased):
        delegates = ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
                     "_local_parent_sampled", "_local_parent_not_sampled")
        return all(_ignores_attributes(getattr(sampler, d, None)) for d in delegates)
    return False


def set_trusted_attributes(span: Any, attributes: dict[str, Any]) -> None:
    """Add attributes that otel_ml built itself (str, int, float, bool values) to a live span.

    ``Span.set_attributes`` re-validates every value (about 1 us each on our machines); these
    values are valid by construction, so on the SDK's span they go straight into its bounded
    attribute map when it has room and no value-length limit. Any other span, or an SDK whose
    internals differ, takes the public API.
    """
    bounded = getattr(span, "_attributes", None)
    target = getattr(bounded, "_dict", None)
    if (
        type(target) is dict
        and getattr(bounded, "max_value_len", 0) is None
        and getattr(span, "_end_time", 0) is None
        and len(target) + len(attributes) <= (getattr(bounded, "maxlen", None) or 128)
    ):
        target.update(attributes)
    else:
        span.set_attributes(attributes)


def _id_key(prediction_id: Any) -> Any:
    # Inference ids are stored as (truncated) strings; look them up the same way.
    return None if prediction_id is None else str(prediction_id)[:128]


def _size_of(value: Any) -> int:
    shape = getattr(value, "shape", None)
    if shape is not None:
        n = 1
        for dim in shape:
            n *= int(dim)
        return n
    try:
        return len(value)
    except TypeError:
        return 1


def _error_type(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    if module in ("builtins", "__main__"):
        return exc_type.__qualname__
    return f"{module}.{exc_type.__qualname__}"


class Inference:
    """One inference in progress; returned by ``ModelMonitor.inference()``."""

    __slots__ = (
        "_batch_size",
        "_class_counts",
        "_conf_batch",
        "_conf_raw",
        "_ctx_token",
        "_features",
        "_labels_raw",
        "_model_token",
        "_monitor",
        "_pred_value",
        "_prediction_id",
        "_score",
        "_single_conf",
        "_single_label",
        "_span",
        "_t0",
    )

    def __init__(self, monitor: ModelMonitor, batch_size: int | None, features: Any, prediction_id: Any) -> None:
        self._monitor = monitor
        self._batch_size = batch_size if batch_size is None or (type(batch_size) is int and batch_size >= 0) \
            else _as_batch_size(batch_size)
        self._features = features
        self._prediction_id = None if prediction_id is None else str(prediction_id)[:128]
        self._single_label: str | None = None
        self._single_conf: float | None = None
        self._class_counts: dict[str, int] | None = None
        self._conf_batch: tuple[list[int], float, float, float] | None = None
        self._conf_raw: Any = None  # kept only for prediction drift
        self._labels_raw: Any = None
        self._pred_value: float | None = None  # regression output, for outcome joins
        self._score: float | None = None  # positive-class score, for ROC AUC
        self._span: Any = None
        self._ctx_token: Any = None
        self._model_token: Any = None
        self._t0 = 0

    def __enter__(self) -> Inference:
        m = self._monitor
        try:
            start = m._start_attributes
            span = m._start_span(m._span_name, start, m._span_attributes if start is None else None)
            if span is not None:
                self._span = span
                self._ctx_token = otel_context.attach(trace.set_span_in_context(span))
            self._model_token = CURRENT_MODEL.set(m._span_attributes)
        except Exception as exc:
            selftelemetry.dropped("span_start_error", "traces", detail=exc)
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        m = self._monitor
        try:
            m._finish(self, exc_type, exc)
        except Exception as err:
            selftelemetry.dropped("internal_error", "metrics", detail=err)
        restore_context(self._model_token, self._ctx_token)
        drift = m._drift
        if drift is not None:
            if self._features is not None:
                drift.update(self._features)
            if m._drift_on_predictions and (self._conf_raw is not None or self._labels_raw is not None):
                drift.update_predictions(scores=self._conf_raw, classes=self._labels_raw)
        predicted = self._pred_value if m.task == "regression" else self._single_label
        if self._prediction_id is not None and predicted is not None:
            try:
                m._outcome_tracker().remember(self._prediction_id, predicted, self._score)
            except Exception as err:
                selftelemetry.dropped("outcome_error", "metrics", detail=err)

    @property
    def span(self) -> trace.Span:
        """The inference span (a non-recording span when the trace is not sampled)."""
        return self._span if self._span is not None else trace.INVALID_SPAN

    @property
    def prediction_id(self) -> str | None:
        return self._prediction_id

    def record(
        self,
        *,
        predictions: Any = None,
        confidence: Any = None,
        prediction_id: Any = None,
        score: Any = None,
    ) -> None:
        """Record the model's output for this call (never raises).

        ``predictions``: one class label, or a sequence / array of labels (one per row).
        ``confidence``: one probability in [0, 1], or one per row. Values that are not finite
        numbers in [0, 1] are dropped and counted (``otel_ml.dropped``, reason
        ``invalid_confidence``).
        ``score``: the positive class's probability (binary models), kept with the prediction
        id so delayed labels give ROC AUC. Regression monitors take the predicted value in
        ``predictions``.
        """
        try:
            if prediction_id is not None:
                self._prediction_id = str(prediction_id)[:128]
            if predictions is not None:
                self._record_predictions(predictions)
            if confidence is not None:
                self._record_confidence(confidence)
            if score is not None:
                value = float(score)
                if 0.0 <= value <= 1.0:
                    self._score = value
                else:
                    selftelemetry.dropped("invalid_score", "metrics", detail=score)
        except Exception as exc:
            selftelemetry.dropped("invalid_output", "metrics", detail=exc)

    def _record_predictions(self, predictions: Any) -> None:
        if self._monitor.task == "regression":
            if (isinstance(predictions, (int, float)) and not isinstance(predictions, bool)) \
                    or getattr(predictions, "ndim", None) == 0:
                value = float(predictions)
                if math.isfinite(value):
                    self._pred_value = value
                    return
            if getattr(predictions, "ndim", 0) == 0 and not isinstance(predictions, (list, tuple)):
                selftelemetry.dropped("invalid_predictions", "metrics", detail=type(predictions).__name__)
            return
        classes = self._monitor._classes
        if isinstance(predictions, (str, bytes, bool, int, float)) or getattr(predictions, "ndim", None) == 0:
            self._single_label = classes.get(predictions)
            self._labels_raw = self._single_label
            if self._batch_size is None:
                self._batch_size = 1
            return
        values = _as_list(predictions)
        if values is None:
            selftelemetry.dropped("invalid_predictions", "metrics", detail=type(predictions).__name__)
            return
        counts: dict[str, int] = {}
        for value in values:
            label = classes.get(value)
            if label is not None:
                counts[label] = counts.get(label, 0) + 1
        self._class_counts = counts
        self._labels_raw = values
        if self._batch_size is None:
            self._batch_size = len(values)

    def _record_confidence(self, confidence: Any) -> None:
        if type(confidence) is float or (isinstance(confidence, (int, float)) and not isinstance(confidence, bool)):
            c = float(confidence)
            if 0.0 <= c <= 1.0:
                self._single_conf = c
                self._conf_raw = c
            else:
                selftelemetry.dropped("invalid_confidence", "metrics", detail=confidence)
            return
        if getattr(confidence, "ndim", None) == 0:
            self._record_confidence(confidence.item())
            return
        try:
            import numpy as np

            arr = np.asarray(confidence, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            selftelemetry.dropped("invalid_confidence", "metrics", detail=type(confidence).__name__)
            return
        valid = (arr >= 0.0) & (arr <= 1.0)  # NaN fails both comparisons
        n_bad = int(arr.size - int(valid.sum()))
        if n_bad:
            selftelemetry.dropped("invalid_confidence", "metrics", n=n_bad)
            arr = arr[valid]
        if arr.size == 0:
            return
        self._conf_raw = arr
        bounds = self._monitor._confidence.bounds
        idx = np.searchsorted(np.asarray(bounds), arr, side="left")
        counts = np.bincount(idx, minlength=len(bounds) + 1).tolist()
        self._conf_batch = (counts, float(arr.sum()), float(arr.min()), float(arr.max()))

    def _record_outputs(self, result: Any, outputs: str | Callable[[Any], Mapping[str, Any]] | None) -> None:
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
            selftelemetry.dropped("invalid_output", "metrics", detail=exc)


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
    try:
        return list(values)
    except TypeError:
        return None


def _as_batch_size(value: Any) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        selftelemetry.dropped("invalid_batch_size", "metrics", detail=value)
        return None
    if n < 0:
        selftelemetry.dropped("invalid_batch_size", "metrics", detail=value)
        return None
    return n
