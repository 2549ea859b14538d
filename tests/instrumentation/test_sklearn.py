"""The scikit-learn instrumentor on real models: what it records, who it says the model is, and that
the model's calls behave exactly as without it."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml.auto
from otel_ml._internal import env, selftelemetry
from otel_ml.instrumentation.sklearn import SklearnInstrumentor
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, SklearnInstrumentor()) as capture:
        yield capture


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)


def _inferences(cap: TelemetryCapture, **attrs: str) -> int:
    return sum(p.point.count for p in cap.points("ml.inference.duration", **attrs))


def test_pipeline_predict_proba_records_one_inference_with_outputs(cap: TelemetryCapture, cancer: Any) -> None:
    """A Pipeline's predict_proba is one inference: rows, confidence per row, classes, method, no inner step."""
    x, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    proba = pipe.predict_proba(x[:40])
    assert _inferences(cap) == 1
    assert cap.histogram("ml.inference.duration", **{"ml.model.method": "predict_proba"}).count == 1
    assert cap.histogram("ml.inference.batch.size").sum == 40
    conf = cap.histogram("ml.prediction.confidence")
    assert conf.count == 40 and conf.sum == pytest.approx(proba.max(axis=1).sum())
    expected = np.bincount(proba.argmax(axis=1), minlength=2)
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "0"}) == expected[0]
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "1"}) == expected[1]
    (point,) = cap.points("ml.inference.duration")
    assert point.attributes["ml.model.name"] == "LogisticRegression"  # the estimator a Pipeline ends in
    (span,) = cap.spans()
    assert span.name == "inference LogisticRegression" and span.attributes is not None
    assert span.attributes["ml.model.method"] == "predict_proba" and span.attributes["ml.inference.batch.size"] == 40


def test_inherited_methods_searches_and_training_are_handled(cap: TelemetryCapture) -> None:
    """A mixin's predict is instrumented; a search counts once; fit, score and cross-validation count nothing."""
    x, y = load_iris(return_X_y=True)
    lr = LogisticRegression(max_iter=500).fit(x, y)  # predict comes from LinearClassifierMixin
    lr.score(x, y)
    cross_val_score(LogisticRegression(max_iter=500), x, y, cv=3)
    StandardScaler().fit(x).transform(x)  # a scaler on its own is not a model
    assert _inferences(cap) == 0
    lr.predict(x[:5])
    GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.5, 1.0]}, cv=2).fit(x, y).predict(x[:3])
    assert _inferences(cap) == 2
    assert cap.histogram("ml.inference.batch.size", **{"ml.model.version": _version_of(cap, 5)}).sum == 5


def _version_of(cap: TelemetryCapture, rows: int) -> str:
    return next(p.attributes["ml.model.version"] for p in cap.points("ml.inference.batch.size")
                if p.point.sum == rows)


def test_regressor_outputs_and_dictvectorizer_rows(cap: TelemetryCapture) -> None:
    """A regressor's outputs fill ml.prediction.value; dicts fed to a DictVectorizer pipeline are rows."""
    xd, yd = load_diabetes(return_X_y=True)
    reg = Ridge().fit(xd, yd)
    values = reg.predict(xd[:25])
    value = cap.histogram("ml.prediction.value", **{"ml.model.name": "Ridge"})
    assert value.count == 25 and value.sum == pytest.approx(values.sum())
    dv = make_pipeline(DictVectorizer(), LogisticRegression()).fit(
        [{"city": "a", "n": 1}, {"city": "b", "n": 2}, {"city": "a", "n": 3}], [0, 1, 0])
    dv.predict([{"city": "a", "n": 1}, {"city": "b", "n": 5}])
    dv.predict({"city": "b", "n": 7})
    lr = {"ml.model.name": "LogisticRegression"}
    sizes = sorted(p.point.sum for p in cap.points("ml.inference.batch.size", **lr))
    assert sizes == [3.0]  # one series: 2 rows, then 1 row (the dict)
    assert cap.histogram("ml.inference.batch.size", **{"ml.model.name": "LogisticRegression"}).count == 2


def test_identity_from_load_path_env_and_mapping_file(cap: TelemetryCapture, cancer: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """joblib.load names a model after its file with the file's hash as version; a mapping rule wins over it."""
    x, y = cancer
    model = LogisticRegression(max_iter=2000).fit(x, y)
    path = tmp_path / "fraud-model.joblib"
    joblib.dump(model, path)
    loaded = joblib.load(path)
    loaded.predict(x[:2])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "fraud-model", "ml.model.version": digest})
    rules = tmp_path / "models.json"
    rules.write_text(json.dumps({"models": [{"match": {"path": "*/churn-*.pkl"}, "name": "churn", "version": "7",
                                             "variant": "canary", "classes": {"0": "stay", "1": "leave"}}]}))
    monkeypatch.setenv(env.MODEL_MAP, str(rules))
    monkeypatch.setenv(env.MODEL_NAME, "ignored-when-a-rule-matches")
    otel_ml.auto.MODELS.reset()  # type: ignore[attr-defined]
    otel_ml.auto.MODELS.tracer_provider, otel_ml.auto.MODELS.meter_provider = (  # type: ignore[attr-defined]
        cap.tracer_provider, cap.meter_provider)
    churn = tmp_path / "churn-2026.pkl"
    churn.write_bytes(pickle.dumps(model))
    with churn.open("rb") as fh:
        from_pickle = pickle.load(fh)
    from_pickle.predict(x[:4])
    attrs = {"ml.model.name": "churn", "ml.model.version": "7", "ml.model.variant": "canary"}
    assert cap.histogram("ml.inference.duration", **attrs).count == 1
    labels = {p.attributes["ml.prediction.class"] for p in cap.points("ml.predictions", **attrs)}
    assert labels <= {"stay", "leave"} and labels
    # No rule matches an in-memory model: the environment names it, its pickle is its version.
    fresh = LogisticRegression(max_iter=2000).fit(x, y)
    fresh.predict(x[:1])
    expected = hashlib.sha256(pickle.dumps(fresh, protocol=5)).hexdigest()[:12]
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "ignored-when-a-rule-matches",
                                                     "ml.model.version": expected}).count == 1


def test_class_names_and_prediction_ids_join_delayed_labels(cap: TelemetryCapture, cancer: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_ML_CLASS_NAMES labels the classes; prediction_ids() joins labels to rows of the call."""
    from sklearn.metrics import accuracy_score

    monkeypatch.setenv(env.CLASS_NAMES, "0=malignant,1=benign")
    x, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[:300], y[:300])
    ids = [f"r{i}" for i in range(200)]
    with otel_ml.auto.prediction_ids(ids):
        predicted = model.predict_proba(x[300:500]).argmax(axis=1)
    monitor = otel_ml.auto.monitor_of(model)
    assert monitor is not None
    names = np.array(["malignant", "benign"])
    monitor.record_outcomes(ids, list(names[y[300:500]]))
    assert monitor.quality().accuracy == pytest.approx(accuracy_score(y[300:500], predicted))
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "benign"}) == (predicted == 1).sum()


def test_calls_behave_as_without_otel_ml(cap: TelemetryCapture, cancer: Any) -> None:
    """Same results; the same exception object; method availability (available_if) unchanged."""
    x, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    instrumented = pipe.predict_proba(x[:10])
    SklearnInstrumentor().uninstrument()
    try:
        plain = pipe.predict_proba(x[:10])
    finally:
        SklearnInstrumentor().instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
    assert np.array_equal(instrumented, plain)
    assert not hasattr(pipe, "transform")  # the Pipeline ends in a classifier

    boom = RuntimeError("model server lost")

    class Flaky(ClassifierMixin, BaseEstimator):
        def fit(self, x: Any, y: Any) -> Flaky:
            self.classes_ = np.array([0, 1])
            return self

        def predict(self, x: Any) -> Any:
            raise boom

    flaky = Flaky().fit(x, y)  # defined after instrument(): patched at class creation
    with pytest.raises(RuntimeError) as caught:
        flaky.predict(x[:2])
    assert caught.value is boom
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "Flaky", "error.type": "RuntimeError"}).count == 1


@pytest.mark.parametrize("rows", [
    pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": pd.Categorical(["x", "y", "x"])}),
    sp.csr_matrix(np.eye(3)),
    [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]],
    "not an array",
])
def test_odd_inputs_are_served_unchanged(cap: TelemetryCapture, rows: Any) -> None:
    """Pandas extension dtypes, sparse matrices, lists, junk: the model's own result or error, nothing raised by us."""
    class Echo(BaseEstimator):
        def fit(self, x: Any, y: Any = None) -> Echo:
            return self

        def predict(self, x: Any) -> Any:
            if isinstance(x, str):
                raise TypeError("expected an array")
            return np.zeros(x.shape[0] if hasattr(x, "shape") else len(x))

    model = Echo().fit(None)
    if isinstance(rows, str):
        with pytest.raises(TypeError, match="expected an array"):
            model.predict(rows)
    else:
        assert model.predict(rows).shape == (3,)
        assert cap.histogram("ml.inference.batch.size", **{"ml.model.name": "Echo"}).sum == 3
    assert selftelemetry.DEFAULT.count(selftelemetry.INTERNAL_ERROR) == 0


def test_uninstrument_restores_every_method(cap: TelemetryCapture) -> None:
    """After uninstrument() the estimator classes hold their original functions and nothing is recorded."""
    import sklearn.linear_model._base as base

    SklearnInstrumentor().uninstrument()
    try:
        assert type(base.LinearClassifierMixin.__dict__["predict"]).__name__ == "function"
        x, y = load_iris(return_X_y=True)
        LogisticRegression(max_iter=500).fit(x, y).predict(x)
        assert _inferences(cap) == 0
    finally:
        SklearnInstrumentor().instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)


def test_models_past_the_cap_are_recorded_as_other(cap: TelemetryCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_MODELS identities a model's calls still count - under one ``other`` monitor per task -
    and each identity that overflowed is counted in otel_ml.dropped."""
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    from otel_ml._internal.auto import registry

    monkeypatch.setattr(registry, "MAX_MODELS", 2)
    x, y = load_iris(return_X_y=True)
    models = [m.fit(x, y) for m in (LogisticRegression(max_iter=1000), DecisionTreeClassifier(random_state=0),
                                    GaussianNB(), KNeighborsClassifier())]
    for model in models:
        model.predict(x[:3])
        model.predict(x[:2])
    assert _inferences(cap, **{"ml.model.name": "LogisticRegression"}) == 2
    assert _inferences(cap, **{"ml.model.name": "DecisionTreeClassifier"}) == 2
    assert _inferences(cap, **{"ml.model.name": "other", "ml.model.version": "other"}) == 4
    assert {p.attributes["ml.model.name"] for p in cap.points("ml.inference.duration")} == {
        "LogisticRegression", "DecisionTreeClassifier", "other"}
    assert cap.histogram("ml.inference.batch.size", **{"ml.model.name": "other"}).sum == 10
    assert selftelemetry.DEFAULT.count("auto_model_cap") == 2
