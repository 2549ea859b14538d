"""ModelMonitor records every classic-inference signal with the right names, units and values."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags, set_span_in_context

from otel_ml import ModelMonitor
from otel_ml._internal import selftelemetry
from otel_ml.testing import TelemetryCapture

MODEL = {"ml.model.name": "fraud", "ml.model.version": "3"}


def test_units_and_names(cap: TelemetryCapture) -> None:
    """Each classic instrument has its documented name and UCUM unit."""
    monitor = cap.monitor("fraud", version="3")
    with monitor.inference(batch_size=1) as inf:
        inf.record(predictions="ok", confidence=0.9)
    units = {p.name: p.unit for p in cap.metrics()}
    assert units["ml.inference.duration"] == "s"
    assert units["ml.inference.batch.size"] == "{row}"
    assert units["ml.prediction.confidence"] == "1"
    assert units["ml.predictions"] == "{prediction}"


def test_model_name_version_and_variant_on_every_point(cap: TelemetryCapture) -> None:
    """ml.model.name / version / variant label every data point of the model."""
    monitor = cap.monitor("fraud", version=3, variant="canary")
    with monitor.inference() as inf:
        inf.record(predictions="ok", confidence=0.5)
    model_points = [p for p in cap.metrics() if p.name.startswith("ml.")]
    assert model_points
    for p in model_points:
        assert p.attributes["ml.model.name"] == "fraud"
        assert p.attributes["ml.model.version"] == "3"
        assert p.attributes["ml.model.variant"] == "canary"


def test_confidence_histogram_values(cap: TelemetryCapture) -> None:
    """Confidence counts, sum, min, max and buckets follow the (lo, hi] bucket rule."""
    monitor = cap.monitor("fraud", version="3")
    values = [0.97, 0.5, 0.05, 1.0, 0.51]
    for v in values:
        with monitor.inference() as inf:
            inf.record(confidence=v)
    point = cap.histogram("ml.prediction.confidence", **MODEL)
    assert point.count == 5
    assert point.sum == pytest.approx(sum(values))
    assert point.min == 0.05 and point.max == 1.0
    bounds = list(point.explicit_bounds)
    counts = dict(enumerate(point.bucket_counts))
    # 0.05 sits on a boundary: it belongs to (.., 0.05]; 0.5 to (0.45, 0.5]; 0.51 to (0.5, 0.55]
    assert counts[bounds.index(0.05)] == 1
    assert counts[bounds.index(0.5)] == 1
    assert counts[bounds.index(0.55)] == 1
    assert counts[bounds.index(0.975)] == 1  # 0.97 in (0.95, 0.975]
    assert counts[bounds.index(1.0)] == 1


def test_batch_arrays(cap: TelemetryCapture) -> None:
    """A batch records one duration, its size, every row's confidence and the class mix."""
    monitor = cap.monitor("fraud", version="3")
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    with monitor.inference(batch_size=len(proba)) as inf:
        inf.record(predictions=proba.argmax(1), confidence=proba.max(1))
    assert cap.histogram("ml.inference.duration", **MODEL).count == 1
    batch = cap.histogram("ml.inference.batch.size", **MODEL)
    assert (batch.count, batch.sum) == (1, 4)
    conf = cap.histogram("ml.prediction.confidence", **MODEL)
    assert conf.count == 4
    assert conf.sum == pytest.approx(0.9 + 0.8 + 0.7 + 0.6)
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "0"}) == 2
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "1"}) == 2


def test_duration_is_measured(cap: TelemetryCapture) -> None:
    """The duration histogram holds the wall time of the block."""
    monitor = cap.monitor("fraud", version="3")
    with monitor.inference():
        time.sleep(0.03)
    point = cap.histogram("ml.inference.duration", **MODEL)
    assert point.count == 1
    assert 0.03 <= point.sum < 1.0


def test_span_is_child_of_http_span_and_exemplar_points_to_it(cap: TelemetryCapture) -> None:
    """The inference span's parent is the current span; the latency exemplar carries its ids."""
    monitor = cap.monitor("fraud", version="3", task="classification")
    tracer = cap.tracer_provider.get_tracer("test-http")
    with tracer.start_as_current_span("POST /predict") as http, monitor.inference(prediction_id="p-1") as inf:
        inf.record(predictions="fraud", confidence=0.97)
    (span,) = cap.spans("inference fraud")
    assert span.parent is not None
    assert span.parent.span_id == http.get_span_context().span_id
    assert span.context.trace_id == http.get_span_context().trace_id
    assert span.attributes is not None
    assert span.attributes["ml.model.name"] == "fraud"
    assert span.attributes["ml.model.version"] == "3"
    assert span.attributes["ml.prediction.class"] == "fraud"
    assert span.attributes["ml.prediction.confidence"] == 0.97
    assert span.attributes["ml.prediction.id"] == "p-1"
    (exemplar,) = cap.histogram("ml.inference.duration", **MODEL).exemplars
    assert exemplar.trace_id == span.context.trace_id
    assert exemplar.span_id == span.context.span_id


def test_exception_is_recorded_and_reraised_unchanged(cap: TelemetryCapture) -> None:
    """An error keeps its identity for the caller and is recorded as error.type + span status."""
    monitor = cap.monitor("fraud", version="3")
    boom = ValueError("bad row")
    with pytest.raises(ValueError) as caught, monitor.inference():
        raise boom
    assert caught.value is boom
    point = cap.histogram("ml.inference.duration", **MODEL, **{"error.type": "ValueError"})
    assert point.count == 1
    (span,) = cap.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "ValueError"
    assert any(e.name == "exception" for e in span.events)


def test_unsampled_parent_creates_no_span_but_keeps_metrics(cap: TelemetryCapture) -> None:
    """Under a parent that was not sampled there is no span and no exemplar, only metrics."""
    from opentelemetry import context

    monitor = cap.monitor("fraud", version="3")
    parent = NonRecordingSpan(SpanContext(trace_id=7, span_id=9, is_remote=True,
                                          trace_flags=TraceFlags(TraceFlags.DEFAULT)))
    token = context.attach(set_span_in_context(parent))
    try:
        with monitor.inference() as inf:
            inf.record(predictions="ok", confidence=0.8)
    finally:
        context.detach(token)
    assert cap.spans() == []
    point = cap.histogram("ml.inference.duration", **MODEL)
    assert point.count == 1
    assert list(point.exemplars) == []


def test_class_cardinality_is_capped(cap: TelemetryCapture) -> None:
    """Past max_classes distinct labels, predictions count as 'other' and the overflow is counted."""
    monitor = cap.monitor("fraud", version="3", max_classes=2)
    for label in ["a", "b", "c", "d", "a"]:
        with monitor.inference() as inf:
            inf.record(predictions=label)
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "a"}) == 2
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "b"}) == 1
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "other"}) == 2
    assert cap.counter("otel_ml.dropped", **{"otel_ml.reason": "label_cardinality_cap"}) == 2


def test_unknown_class_with_declared_classes(cap: TelemetryCapture) -> None:
    """With classes declared, every unknown prediction is 'other' and counted as dropped."""
    monitor = cap.monitor("fraud", version="3", classes=["ok", "fraud"])
    for label in ["ok", "weird", "weird"]:
        with monitor.inference() as inf:
            inf.record(predictions=label)
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "other"}) == 2
    assert cap.counter("otel_ml.dropped", **{"otel_ml.reason": "unknown_class"}) == 2


def test_observe_sync_with_proba(cap: TelemetryCapture) -> None:
    """@observe(outputs='proba') reads the arg-max class and its probability."""
    monitor = cap.monitor("fraud", version="3")

    @monitor.observe(outputs="proba")
    def predict(rows: list[list[float]]) -> np.ndarray:
        return np.array([[0.1, 0.9] for _ in rows])

    out = predict([[1.0], [2.0]])
    assert out.shape == (2, 2)
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "1"}) == 2
    assert cap.histogram("ml.prediction.confidence", **MODEL).sum == pytest.approx(1.8)


def test_observe_async_and_generators(cap: TelemetryCapture) -> None:
    """@observe works on coroutines, generators and async generators (one inference each)."""
    monitor = cap.monitor("fraud", version="3")

    @monitor.observe(outputs="labels")
    async def apredict() -> str:
        await asyncio.sleep(0)
        return "ok"

    @monitor.observe
    def stream() -> object:
        yield 1
        yield 2

    @monitor.observe
    async def astream() -> object:
        yield 1

    async def consume() -> list[int]:
        return [x async for x in astream()]  # type: ignore[attr-defined]

    assert asyncio.run(apredict()) == "ok"
    assert list(stream()) == [1, 2]  # type: ignore[call-overload]
    assert asyncio.run(consume()) == [1]
    assert cap.histogram("ml.inference.duration", **MODEL).count == 3
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "ok"}) == 1


def test_delta_temporality_reader_gets_increments() -> None:
    """A reader preferring delta temporality sees only what happened since its last collection."""
    reader = InMemoryMetricReader(preferred_temporality={
        Histogram: AggregationTemporality.DELTA, Counter: AggregationTemporality.DELTA})
    provider = MeterProvider(metric_readers=[reader])
    monitor = ModelMonitor("fraud", version="3", meter_provider=provider)

    def collect() -> dict[str, float]:
        data = reader.get_metrics_data()
        out: dict[str, float] = {}
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    assert m.data.aggregation_temporality == AggregationTemporality.DELTA  # type: ignore[union-attr]
                    for p in m.data.data_points:
                        out[m.name] = out.get(m.name, 0) + getattr(p, "count", getattr(p, "value", 0))
        return out

    for _ in range(3):
        with monitor.inference() as inf:
            inf.record(predictions="a")
    first = collect()
    with monitor.inference() as inf:
        inf.record(predictions="a")
    second = collect()
    assert first["ml.inference.duration"] == 3 and first["ml.predictions"] == 3
    assert second["ml.inference.duration"] == 1 and second["ml.predictions"] == 1
    provider.shutdown()


def test_selftelemetry_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    """A repeated problem is counted every time but logged only the first time."""
    registry = selftelemetry.SelfTelemetry()
    for _ in range(5):
        registry.dropped("queue_full", "spans")
    assert registry.snapshot()[("queue_full", "spans")] == 5
    assert registry.count("queue_full") == 5 and registry.count(signal="metrics") == 0
    assert sum("queue_full" in r.getMessage() for r in caplog.records) == 1


def test_delayed_labels_join_by_prediction_id(cap: TelemetryCapture) -> None:
    """Labels posted later (ints or strings) join their predictions; quality matches sklearn."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    monitor = cap.monitor("fraud", version="3", positive_class=1)
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 400)
    score = np.clip(y_true * 0.35 + rng.uniform(0, 0.65, 400), 0, 1)
    y_pred = (score >= 0.5).astype(int)
    for i in range(400):
        with monitor.inference(prediction_id=f"id-{i}") as inf:
            inf.record(predictions=int(y_pred[i]), confidence=float(max(score[i], 1 - score[i])),
                       score=float(score[i]))
    monitor.record_outcomes([f"id-{i}" for i in range(200)], [int(v) for v in y_true[:200]])
    for i in range(200, 400):
        monitor.record_outcome(f"id-{i}", str(y_true[i]))
    monitor.record_outcome("never-seen", 1)
    report = monitor.quality()
    assert report.n == 400
    assert report.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert report.f1 == pytest.approx(f1_score(y_true, y_pred))
    assert report.roc_auc == pytest.approx(roc_auc_score(y_true, score), abs=report.roc_auc_error_bound + 1e-9)
    assert cap.counter("ml.outcomes.unmatched", **{"otel_ml.reason": "unknown"}) == 1
    assert cap.counter("ml.outcomes", **{"ml.prediction.class": "1", "ml.outcome.class": "1"}) == int(
        ((y_pred == 1) & (y_true == 1)).sum())


def test_regression_outcomes(cap: TelemetryCapture) -> None:
    """A regression monitor joins predicted values with actuals into MAE and RMSE."""
    monitor = cap.monitor("eta", version="1", task="regression")
    preds, actuals = [10.0, 12.0, 7.5], [11.0, 12.0, 5.5]
    for i, p in enumerate(preds):
        with monitor.inference(prediction_id=i) as inf:
            inf.record(predictions=p)
    for i, a in enumerate(actuals):
        monitor.record_outcome(i, a)
    report = monitor.quality()
    assert report.mae == pytest.approx(np.mean(np.abs(np.subtract(preds, actuals))))
    assert report.rmse == pytest.approx(np.sqrt(np.mean(np.subtract(preds, actuals) ** 2)))


def test_regression_outputs_histogram_and_method(cap: TelemetryCapture) -> None:
    """Regression outputs land in ml.prediction.value buckets; method= labels the latency and the span."""
    monitor = cap.monitor("eta", version="1", task="regression")
    with monitor.inference(method="predict") as inf:
        inf.record(predictions=np.array([0.3, 42.0, -7.0, np.nan]))
    with monitor.inference() as inf:
        inf.record(predictions=1500.0)
    point = cap.histogram("ml.prediction.value", **{"ml.model.name": "eta"})
    assert point.count == 4 and point.sum == pytest.approx(0.3 + 42.0 - 7.0 + 1500.0)
    bounds = list(point.explicit_bounds)
    counts = dict(enumerate(point.bucket_counts))
    assert counts[bounds.index(0.5)] == 1 and counts[bounds.index(50.0)] == 1  # (0.2, 0.5], (20, 50]
    assert counts[bounds.index(-5.0)] == 1 and counts[bounds.index(2000.0)] == 1  # (-10, -5], (1000, 2000]
    assert cap.dropped("invalid_predictions") == 1  # the NaN
    assert cap.histogram("ml.inference.duration", **{"ml.model.method": "predict"}).count == 1
    methods = [s.attributes["ml.model.method"] for s in cap.spans() if "ml.model.method" in (s.attributes or {})]
    assert methods == ["predict"]
