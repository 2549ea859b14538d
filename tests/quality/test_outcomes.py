"""OutcomeTracker metrics equal sklearn.metrics on the same joined pairs.

Tolerances: accuracy/precision/recall/F1 and MAE/RMSE/MAPE to 1e-12 (same counts and sums);
ROC AUC within the binning bound the report states (``roc_auc_error_bound``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as hs
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from otel_ml._internal.quality import OutcomeTracker


def _fit(loader: Any, model: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    X, y = loader(return_X_y=True)
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.5, random_state=0)
    m = make_pipeline(StandardScaler(), model).fit(Xa, ya)
    return Xb, yb, m


def test_binary_classification_matches_sklearn() -> None:
    """Breast cancer, logistic regression: accuracy/P/R/F1 exact, AUC within the stated bound."""
    X, y, m = _fit(load_breast_cancer, LogisticRegression(max_iter=1000))
    pred = m.predict(X)
    score = m.predict_proba(X)[:, 1]
    t = OutcomeTracker("classification")
    for i in range(len(y)):
        t.remember(f"id{i}", int(pred[i]), float(score[i]))
    t.record_many([f"id{i}" for i in range(len(y))], [int(v) for v in y])
    r = t.evaluate()
    assert r.n == len(y)
    assert r.accuracy == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert r.precision == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert r.recall == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert r.f1 == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    exact = skm.roc_auc_score(y, score)
    assert r.roc_auc is not None and r.roc_auc_error_bound is not None
    assert abs(r.roc_auc - exact) <= r.roc_auc_error_bound + 1e-12
    assert r.roc_auc_error_bound < 0.05


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_multiclass_averages_match_sklearn(loader: Any) -> None:
    """Macro, micro and weighted P/R/F1 and per-class scores equal sklearn's."""
    X, y, m = _fit(loader, LogisticRegression(max_iter=200, C=0.05))
    pred = m.predict(X)
    t = OutcomeTracker("classification")
    for i, (p, a) in enumerate(zip(pred, y, strict=True)):
        t.remember(i, int(p))
        t.record(i, int(a))
    r = t.evaluate()
    assert r.accuracy == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    for avg in ("macro", "micro", "weighted"):
        for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
            assert getattr(r, f"{name}_{avg}") == pytest.approx(fn(y, pred, average=avg, zero_division=0), abs=1e-12)
    per = skm.f1_score(y, pred, average=None, zero_division=0)
    for label, f1 in zip(sorted(set(y) | set(pred)), per, strict=True):
        assert r.per_class[str(label)].f1 == pytest.approx(f1, abs=1e-12)


def test_regression_matches_sklearn() -> None:
    """Diabetes, linear regression: MAE, RMSE, MAPE as sklearn."""
    X, y, m = _fit(load_diabetes, LinearRegression())
    pred = m.predict(X)
    t = OutcomeTracker("regression")
    for i, p in enumerate(pred):
        t.remember(i, float(p))
    t.record_many(range(len(y)), y.tolist())
    r = t.evaluate()
    assert r.mae == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-9)
    assert r.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), abs=1e-9)
    assert r.mape == pytest.approx(skm.mean_absolute_percentage_error(y, pred), abs=1e-12)


def test_auc_bound_holds_on_river_phishing() -> None:
    """Binned AUC of a streaming river model stays within the stated bound of sklearn's AUC."""
    from river import datasets, linear_model, preprocessing

    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    t = OutcomeTracker("classification", positive_label=True, score_bins=20)
    ys, ss = [], []
    for i, (x, y) in enumerate(datasets.Phishing()):
        s = model.predict_proba_one(x).get(True, 0.0)
        t.remember(i, s >= 0.5, s)
        t.record(i, y)
        model.learn_one(x, y)
        ys.append(y)
        ss.append(s)
    r = t.evaluate()
    exact = skm.roc_auc_score(ys, ss)
    assert r.roc_auc is not None and r.roc_auc_error_bound is not None
    assert abs(r.roc_auc - exact) <= r.roc_auc_error_bound + 1e-12


def test_unknown_expired_and_evicted_ids_are_counted() -> None:
    now = [0.0]
    t = OutcomeTracker("classification", ttl_s=10, max_pending=3, clock=lambda: now[0])
    t.remember("a", 1)
    t.record("nope", 1)
    now[0] = 11.0
    t.record("a", 1)  # expired
    for k in "bcde":
        t.remember(k, 0)  # "b" evicted
    t.record("b", 0)
    t.record("c", 0)
    assert t.unmatched == {"unknown": 1, "expired": 2}
    assert t.evicted == 1 and t.pending == 2
    assert t.evaluate().n == 1


def test_bounded_classes_overflow_to_other() -> None:
    t = OutcomeTracker("classification", max_classes=3)
    for i in range(10):
        t.remember(i, f"c{i}")
        t.record(i, f"c{i}")
    labels = {p for p, _ in t.outcome_counts()}
    assert "other" in labels and len(labels) <= 4


def test_window_slides() -> None:
    now = [0.0]
    t = OutcomeTracker("classification", window_s=60, sub_windows=6, ttl_s=1000, clock=lambda: now[0])
    t.remember(1, 1)
    t.record(1, 1)
    now[0] = 70.0
    assert t.evaluate().n == 0
    assert sum(t.outcome_counts().values()) == 1


_any = hs.one_of(hs.none(), hs.floats(), hs.integers(), hs.text(max_size=3), hs.lists(hs.integers(), max_size=2),
                 hs.just(object()), hs.binary(max_size=2))


@settings(max_examples=300, deadline=None)
@given(ids=hs.lists(_any, max_size=4), preds=hs.lists(_any, max_size=4), actuals=hs.lists(_any, max_size=5),
       task=hs.sampled_from(["classification", "regression"]))
def test_bad_inputs_never_raise(ids: list[Any], preds: list[Any], actuals: list[Any], task: str) -> None:
    """remember/record/record_many/evaluate never raise, whatever they are given."""
    t = OutcomeTracker(task, max_pending=3)
    for i, p in zip(ids, preds, strict=False):
        t.remember(i, p, score=p)  # type: ignore[arg-type]
    for i, a in zip(ids, actuals, strict=False):
        t.record(i, a)
    t.record_many(ids, actuals)
    t.record_many(5, None)  # type: ignore[arg-type]
    t.evaluate().metrics()


def test_register_metrics() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    t = OutcomeTracker("classification")
    t.register_metrics(MeterProvider(metric_readers=[reader]).get_meter("t"), {"ml.model.name": "m"})
    for i, (p, a) in enumerate([(1, 1), (1, 0), (0, 0)]):
        t.remember(i, p)
        t.record(i, a)
    t.record(99, 1)
    pts = {m.name: list(m.data.data_points) for rm in reader.get_metrics_data().resource_metrics
           for sm in rm.scope_metrics for m in sm.metrics}
    outcomes = {(p.attributes["ml.prediction.class"], p.attributes["ml.outcome.class"]): p.value
                for p in pts["ml.outcomes"]}
    assert outcomes == {("1", "1"): 1, ("1", "0"): 1, ("0", "0"): 1}
    assert {p.attributes["otel_ml.reason"]: p.value for p in pts["ml.outcomes.unmatched"]}["unknown"] == 1
    acc = [p.value for p in pts["ml.quality.score"] if p.attributes["ml.quality.metric"] == "accuracy"]
    assert acc == [pytest.approx(2 / 3)]
