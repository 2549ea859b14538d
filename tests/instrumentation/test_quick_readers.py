"""The QuickLane under more than one metric reader: calls an unsampled parent sends down the lane
are folded when *any* reader collects, and every reader - cumulative, delta, one added while the
service runs - must still see each call exactly once, for two models of two frameworks at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from otel_ml import auto
from otel_ml._internal import selftelemetry
from otel_ml.instrumentation.onnxruntime import OnnxRuntimeInstrumentor
from otel_ml.instrumentation.sklearn import SklearnInstrumentor
from tests.instrumentation.capture import IDENTITY_ENV
from tests.instrumentation.lanes import lane, unsampled_parent

DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MeterProvider, InMemorySpanExporter,
                                                                  InMemoryMetricReader, InMemoryMetricReader]]:
    for name in IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)
    cumulative, delta = InMemoryMetricReader(), InMemoryMetricReader(preferred_temporality=DELTA)
    meter_provider = MeterProvider(metric_readers=[cumulative, delta])
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    instrumentors = (SklearnInstrumentor(), OnnxRuntimeInstrumentor())
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    selftelemetry.DEFAULT.reset()
    try:
        yield meter_provider, spans, cumulative, delta
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()
    assert selftelemetry.DEFAULT.count(selftelemetry.INTERNAL_ERROR) == 0


def _read(reader: InMemoryMetricReader) -> dict[tuple[str, str, str], float]:
    """Calls per model (``ml.inference.duration`` count) and predictions per (model, class); a model is
    known by name and version."""
    out: dict[tuple[str, str, str], float] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    model = f"{p.attributes.get('ml.model.name')}@{p.attributes.get('ml.model.version')}"
                    if metric.name == "ml.inference.duration":
                        key = ("calls", model, "")
                        out[key] = out.get(key, 0) + p.count
                    elif metric.name == "ml.predictions":
                        key = ("class", model, str(p.attributes.get("ml.prediction.class")))
                        out[key] = out.get(key, 0) + p.value
    return {k: v for k, v in out.items() if v}


def _plus(a: dict[Any, float], b: dict[Any, float]) -> dict[Any, float]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


def test_every_reader_sees_every_lane_call_once(providers: Any) -> None:
    meter_provider, spans, cumulative, delta = providers
    xi, yi = load_iris(return_X_y=True)
    iris = LogisticRegression(max_iter=1000).fit(xi, yi)               # sklearn, three classes
    xb, yb = load_breast_cancer(return_X_y=True)
    xb = xb.astype(np.float32)
    cancer = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(xb, yb)
    session = ort.InferenceSession(to_onnx(cancer, xb[:1]).SerializeToString(),  # onnxruntime, binary
                                   providers=["CPUExecutionProvider"])

    def name(model: Any) -> str:
        monitor = auto.monitor_of(model)
        assert monitor is not None
        return f"{monitor.name}@{monitor.version}"

    def serve(start: int, n: int) -> dict[tuple[str, str, str], float]:
        """``n`` one-row calls of each model under an unsampled parent; what they should add."""
        added: dict[tuple[str, str, str], float] = {}
        with unsampled_parent():
            for i in range(start, start + n):
                label = str(iris.predict(xi[i % 150:i % 150 + 1])[0])
                onnx_label = str(session.run(None, {"X": xb[i % 569:i % 569 + 1]})[0][0])
                for key in (("calls", name(iris), ""), ("class", name(iris), label),
                            ("calls", name(session), ""), ("class", name(session), onnx_label)):
                    added[key] = added.get(key, 0) + 1
        return added

    expected = serve(0, 100)
    assert name(iris) != name(session) and len(lane(iris).pending) == 100
    assert _read(cumulative) == expected                  # the first reader folds the lane ...
    assert len(lane(iris).pending) == 0 and len(lane(session).pending) == 0
    assert _read(delta) == expected                       # ... and the second still sees every call

    late = InMemoryMetricReader()
    meter_provider.add_metric_reader(late)                # a reader added while the service runs
    second = serve(100, 60)
    expected = _plus(expected, second)
    assert _read(late) == expected                        # cumulative from the start, as the others
    assert _read(delta) == second                         # only what came since its last collection
    third = serve(160, 25)
    expected = _plus(expected, third)
    assert _read(delta) == third
    assert _read(cumulative) == expected and _read(late) == expected
    assert spans.get_finished_spans() == ()               # the lane made no span
