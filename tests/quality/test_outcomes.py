"""OutcomeTracker metrics equal sklearn.metrics on the same joined pairs.

Tolerances: accuracy/precision/recall/F1 and MAPE to 1e-12 (same counts and sums), MAE/RMSE to
1e-9 (sums of values ~100 in another order); ROC AUC within the binning bound the report states
(``roc_auc_error_bound``). Expected values come from sklearn or are worked out by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as hs
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from otel_ml._internal.quality import OutcomeTracker
from otel_ml._internal.selftelemetry import INTERNAL_ERROR, SelfTelemetry


def _fit(loader: Any, model: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    X, y = loader(return_X_y=True)
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.5, random_state=0)
    m = make_pipeline(StandardScaler(), model).fit(Xa, ya)
    return Xb, yb, m


def test_binary_classification_matches_sklearn(tel: SelfTelemetry) -> None:
    """Breast cancer, logistic regression: accuracy/P/R/F1 exact, AUC within the stated bound."""
    X, y, m = _fit(load_breast_cancer, LogisticRegression(max_iter=1000))
    pred = m.predict(X)
    score = m.predict_proba(X)[:, 1]
    t = OutcomeTracker("classification", selftelemetry=tel)
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
def test_multiclass_averages_match_sklearn(loader: Any, tel: SelfTelemetry) -> None:
    """Macro, micro and weighted P/R/F1 and per-class scores equal sklearn's."""
    X, y, m = _fit(loader, LogisticRegression(max_iter=200, C=0.05))
    pred = m.predict(X)
    t = OutcomeTracker("classification", selftelemetry=tel)
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


def test_regression_matches_sklearn(tel: SelfTelemetry) -> None:
    """Diabetes, linear regression: MAE, RMSE, MAPE as sklearn."""
    X, y, m = _fit(load_diabetes, LinearRegression())
    pred = m.predict(X)
    t = OutcomeTracker("regression", selftelemetry=tel)
    for i, p in enumerate(pred):
        t.remember(i, float(p))
    t.record_many(range(len(y)), y.tolist())
    r = t.evaluate()
    assert r.mae == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-9)
    assert r.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), abs=1e-9)
    assert r.mape == pytest.approx(skm.mean_absolute_percentage_error(y, pred), abs=1e-12)


def test_auc_bound_holds_on_river_phishing(tel: SelfTelemetry) -> None:
    """Binned AUC of a streaming river model stays within the stated bound of sklearn's AUC."""
    from river import datasets, linear_model, preprocessing

    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    t = OutcomeTracker("classification", positive_label=True, score_bins=20, selftelemetry=tel)
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


def test_unknown_expired_and_evicted_ids_are_counted(tel: SelfTelemetry) -> None:
    """Unknown ids read unknown; ids past the TTL or evicted at max_pending read expired."""
    now = [0.0]
    t = OutcomeTracker("classification", ttl_s=10, max_pending=3, clock=lambda: now[0], selftelemetry=tel)
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
    assert tel.count("outcome_store_full", "outcomes") == 1


def test_bounded_classes_overflow_to_other(tel: SelfTelemetry) -> None:
    """Past max_classes distinct labels, new labels are counted as "other"."""
    t = OutcomeTracker("classification", max_classes=3, selftelemetry=tel)
    for i in range(10):
        t.remember(i, f"c{i}")
        t.record(i, f"c{i}")
    labels = {p for p, _ in t.outcome_counts()}
    assert "other" in labels and len(labels) <= 4
    # The positive label 1 and c0, c1 have codes; c2..c9 overflowed as predictions and as labels.
    assert tel.count("outcome_class_cardinality_cap", "outcomes") == 2 * 8
    t.remember_many(["b1", "b2", "b3"], ["c0", "c8", "new"])
    t.record_many(["b1", "b2", "b3", "unknown-id"], ["c9", "c1", "c0", "c7"])
    t.record("unknown-id", "c5")  # not joined: counted as unmatched only
    assert tel.count("outcome_class_cardinality_cap", "outcomes") == 16 + 2 + 1
    assert t.unmatched["unknown"] == 2


def test_window_slides(tel: SelfTelemetry) -> None:
    """An outcome leaves the window after window_s but stays in the cumulative counts."""
    now = [0.0]
    t = OutcomeTracker("classification", window_s=60, sub_windows=6, ttl_s=1000, clock=lambda: now[0],
                       selftelemetry=tel)
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
    """remember/remember_many/record/record_many/evaluate never raise, nor count an internal error."""
    tel = SelfTelemetry()
    t = OutcomeTracker(task, max_pending=3, selftelemetry=tel)
    for i, p in zip(ids, preds, strict=False):
        t.remember(i, p, score=p, confidence=p)
    t.remember_many(ids, preds, scores=preds, confidences=actuals)
    t.remember_many(ids, preds[: len(ids)], scores=preds[: len(ids)])
    for i, a in zip(ids, actuals, strict=False):
        t.record(i, a)
    t.record_many(ids, actuals)
    t.record_many(ids, actuals[: len(ids)])
    t.record_many(5, None)  # type: ignore[arg-type]
    t.evaluate().metrics()
    t.outcome_counts()
    assert tel.count(INTERNAL_ERROR) == 0, tel.snapshot()


def test_state_read_by_the_wiring(tel: SelfTelemetry) -> None:
    """outcome_counts, unmatched and evaluate_cached hold what the exported instruments report."""
    t = OutcomeTracker("classification", selftelemetry=tel)
    for i, (p, a) in enumerate([(1, 1), (1, 0), (0, 0)]):
        t.remember(i, p)
        t.record(i, a)
    t.record(99, 1)
    assert t.outcome_counts() == {("1", "1"): 1, ("1", "0"): 1, ("0", "0"): 1}
    assert t.unmatched == {"unknown": 1, "expired": 0}
    assert t.evaluate_cached().metrics()["accuracy"] == pytest.approx(2 / 3)
    t.remember(5, 0)
    t.record(5, 1)  # a join makes the cached report stale
    assert t.evaluate_cached().metrics()["accuracy"] == pytest.approx(2 / 4)


def _breast_cancer() -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """Labels, predicted classes and class probabilities for all 569 rows (model fit on half)."""
    X, y = load_breast_cancer(return_X_y=True)
    Xa, _, ya, _ = train_test_split(X, y, test_size=0.5, random_state=0)
    m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xa, ya)
    return y, m.predict(X), m.predict_proba(X)


def test_batches_match_sklearn_binary(tel: SelfTelemetry) -> None:
    """500-row remember_many batches joined by shuffled record_many chunks: exact P/R/F1, AUC in bound."""
    y, pred, proba = _breast_cancer()
    ids = np.array([f"req-{i:05d}" for i in range(len(y))])
    t = OutcomeTracker("classification", selftelemetry=tel)
    for start in range(0, len(y), 500):
        rows = slice(start, start + 500)
        # numpy columns for the first batch, lists for the second: both are rows aligned by index
        batch = (ids[rows], pred[rows], proba[rows, 1], proba[rows].max(axis=1))
        if start:
            batch = tuple(c.tolist() for c in batch)
        t.remember_many(batch[0], batch[1], scores=batch[2], confidences=batch[3])
    assert t.pending == len(y)
    order = np.random.default_rng(1).permutation(len(y))
    for chunk in np.array_split(order, 7):
        t.record_many(ids[chunk].tolist(), y[chunk])
    r = t.evaluate()
    assert r.n == len(y) and t.pending == 0
    assert t.unmatched == {"unknown": 0, "expired": 0}
    assert r.accuracy == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert r.precision == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert r.recall == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert r.f1 == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    exact = skm.roc_auc_score(y, proba[:, 1])
    assert r.roc_auc is not None and r.roc_auc_error_bound is not None
    assert abs(r.roc_auc - exact) <= r.roc_auc_error_bound + 1e-12
    assert r.roc_auc_error_bound < 0.05
    assert tel.snapshot() == {}


def test_batches_match_sklearn_multiclass(tel: SelfTelemetry) -> None:
    """Wine in one batch, labels in shuffled chunks: macro and weighted F1 equal sklearn's."""
    X, y, m = _fit(load_wine, LogisticRegression(max_iter=200, C=0.05))
    pred = m.predict(X)
    t = OutcomeTracker("classification", selftelemetry=tel)
    t.remember_many(range(len(y)), pred)
    for chunk in np.array_split(np.random.default_rng(2).permutation(len(y)), 4):
        t.record_many(chunk, y[chunk])
    r = t.evaluate()
    assert r.n == len(y)
    for avg in ("macro", "weighted"):
        assert getattr(r, f"f1_{avg}") == pytest.approx(skm.f1_score(y, pred, average=avg, zero_division=0),
                                                         abs=1e-12)


def test_batches_match_sklearn_regression(tel: SelfTelemetry) -> None:
    """Diabetes + Ridge in one numpy batch, targets joined in shuffled chunks: MAE/RMSE/MAPE as sklearn."""
    X, y = load_diabetes(return_X_y=True)
    Xa, _, ya, _ = train_test_split(X, y, test_size=0.5, random_state=0)
    pred = Ridge(alpha=0.1).fit(Xa, ya).predict(X)
    ids = np.arange(len(y)) * 7919  # any ints
    t = OutcomeTracker("regression", selftelemetry=tel)
    t.remember_many(ids, pred)
    for chunk in np.array_split(np.random.default_rng(3).permutation(len(y)), 5):
        t.record_many(ids[chunk], y[chunk])
    r = t.evaluate()
    assert r.n == len(y)
    assert r.mae == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-9)
    assert r.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), abs=1e-9)
    assert r.mape == pytest.approx(skm.mean_absolute_percentage_error(y, pred), abs=1e-12)
    assert t.outcome_counts() == {("", ""): len(y)}
