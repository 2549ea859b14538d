"""``ModelMonitor``: the typed facade over one served model's telemetry.

It validates its arguments, builds the model's shared context (``context.py``), the hot-path
series (``inference.py``), the drift tracker and - on first use - the outcome store, and links
them to the meter provider through ``wiring.py``. Every per-call object (an ``Inference``, a
``Generation``) receives what it needs from it; none reaches back into the monitor.

Any number of monitors may live in one process (models, versions, variants, one re-created
after a reload); each exports every signal. ``close()`` stops a monitor's export (idempotent);
a monitor that is garbage-collected is unlinked as well.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace

from otel_ml._internal import env, forksafe, instruments, observe, prediction_log, selftelemetry
from otel_ml._internal.bounded import MAX_ITERABLE_ROWS, read_bounded
from otel_ml._internal.context import ModelContext
from otel_ml._internal.genai import Generation, wrap_stream
from otel_ml._internal.inference import Feeds, Inference, InferenceMetrics, OutcomeSink, Outputs, QuickLane
from otel_ml._internal.labels import BoundedLabels, identity_caps, label_of
from otel_ml._internal.wiring import ModelLink

if TYPE_CHECKING:
    from otel_ml._internal.drift import DriftPolicy, DriftResult, DriftTracker, ReferenceProfile
    from otel_ml._internal.quality import OutcomeTracker, QualityReport

Task = Literal["classification", "regression", "ranking", "embedding", "generation", "other"]
ClassLabel = str | int | bool
WindowBy = Literal["label_time", "prediction_time"]
TASKS: tuple[str, ...] = ("classification", "regression", "ranking", "embedding", "generation", "other")

F = TypeVar("F", bound=Callable[..., Any])


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
        duration_buckets: histogram boundaries in seconds for ``ml.inference.duration`` (at most 1000).
        reference: a :class:`~otel_ml.ReferenceProfile` to compute drift and data quality against.
        drift_policy: a :class:`~otel_ml.DriftPolicy` (methods, status rule, thresholds, window);
            default ``DriftPolicy()``. Needs ``reference``.
        positive_class: the positive label of a binary classifier, for precision, recall, F1
            and ROC AUC from delayed labels (default: the label ``1``).
        outcome_ttl_s, max_pending_outcomes: how long and how many predictions are kept to be
            joined with delayed ground truth by ``record_outcome(s)`` (see ``OutcomeTracker``
            for the memory each pending prediction takes).
        quality_window_s: the window ``quality()`` and ``ml.quality.score`` cover.
        quality_window_by: ``"label_time"`` (default: outcomes count when their label arrives) or
            ``"prediction_time"`` (when the prediction was made).
        capture_content: let raw features / outputs into prediction logs (default: off, or env
            ``OTEL_ML_CAPTURE_CONTENT``). Captured records carry ``otel_ml.content.captured=true``,
            which is what lets them through the collector's content redaction (collector/config.yaml).
        redact: with ``capture_content``, called as ``redact(kind, value)`` (``kind`` is
            ``"features"`` or ``"output"``) before the content leaves the process; what it returns
            is recorded (``None``: nothing). If it raises, the content is left out and counted
            (``redact_error``): a failing redactor never lets raw content through.
        prediction_log_sample_rate: fraction of ``log_prediction`` calls that emit a record.
        clock: seconds, driving every drift and quality window and the outcome TTL (default
            ``time.monotonic``); pass one to replay historical traffic deterministically. A reading
            that raises or is not a finite number is counted (``clock_error``) and replaced by the
            last good one.
        tracer_provider, meter_provider: providers to use instead of the global ones.

    Raises:
        TypeError, ValueError: at construction, for arguments of the wrong type or value (the
            message names the argument).
    """

    def __init__(
        self,
        name: str,
        *,
        version: str | int = "unversioned",
        task: Task = "classification",
        variant: str | None = None,
        classes: Iterable[ClassLabel] | None = None,
        max_classes: int = 50,
        duration_buckets: Iterable[float] | None = None,
        reference: ReferenceProfile | None = None,
        drift_policy: DriftPolicy | None = None,
        positive_class: ClassLabel | None = None,
        outcome_ttl_s: float = 3600.0,
        max_pending_outcomes: int = 100_000,
        quality_window_s: float = 3600.0,
        quality_window_by: WindowBy = "label_time",
        capture_content: bool | None = None,
        redact: Callable[[str, Any], Any] | None = None,
        prediction_log_sample_rate: float = 1.0,
        clock: Callable[[], float] | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: otel_metrics.MeterProvider | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if not name.strip():
            raise ValueError("name must not be empty")
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise TypeError(f"version must be a str or int, got {type(version).__name__}")
        if not isinstance(task, str) or task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
        if variant is not None and not isinstance(variant, str):
            raise TypeError(f"variant must be a str or None, got {type(variant).__name__}")
        _positive_int("max_classes", max_classes)
        _positive_int("max_pending_outcomes", max_pending_outcomes)
        if isinstance(prediction_log_sample_rate, bool) or not isinstance(prediction_log_sample_rate, (int, float)) \
                or not 0.0 <= prediction_log_sample_rate <= 1.0:
            raise ValueError(f"prediction_log_sample_rate must be within [0, 1], got {prediction_log_sample_rate!r}")
        for arg, value in (("outcome_ttl_s", outcome_ttl_s), ("quality_window_s", quality_window_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not (value > 0 and value <= _MAX_SECONDS):  # ints past float range too (no OverflowError)
                raise ValueError(f"{arg} must be a positive number of seconds, got {value!r}"[:200])
        if quality_window_s < _MIN_WINDOW_S:  # split into sub-windows, a denormal one would divide by zero
            raise ValueError(f"quality_window_s must be at least {_MIN_WINDOW_S} s, got {quality_window_s!r}")
        if quality_window_by not in ("label_time", "prediction_time"):
            raise ValueError(f"quality_window_by must be 'label_time' or 'prediction_time', got {quality_window_by!r}")
        if capture_content is not None and not isinstance(capture_content, bool):
            raise TypeError(f"capture_content must be a bool or None, got {type(capture_content).__name__}")
        if positive_class is not None and label_of(positive_class) is None:
            raise TypeError(f"positive_class must be a str, int or bool label, got {type(positive_class).__name__}")
        if redact is not None and not callable(redact):
            raise TypeError(f"redact must be a callable(kind, value) or None, got {type(redact).__name__}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {type(clock).__name__}")
        if drift_policy is not None and reference is None:
            raise ValueError("drift_policy needs a reference profile (reference=...)")
        bounds = _duration_bounds(duration_buckets)
        allowed = None
        if classes is not None:
            if isinstance(classes, (str, bytes)):
                raise TypeError("classes must be an iterable of labels, not a single string")
            read = read_bounded(classes)  # a range(10**12) or a generator is read up to the bound only
            if read is None:
                raise ValueError(f"classes must hold at most {MAX_ITERABLE_ROWS} labels")
            labels = [label_of(c) for c in read]
            if any(label is None for label in labels):
                raise ValueError("classes must be str, int or bool labels")
            allowed = frozenset(cast(list[str], labels))
            max_classes = max(max_classes, len(allowed))
        make_drift = _drift_tracker(reference, drift_policy) if reference is not None else None

        registry = selftelemetry.for_provider(meter_provider)
        self._clock: Callable[[], float] = clock or time.monotonic
        self._ctx = ModelContext(
            name=name, version=str(version), task=task, variant=variant,
            classes=BoundedLabels(max_classes, allowed, registry),
            tracer_provider=tracer_provider, meter_provider=meter_provider, registry=registry,
            clock=self._clock,
            capture_content=env.flag(env.CAPTURE_CONTENT) if capture_content is None else capture_content,
            prediction_log_sample_rate=float(prediction_log_sample_rate), redact=redact,
        )
        # Metrics carry the capped identity (spans and logs keep the real one): a process that makes a
        # monitor per version or variant value exports at most the caps' series (names.py).
        self._ctx.attributes = identity_caps(registry).attributes(name, str(version), variant)
        self._metrics = InferenceMetrics(self._ctx, bounds)
        self._quick: QuickLane | None = None
        self._drift: DriftTracker | None = make_drift(self._clock, registry) if make_drift is not None else None
        self.positive_class = positive_class
        self._outcome_args = (float(outcome_ttl_s), max_pending_outcomes, float(quality_window_s), quality_window_by)
        self._outcomes: OutcomeTracker | None = None
        self._outcomes_lock = threading.Lock()
        forksafe.renew_after_fork(self, "_outcomes_lock")
        prediction_kind = reference.prediction_kind if reference is not None and reference.prediction else None
        # Held weakly: a bound method would make monitor -> feeds -> monitor a cycle, and a dropped monitor
        # would wait for the garbage collector instead of going at once (a process making many pays for it).
        sink = weakref.WeakMethod(self._outcome_sink)
        self._feeds = Feeds(self._drift, prediction_kind, lambda: _call_weak(sink))
        self._link = ModelLink(self._ctx, self._drift)
        self._ctx.set_attach(self._link.attach)

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self._ctx.name

    @property
    def version(self) -> str:
        return self._ctx.version

    @property
    def variant(self) -> str | None:
        return self._ctx.variant

    @property
    def task(self) -> str:
        return self._ctx.task

    @property
    def attributes(self) -> Mapping[str, str]:
        """``ml.model.name``, ``ml.model.version`` (and ``ml.model.variant``): on every signal."""
        return self._ctx.attributes

    @property
    def capture_content(self) -> bool:
        return self._ctx.capture_content

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def closed(self) -> bool:
        return self._ctx.closed

    # ---------------------------------------------------------------- hot path
    def inference(
        self,
        *,
        batch_size: int | None = None,
        features: Any = None,
        prediction_id: str | int | None = None,
        prediction_ids: Iterable[str | int] | None = None,
        method: str | None = None,
    ) -> Inference:
        """Context manager around one inference call (a single row or a batch).

        ``features`` (optional) feed drift and data-quality state when the monitor has a
        reference profile; they are never exported raw. ``prediction_id`` (one row) or
        ``prediction_ids`` (one per row, aligned with the batch) let ``record_outcomes`` join
        delayed labels to every row. Inside the block call ``inf.record(predictions=...,
        confidence=..., score=...)``. An exception inside the block is recorded (``error.type``,
        span status) and re-raised unchanged. ``method`` (``ml.model.method``, e.g. ``predict_proba``)
        names the model method served, on the span and the latency histogram.
        """
        return Inference(self._ctx, self._metrics, self._feeds, batch_size, features, prediction_id, prediction_ids,
                         method)

    def quick_lane(self) -> QuickLane | None:
        """For instrumentors: the append-only path of this model's unsampled one-row calls
        (:class:`~otel_ml._internal.inference.QuickLane`); None when every call must take
        :meth:`inference` (a drift tracker reads each call's features)."""
        if self._drift is not None:
            return None
        if self._quick is None:
            self._quick = QuickLane(self._ctx, self._metrics)
        return self._quick

    @overload
    def observe(self, func: F, *, outputs: Outputs = None) -> F: ...

    @overload
    def observe(self, func: None = None, *, outputs: Outputs = None) -> Callable[[F], F]: ...

    def observe(self, func: F | None = None, *, outputs: Outputs = None) -> F | Callable[[F], F]:
        """Decorate a predict function (sync, async, generator or async generator).

        ``outputs`` says how to read predictions from the return value: ``"labels"``,
        ``"proba"`` (rows x classes), ``"scores"`` (used as confidence), or a callable returning a
        mapping with ``predictions`` and/or ``confidence``. Generators of a ``generation`` monitor
        record GenAI metrics, one output token per yielded item.
        """
        observe.check_outputs(outputs)

        def decorate(fn: F) -> F:
            return observe.decorate(self, fn, outputs)

        return decorate(func) if func is not None else decorate

    # ---------------------------------------------------------------- GenAI
    def generation(
        self,
        *,
        operation: str = "chat",
        request_model: str | None = None,
        provider: str | None = None,
        input_tokens: int | None = None,
        response_model: str | None = None,
    ) -> Generation:
        """Context manager for one LLM generation; see :class:`otel_ml.Generation`."""
        return Generation(self._ctx, operation=operation, request_model=request_model, provider=provider,
                          input_tokens=input_tokens, response_model=response_model)

    def wrap_stream(
        self,
        stream: Iterable[Any] | AsyncIterable[Any],
        *,
        tokens_of: Callable[[Any], int] | None = None,
        operation: str = "chat",
        request_model: str | None = None,
        provider: str | None = None,
        input_tokens: int | None = None,
        response_model: str | None = None,
    ) -> Iterator[Any] | AsyncIterator[Any]:
        """Wrap a token stream (sync or async iterable) as one generation, timed from now.

        The generation ends when the stream is exhausted, closed or raises, so it suits
        responses streamed after the request handler returned (e.g. ``StreamingResponse``).
        ``tokens_of(item)`` says how many tokens an item holds (default 1).
        """
        return wrap_stream(self._ctx, stream, tokens_of, operation=operation, request_model=request_model,
                           provider=provider, input_tokens=input_tokens, response_model=response_model)

    # ------------------------------------------------------------ prediction log
    def log_prediction(
        self,
        *,
        prediction: Any = None,
        confidence: float | None = None,
        prediction_id: str | int | None = None,
        features: Any = None,
        output: Any = None,
        level: int = logging.INFO,
        **attributes: str | bool | int | float,
    ) -> None:
        """Emit one structured, sampled prediction log record (never raises).

        Raw ``features`` and ``output`` are included only with ``capture_content=True``;
        otherwise only their size is recorded.
        """
        prediction_log.log_prediction(self._ctx, prediction=prediction, confidence=confidence,
                                      prediction_id=prediction_id, features=features, output=output,
                                      level=level, attributes=attributes)

    # ------------------------------------------------------- drift and quality
    def record_outcome(self, prediction_id: str | int, actual: Any) -> None:
        """Join delayed ground truth to a remembered prediction (never raises)."""
        try:
            self._outcome_tracker().record(_id_key(prediction_id), self._actual_key(actual))
        except Exception as exc:
            self._ctx.selftelemetry.guard(exc, "outcomes")

    def record_outcomes(self, prediction_ids: Iterable[str | int], actuals: Iterable[Any]) -> None:
        """Batch form of :meth:`record_outcome`, ids and labels aligned (never raises)."""
        try:
            # Read up to a bound: a lazy iterable (range(10**12), a generator) must not eat the host.
            id_rows, label_rows = read_bounded(prediction_ids), read_bounded(actuals)
            if id_rows is None or label_rows is None:
                raise ValueError(f"more than {MAX_ITERABLE_ROWS} outcomes in one call")
            ids = [_id_key(i) for i in id_rows]
            labels = [self._actual_key(a) for a in label_rows]
        except Exception as exc:
            self._ctx.selftelemetry.dropped("invalid_outcomes", "outcomes", detail=exc)
            return
        try:
            self._outcome_tracker().record_many(ids, labels)
        except Exception as exc:
            self._ctx.selftelemetry.guard(exc, "outcomes")

    def drift(self) -> dict[str, DriftResult]:
        """Per-feature drift of the current window (empty without a reference profile)."""
        return {} if self._drift is None else self._drift.evaluate()

    def quality(self) -> QualityReport:
        """Quality metrics from the outcomes joined in the quality window."""
        return self._outcome_tracker().evaluate()

    @property
    def drift_tracker(self) -> DriftTracker | None:
        """The streaming drift state (None without a reference profile)."""
        return self._drift

    # ------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop exporting this monitor's telemetry (idempotent). Later calls still never raise."""
        self._ctx.closed = True
        self._link.close()

    def __enter__(self) -> ModelMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        variant = f", variant={self.variant!r}" if self.variant else ""
        return f"ModelMonitor(name={self.name!r}, version={self.version!r}{variant}, task={self.task!r})"

    # -------------------------------------------------------------- internals
    def _actual_key(self, actual: Any) -> Any:
        # Predicted classes are kept as label strings (labels.py); labels must match them.
        if self._ctx.task == "regression" or actual is None:
            return actual
        label = label_of(actual)
        return actual if label is None else label

    def _outcome_sink(self) -> OutcomeSink | None:
        return self._outcome_tracker()

    def _outcome_tracker(self) -> OutcomeTracker:
        tracker = self._outcomes
        if tracker is None:
            with self._outcomes_lock:
                tracker = self._outcomes
                if tracker is None:
                    positive = 1 if self.positive_class is None else self.positive_class
                    tracker = self._outcomes = _outcome_tracker(
                        self._ctx, positive, *self._outcome_args)
                    self._link.outcomes = tracker
        return tracker


def _call_weak(method: weakref.WeakMethod[Callable[[], OutcomeSink | None]]) -> OutcomeSink | None:
    fn = method()
    return None if fn is None else fn()


def _positive_int(arg: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{arg} must be a positive int, got {value!r}")


_MAX_SECONDS = 1e12  # ~31 700 years: any window or TTL past it is a mistake (and inf/NaN fail too)
_MIN_WINDOW_S = 1e-3  # a quality window under a millisecond is a mistake
_MAX_BUCKETS = 1000  # histogram bounds: every series of the histogram holds one count per bucket

def _duration_bounds(duration_buckets: Iterable[float] | None) -> tuple[float, ...]:
    if duration_buckets is None:
        return instruments.DURATION_BUCKETS
    try:
        # Read one past the cap at most: range(10**12) or an endless generator is refused, not read.
        bounds = tuple(float(b) for b in itertools.islice(duration_buckets, _MAX_BUCKETS + 1))
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past float range
        raise ValueError("duration_buckets must be numbers") from None
    if len(bounds) > _MAX_BUCKETS:
        raise ValueError(f"duration_buckets must hold at most {_MAX_BUCKETS} bounds")
    if not bounds or any(not math.isfinite(b) for b in bounds) or list(bounds) != sorted(set(bounds)):
        raise ValueError("duration_buckets must be finite, strictly increasing and not empty")
    return bounds


def _drift_tracker(reference: object, policy: object
                   ) -> Callable[[Callable[[], float], selftelemetry.SelfTelemetry], DriftTracker]:
    """Validate ``reference``/``policy`` now; the tracker is built once the clock is known."""
    # Imported here, not at the top: drift pulls in numpy (and scipy on first evaluation), which
    # `import otel_ml` should not pay for in services that do not monitor drift.
    from otel_ml._internal.drift import DriftPolicy, DriftTracker, ReferenceProfile

    if not isinstance(reference, ReferenceProfile):
        raise TypeError(f"reference must be a ReferenceProfile, got {type(reference).__name__}")
    if policy is not None and not isinstance(policy, DriftPolicy):
        raise TypeError(f"drift_policy must be a DriftPolicy, got {type(policy).__name__}")

    def build(clock: Callable[[], float], registry: selftelemetry.SelfTelemetry) -> DriftTracker:
        return DriftTracker(reference, policy=policy, clock=clock, selftelemetry=registry)

    return build


def _outcome_tracker(ctx: ModelContext, positive: ClassLabel, ttl_s: float, max_pending: int, window_s: float,
                     window_by: str) -> OutcomeTracker:
    # Imported on first use for the same reason as drift: numpy stays off `import otel_ml`.
    from otel_ml._internal.quality import OutcomeTracker

    task = "regression" if ctx.task == "regression" else "classification"
    # Class labels travel as strings (see labels.py), so the positive one must too.
    return OutcomeTracker(task=task, max_pending=max_pending, ttl_s=ttl_s, window_s=window_s,
                          window_by=window_by, positive_label=label_of(positive) or positive,
                          clock=ctx.clock, selftelemetry=ctx.selftelemetry)


def _id_key(prediction_id: Any) -> str:
    # Inference ids are stored as (truncated) strings; look them up the same way.
    return str(prediction_id)[:128]
