"""onnxruntime calls under an unsampled parent take the QuickLane (one append per one-row call,
folded later). The same calls are made twice, once sampled (the full path, which
tests/instrumentation/test_onnxruntime.py checks against numpy) and once unsampled: what each pass
adds to every series of the model - counts, sums, every bucket, class counts, dropped counts - must
be the same, for every output layout, output selections, batches, NaN rows and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from otel_ml.instrumentation.onnxruntime import OnnxRuntimeInstrumentor
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented
from tests.instrumentation.lanes import lane, predicted_classes, same_either_way, unsampled_parent

CPU = ["CPUExecutionProvider"]


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, OnnxRuntimeInstrumentor()) as capture:
        yield capture


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

    added = same_either_way(cap, calls)
    counted = predicted_classes(added)
    assert sum(counted.values()) == 50 + 7 + 4 and set(counted) <= {"0", "1", "2"} and len(counted) >= 2
    (batch,) = [v for k, v in added.items() if k[0] == "ml.inference.batch.size"]
    assert batch[:2] == (55, 61)  # 55 calls, 61 rows
    with unsampled_parent():
        session.run(None, {"X": x[:1]})
    assert len(lane(session).pending) == 1  # the lane really took it (folded by the next collection)


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

    added = same_either_way(cap, calls)
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

    added = same_either_way(cap, calls)
    assert len(raised) == 6 and raised[:3] == raised[3:]
    errors = [v[0] for k, v in added.items() if k[0] == "ml.inference.duration" and "error.type" in dict(k[1])]
    assert sum(errors) == 3
