"""The QuickLane under more than one metric reader: calls an unsampled parent sends down the lane
are folded when *any* reader collects, and every reader - cumulative, delta, one added while the
service runs - must still see each call exactly once, for two models of two frameworks at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from otel_ml import auto
from otel_ml.instrumentation.onnxruntime import OnnxRuntimeInstrumentor
from otel_ml.instrumentation.sklearn import SklearnInstrumentor
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented
from tests.instrumentation.lanes import lane, unsampled_parent

DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, SklearnInstrumentor(), OnnxRuntimeInstrumentor()) as capture:
        yield capture


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


def test_every_reader_sees_every_lane_call_once(cap: TelemetryCapture) -> None:
    cumulative, delta = cap.metric_reader, InMemoryMetricReader(preferred_temporality=DELTA)
    cap.meter_provider.add_metric_reader(delta)  # before any call: two readers from the start
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
    cap.meter_provider.add_metric_reader(late)            # a reader added while the service runs
    second = serve(100, 60)
    expected = _plus(expected, second)
    assert _read(late) == expected                        # cumulative from the start, as the others
    assert _read(delta) == second                         # only what came since its last collection
    third = serve(160, 25)
    expected = _plus(expected, third)
    assert _read(delta) == third
    assert _read(cumulative) == expected and _read(late) == expected
    assert cap.spans() == []                              # the lane made no span
