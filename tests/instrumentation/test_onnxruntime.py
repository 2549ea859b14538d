"""The onnxruntime instrumentor on real ONNX models (converted from scikit-learn with skl2onnx): what it
records, who it says the model is, and that the session's calls behave exactly as without it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from opentelemetry import trace
from skl2onnx import to_onnx
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

import otel_ml.auto
from otel_ml._internal import env, selftelemetry
from otel_ml.instrumentation import onnxruntime as onnx_instrumentation
from otel_ml.instrumentation.onnxruntime import OnnxRuntimeInstrumentor
from otel_ml.instrumentation.sklearn import SklearnInstrumentor
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented

# Before any instrumentor ran (collection imports this module first).
ORIGINAL_RUN = ort.InferenceSession.run
ORIGINAL_INIT = ort.InferenceSession.__init__
CPU = ["CPUExecutionProvider"]
GRAPH_NAME = "ONNX(LogisticRegression)"  # skl2onnx's graph name: the default name of a model built from bytes


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, OnnxRuntimeInstrumentor()) as capture:
        yield capture


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def iris_models(iris: Any) -> dict[str, bytes]:
    """The same LogisticRegression as ONNX with skl2onnx's ZipMap (a list of dicts) and without (a tensor)."""
    x, y = iris
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    return {"zipmap": to_onnx(clf, x[:1]).SerializeToString(),
            "tensor": to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}).SerializeToString()}


def _session(source: Any) -> Any:
    return ort.InferenceSession(source, providers=CPU)


def _proba_matrix(proba: Any) -> np.ndarray:
    """The probabilities a session returned, as a [N, C] matrix (a ZipMap's dicts in key order)."""
    if isinstance(proba, list):
        return np.array([[row[k] for k in sorted(row)] for row in proba], dtype=np.float64)
    return np.asarray(proba, dtype=np.float64)


def _inferences(cap: TelemetryCapture, **attrs: str) -> int:
    return sum(p.point.count for p in cap.points("ml.inference.duration", **attrs))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]  # as otel_ml._internal.auto.identity hashes files


@pytest.mark.parametrize("layout", ["zipmap", "tensor"])
def test_classifier_run_is_one_inference_with_classes_and_confidence(cap: TelemetryCapture, iris: Any,
                                                                     iris_models: dict[str, bytes],
                                                                     layout: str) -> None:
    """Each run is one inference (method "run", unit s); batch rows; predicted classes and confidence per row
    match numpy on the returned probabilities; a model from bytes is named by its graph, versioned by their hash."""
    x, _ = iris
    session = _session(iris_models[layout])
    rows = x[::3][:40]  # all three classes
    labels, proba = session.run(None, {"X": rows})
    one_label, one_proba = session.run(None, {"X": x[120:121]})
    model = {"ml.model.name": GRAPH_NAME, "ml.model.version": _digest(iris_models[layout])}
    assert model["ml.model.version"] != ort.__version__
    (duration,) = cap.points("ml.inference.duration", **model)
    assert duration.unit == "s" and duration.point.count == 2
    assert duration.attributes["ml.model.method"] == "run"
    assert _inferences(cap) == 2  # nothing else recorded
    (batch,) = cap.points("ml.inference.batch.size", **model)
    assert batch.unit == "{row}" and batch.point.sum == 41 and batch.point.count == 2
    matrix = np.vstack([_proba_matrix(proba), _proba_matrix(one_proba)])
    conf = cap.histogram("ml.prediction.confidence", **model)
    assert conf.count == 41 and conf.sum == pytest.approx(matrix.max(axis=1).sum(), rel=1e-6)
    expected = np.bincount(matrix.argmax(axis=1), minlength=3)
    assert expected.min() > 0
    assert np.array_equal(np.concatenate([labels, one_label]), matrix.argmax(axis=1))  # the label output agrees
    for cls in range(3):
        assert cap.counter("ml.predictions", **model, **{"ml.prediction.class": str(cls)}) == expected[cls]
    points = cap.points("ml.predictions", **model)
    assert {p.unit for p in points} == {"{prediction}"}


def test_regressor_values_and_identity_from_bytes(cap: TelemetryCapture) -> None:
    """A single float [N, 1] output is a regression: its values fill ml.prediction.value."""
    xd, yd = load_diabetes(return_X_y=True)
    xd = xd.astype(np.float32)
    data = to_onnx(LinearRegression().fit(xd, yd), xd[:1]).SerializeToString()
    session = _session(data)
    (values,) = session.run(None, {"X": xd[:25]})
    (one,) = session.run(None, {"X": xd[30:31]})
    model = {"ml.model.version": _digest(data), "ml.model.method": "run"}
    assert cap.histogram("ml.inference.duration", **model).count == 2
    value = cap.histogram("ml.prediction.value", **{"ml.model.version": _digest(data)})
    assert value.count == 26
    assert value.sum == pytest.approx(float(values.sum(dtype=np.float64) + one.sum(dtype=np.float64)), rel=1e-5)
    assert not cap.points("ml.prediction.confidence") and not cap.points("ml.predictions")


def test_identity_from_the_file_loaded(cap: TelemetryCapture, iris: Any, iris_models: dict[str, bytes],
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """InferenceSession(path) names the model after the file's stem, versioned by the file's content hash: two
    sessions of one file (str and PathLike) share one series; OTEL_ML_CLASS_NAMES labels the classes."""
    monkeypatch.setenv(env.CLASS_NAMES, "0=setosa,1=versicolor,2=virginica")
    x, _ = iris
    path = tmp_path / "iris-classifier.onnx"
    path.write_bytes(iris_models["zipmap"])
    first, second = _session(str(path)), _session(path)
    labels_a, _ = first.run(None, {"X": x[:10]})
    labels_b, _ = second.run(None, {"X": x[140:145]})
    model = {"ml.model.name": "iris-classifier", "ml.model.version": _digest(path.read_bytes())}
    assert model["ml.model.version"] != ort.__version__
    assert cap.histogram("ml.inference.duration", **model).count == 2
    assert _inferences(cap) == 2
    names = np.array(["setosa", "versicolor", "virginica"])[np.concatenate([labels_a, labels_b])]
    for label in set(names.tolist()):
        assert cap.counter("ml.predictions", **model, **{"ml.prediction.class": label}) == (names == label).sum()
    assert otel_ml.auto.monitor_of(first) is otel_ml.auto.monitor_of(second)


def test_only_the_outputs_asked_for_are_read(cap: TelemetryCapture, iris: Any, iris_models: dict[str, bytes],
                                              tmp_path: Path) -> None:
    """output_names: probabilities alone give the class from the model's metadata class list; labels alone
    give classes without confidence."""
    import onnx

    x, _ = iris
    proto = onnx.load_from_string(iris_models["tensor"])
    proto.metadata_props.add(key="classes", value='["setosa", "versicolor", "virginica"]')
    path = tmp_path / "iris-named.onnx"
    onnx.save(proto, str(path))
    session = _session(str(path))
    (proba,) = session.run(["probabilities"], {"X": x[::5]})
    model = {"ml.model.name": "iris-named"}
    expected = np.bincount(proba.argmax(axis=1), minlength=3)
    for i, label in enumerate(["setosa", "versicolor", "virginica"]):
        assert cap.counter("ml.predictions", **model, **{"ml.prediction.class": label}) == expected[i]
    assert cap.histogram("ml.prediction.confidence", **model).count == len(proba)
    (labels,) = session.run(output_names=["label"], input_feed={"X": x[:4]})
    assert labels.tolist() == [0, 0, 0, 0]
    assert cap.counter("ml.predictions", **model, **{"ml.prediction.class": "setosa"}) == expected[0] + 4
    assert cap.histogram("ml.prediction.confidence", **model).count == len(proba)  # labels only: none added
    assert cap.histogram("ml.inference.batch.size", **model).sum == len(proba) + 4


def test_sklearn_model_wrapping_a_session_is_one_inference(cap: TelemetryCapture, iris: Any,
                                                            iris_models: dict[str, bytes]) -> None:
    """An instrumented scikit-learn call running an ONNX session inside is one inference, of the sklearn model;
    the same session called on its own is one of its own."""
    x, y = iris
    session = _session(iris_models["tensor"])
    sklearn_instrumentor = SklearnInstrumentor()
    sklearn_instrumentor.instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
    try:
        class OnnxBacked(ClassifierMixin, BaseEstimator):
            def fit(self, x: Any, y: Any) -> OnnxBacked:
                self.classes_ = np.array([0, 1, 2])
                return self

            def predict(self, x: Any) -> Any:
                return session.run(["label"], {"X": x})[0]

        OnnxBacked().fit(x, y).predict(x[:6])
        assert _inferences(cap) == 1
        assert cap.histogram("ml.inference.duration", **{"ml.model.name": "OnnxBacked",
                                                         "ml.model.method": "predict"}).count == 1
        assert not cap.points("ml.inference.duration", **{"ml.model.name": GRAPH_NAME})
        session.run(None, {"X": x[:2]})
        assert cap.histogram("ml.inference.duration", **{"ml.model.name": GRAPH_NAME}).count == 1
        assert len(cap.spans()) == 2
    finally:
        sklearn_instrumentor.uninstrument()


def test_span_is_a_child_of_the_current_span(cap: TelemetryCapture, iris: Any, iris_models: dict[str, bytes]) -> None:
    """The inference span sits under the caller's span, with the method and batch size."""
    x, _ = iris
    session = _session(iris_models["zipmap"])
    tracer = cap.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("POST /predict") as parent:
        session.run(None, {"X": x[:3]})
    (span,) = cap.spans(f"inference {GRAPH_NAME}")
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.context is not None and span.context.trace_id == parent.get_span_context().trace_id
    assert span.attributes is not None
    assert span.attributes["ml.model.method"] == "run" and span.attributes["ml.inference.batch.size"] == 3
    assert trace.get_current_span() is trace.INVALID_SPAN  # the context was restored


def test_errors_propagate_unchanged_and_are_counted(cap: TelemetryCapture, iris: Any, iris_models: dict[str, bytes],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong input name raises what onnxruntime raises, re-raised as the same object; each is an inference with
    error.type on the latency histogram and the span."""
    x, _ = iris
    session = _session(iris_models["zipmap"])
    original = ort.capi.onnxruntime_inference_collection.Session.__dict__["run"]._otel_ml_original
    for feed in ({"Y": x[:1]}, {"X": x[:1], "Z": x[:1]}):
        with pytest.raises(Exception) as plain:
            original(session, None, feed)
        with pytest.raises(Exception) as instrumented:
            session.run(None, feed)
        assert type(instrumented.value) is type(plain.value) and str(instrumented.value) == str(plain.value)
        assert instrumented.value.__cause__ is None and instrumented.value.__context__ is None
    assert cap.histogram("ml.inference.duration", **{"error.type": "ValueError", "ml.model.method": "run"}).count == 1
    invalid = "onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument"
    assert cap.histogram("ml.inference.duration", **{"error.type": invalid}).count == 1

    boom = RuntimeError("device lost")

    def lost(*args: Any) -> None:
        raise boom

    monkeypatch.setattr(session, "_validate_input", lost)  # raised inside onnxruntime's own run
    with pytest.raises(RuntimeError) as caught:
        session.run(None, {"X": x[:1]})
    assert caught.value is boom
    assert cap.histogram("ml.inference.duration", **{"error.type": "RuntimeError"}).count == 1
    assert {s.status.status_code.name for s in cap.spans()} == {"ERROR"}
    assert not cap.points("ml.predictions")


def test_a_recording_failure_is_counted_never_raised(cap: TelemetryCapture, iris: Any, iris_models: dict[str, bytes],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong reading the outputs: the caller gets the model's result, the inference is counted,
    the failure is counted in otel_ml.dropped (auto_output_error)."""
    x, _ = iris
    session = _session(iris_models["tensor"])
    expected = session.run(None, {"X": x[:1]})

    def broken(*args: Any) -> None:
        raise KeyError("mapping broke")

    monkeypatch.setattr(onnx_instrumentation, "_label", broken)
    got = session.run(None, {"X": x[:1]})
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert _inferences(cap) == 2
    assert selftelemetry.DEFAULT.count("auto_output_error") == 1


def test_prediction_ids_join_delayed_labels(cap: TelemetryCapture, iris: Any, iris_models: dict[str, bytes]) -> None:
    """prediction_ids() joins the rows of a run to labels recorded later."""
    x, y = iris
    session = _session(iris_models["zipmap"])
    ids = [f"r{i}" for i in range(0, 150, 3)]
    with otel_ml.auto.prediction_ids(ids):
        labels, _ = session.run(None, {"X": x[::3]})
    monitor = otel_ml.auto.monitor_of(session)
    assert monitor is not None
    monitor.record_outcomes(ids, [int(v) for v in y[::3]])
    assert monitor.quality().accuracy == pytest.approx(float((labels == y[::3]).mean()))


def test_uninstrument_restores_the_originals(cap: TelemetryCapture, iris: Any, iris_models: dict[str, bytes],
                                             tmp_path: Path) -> None:
    """After uninstrument() InferenceSession holds its original run and __init__ and nothing is recorded; a
    session built then is still named after its file once instrumented again."""
    x, _ = iris
    assert ort.InferenceSession.run is not ORIGINAL_RUN
    OnnxRuntimeInstrumentor().uninstrument()
    try:
        assert ort.InferenceSession.run is ORIGINAL_RUN and ort.InferenceSession.__init__ is ORIGINAL_INIT
        assert "run" not in ort.InferenceSession.__dict__  # restored where it is defined, nothing left over
        path = tmp_path / "built-before.onnx"
        path.write_bytes(iris_models["tensor"])
        early = _session(str(path))
        early.run(None, {"X": x[:3]})
        assert _inferences(cap) == 0
    finally:
        OnnxRuntimeInstrumentor().instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
    early.run(None, {"X": x[:3]})
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "built-before",
                                                     "ml.model.version": _digest(path.read_bytes())}).count == 1


def test_other_models_record_latency_and_rows_only(cap: TelemetryCapture) -> None:
    """Outputs that are neither probabilities, labels nor one regression value (logits here): latency and rows
    only; an exporter's generic graph name gives way to the producer's name."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["logits"])], "main_graph",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 3])])
    proto = helper.make_model(graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    data = proto.SerializeToString()
    session = _session(data)
    (out,) = session.run(None, {"X": np.ones((7, 3), dtype=np.float32)})
    assert out.shape == (7, 3)
    model = {"ml.model.name": "pytorch", "ml.model.version": _digest(data)}
    assert cap.histogram("ml.inference.duration", **model).count == 1
    assert cap.histogram("ml.inference.batch.size", **model).sum == 7
    assert not cap.points("ml.predictions") and not cap.points("ml.prediction.confidence")
    assert not cap.points("ml.prediction.value")


def test_bytes_are_hashed_at_load_when_onnxruntime_does_not_keep_them() -> None:
    """The version of a model built from bytes does not depend on onnxruntime keeping them."""

    class Session:  # what a session that dropped its bytes looks like
        _model_bytes = None

    session, data = Session(), b"\x08\x07model bytes"
    onnx_instrumentation._remember_origin(session, data)
    assert onnx_instrumentation._bytes_hash(session) == _digest(data)


def test_label_values_that_are_classes_are_not_read_as_column_indices(cap: TelemetryCapture, iris: Any) -> None:
    """Classes 1, 2, 5 listed in the metadata: the label output's 1 is class "1", not column 1 ("2")."""
    x, y = iris
    clf = LogisticRegression(max_iter=1000).fit(x, np.array([1, 2, 5])[y])
    proto = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
    proto.metadata_props.add(key="classes", value="1,2,5")
    session = _session(proto.SerializeToString())
    labels, _ = session.run(None, {"X": x[::4]})
    assert set(labels.tolist()) == {1, 2, 5}
    for cls in (1, 2, 5):
        assert cap.counter("ml.predictions", **{"ml.prediction.class": str(cls)}) == (labels == cls).sum()
    (one,) = session.run(["probabilities"], {"X": x[100:101]})  # column 2 is class 5
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "5"}) == (labels == 5).sum() + 1
    assert one.argmax() == 2
