"""onnxruntime calls under an unsampled parent take the QuickLane (one append per one-row call,
folded later). The same calls are made twice, once sampled (the full path, which
tests/instrumentation/test_onnxruntime.py checks against numpy) and once unsampled: what each pass
adds to every series of the model - counts, sums, every bucket, class counts, dropped counts - must
be the same, for every output layout, output selections, batches, NaN rows and errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

import otel_ml.auto
from otel_ml._internal import selftelemetry
from otel_ml.instrumentation.onnxruntime import OnnxRuntimeInstrumentor
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented

CPU = ["CPUExecutionProvider"]


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, OnnxRuntimeInstrumentor()) as capture:
        yield capture


@contextmanager
def unsampled_parent() -> Iterator[None]:
    parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        trace_id=0x52, span_id=0x78, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))))
    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)


def _series(cap: TelemetryCapture) -> dict[tuple[str, frozenset[tuple[str, Any]]], tuple[Any, ...]]:
    """Every point of every otel_ml metric, as the additive figures two passes can be compared by
    (duration: only the count - time differs; min/max are not additive)."""
    out: dict[tuple[str, frozenset[tuple[str, Any]]], tuple[Any, ...]] = {}
    for p in cap.metrics():
        if not p.name.startswith("ml."):
            continue
        key = (p.name, frozenset(p.attributes.items()))
        point = p.point
        if hasattr(point, "bucket_counts"):
            figures: tuple[Any, ...] = (point.count,) if p.name == "ml.inference.duration" else (
                point.count, round(point.sum, 9), tuple(point.bucket_counts))
        else:
            figures = (point.value,)
        out[key] = figures
    return out


def _sub(a: Any, b: Any) -> Any:
    return tuple(x - y for x, y in zip(a, b, strict=True)) if isinstance(a, tuple) else a - b


def _delta(after: dict[Any, tuple[Any, ...]], before: dict[Any, tuple[Any, ...]]) -> dict[Any, tuple[Any, ...]]:
    """What happened to each series between two snapshots (series that did not change left out)."""
    delta = {}
    for key, figures in after.items():
        old = before.get(key)
        diff = figures if old is None else tuple(_sub(a, b) for a, b in zip(figures, old, strict=True))
        if any(any(d) if isinstance(d, tuple) else d for d in diff):
            delta[key] = diff
    return delta


def _approx(delta: dict[Any, tuple[Any, ...]]) -> dict[Any, Any]:
    """Sums compared to 1e-9: the lane adds a batch of values where the full path adds them one by one."""
    return {k: tuple(pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v for v in figures)
            for k, figures in delta.items()}


def _dropped(cap: TelemetryCapture) -> dict[tuple[str, str], int]:
    """Drop counts by (reason, signal): the capture's registry (its monitors') and the default one."""
    counts = dict(cap.selftelemetry.snapshot())
    for key, n in selftelemetry.DEFAULT.snapshot().items():
        counts[key] = counts.get(key, 0) + n
    return counts


def _same_either_way(cap: TelemetryCapture, calls: Callable[[], None]) -> dict[Any, tuple[Any, ...]]:
    """Run ``calls`` sampled, then unsampled: the two passes add the same figures (and the same
    dropped counts); the unsampled pass makes no span. Returns what one pass adds."""
    s0, d0 = _series(cap), _dropped(cap)
    spans_before = len(cap.spans())
    calls()
    s1, d1 = _series(cap), _dropped(cap)
    assert len(cap.spans()) > spans_before
    spans_sampled = len(cap.spans())
    with unsampled_parent():
        calls()
    s2, d2 = _series(cap), _dropped(cap)
    assert len(cap.spans()) == spans_sampled  # the lane makes no span
    sampled, unsampled = _delta(s1, s0), _delta(s2, s1)
    assert sampled, "the sampled pass recorded nothing"
    assert unsampled == _approx(sampled)
    dropped_sampled = {k: d1.get(k, 0) - d0.get(k, 0) for k in d1 if d1.get(k, 0) != d0.get(k, 0)}
    dropped_unsampled = {k: d2.get(k, 0) - d1.get(k, 0) for k in d2 if d2.get(k, 0) != d1.get(k, 0)}
    assert dropped_unsampled == dropped_sampled
    return sampled


def _lane_pending(session: Any) -> int:
    monitor = otel_ml.auto.monitor_of(session)
    assert monitor is not None
    lane = monitor.quick_lane()
    assert lane is not None
    return len(lane.pending)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x.astype(np.float32), y


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "tensor"])
@pytest.mark.parametrize("data", ["iris", "breast_cancer"])  # three classes; binary (a score per row)
def test_classifier_rows_batches_and_selected_outputs_count_the_same(cap: TelemetryCapture, zipmap: bool,
                                                                     data: str) -> None:
    x, y = (load_iris if data == "iris" else load_breast_cancer)(return_X_y=True)
    x = x.astype(np.float32)
    clf = LogisticRegression(max_iter=5000).fit(x, y)
    session = ort.InferenceSession(to_onnx(clf, x[:1], options={id(clf): {"zipmap": zipmap}}).SerializeToString(),
                                   providers=CPU)
    label, proba = (o.name for o in session.get_outputs())
    nan_row = np.full((1, x.shape[1]), np.nan, dtype=np.float32)  # NaN probabilities and score: counted

    def calls() -> None:
        for i in range(0, 150, 3):
            session.run(None, {"X": x[i:i + 1]})               # one row: the lane
        session.run(None, {"X": x[10:17]})                     # a batch: the full path
        session.run([proba], {"X": x[20:21]})                  # probabilities only
        session.run([label], {"X": x[40:41]})                  # the label only
        session.run([proba, label], {"X": x[140:141]})         # reordered
        session.run(None, {"X": nan_row})                      # NaN probabilities: counted, not recorded

    added = _same_either_way(cap, calls)
    classes = {dict(k[1])["ml.prediction.class"]: v[0] for k, v in added.items() if k[0] == "ml.predictions"}
    assert sum(classes.values()) == 50 + 7 + 4 and set(classes) <= {"0", "1", "2"} and len(classes) >= 2
    (batch,) = [v for k, v in added.items() if k[0] == "ml.inference.batch.size"]
    assert batch[:2] == (55, 61)  # 55 calls, 61 rows
    with unsampled_parent():
        session.run(None, {"X": x[:1]})
    assert _lane_pending(session) == 1  # the lane really took it (folded by the next collection)


def test_regressor_and_other_outputs_count_the_same(cap: TelemetryCapture) -> None:
    from onnx import TensorProto, helper

    xd, yd = load_diabetes(return_X_y=True)
    xd = xd.astype(np.float32)
    regressor = ort.InferenceSession(to_onnx(LinearRegression().fit(xd, yd), xd[:1]).SerializeToString(),
                                     providers=CPU)
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["logits"])], "main_graph",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 3])])
    proto = helper.make_model(graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    other = ort.InferenceSession(proto.SerializeToString(), providers=CPU)
    nan_row = np.full((1, xd.shape[1]), np.nan, dtype=np.float32)

    def calls() -> None:
        for i in range(40):
            regressor.run(None, {"X": xd[i:i + 1]})
            other.run(None, {"X": np.full((1, 3), i, dtype=np.float32)})
        regressor.run(None, {"X": xd[50:60]})
        regressor.run(None, {"X": nan_row})  # a NaN prediction: counted as invalid either way
        other.run(None, {"X": np.ones((4, 3), dtype=np.float32)})

    added = _same_either_way(cap, calls)
    (value,) = [v for k, v in added.items() if k[0] == "ml.prediction.value"]
    assert value[0] == 50
    assert value[1] == pytest.approx(float(regressor.run(None, {"X": xd[:40]})[0].sum(dtype=np.float64)
                                           + regressor.run(None, {"X": xd[50:60]})[0].sum(dtype=np.float64)),
                                     rel=1e-5)


def test_errors_reach_the_caller_and_count_the_same(cap: TelemetryCapture, iris: Any) -> None:
    x, y = iris
    session = ort.InferenceSession(to_onnx(LogisticRegression(max_iter=1000).fit(x, y), x[:1]).SerializeToString(),
                                   providers=CPU)
    raised: list[type[BaseException]] = []

    def calls() -> None:
        for feed in ({"X": x[:1].astype(np.float64)}, {"nope": x[:1]}, {"X": x[:1, :2]}):
            try:
                session.run(None, feed)
            except Exception as exc:  # onnxruntime's own errors, unchanged
                raised.append(type(exc))
        session.run(None, {"X": x[5:6]})

    added = _same_either_way(cap, calls)
    assert len(raised) == 6 and raised[:3] == raised[3:]
    errors = [v[0] for k, v in added.items() if k[0] == "ml.inference.duration" and "error.type" in dict(k[1])]
    assert sum(errors) == 3
