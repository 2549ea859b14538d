"""Batches joined to delayed labels row by row; a clock that makes windows and TTLs deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from otel_ml import ReferenceProfile
from otel_ml._internal import selftelemetry
from otel_ml.testing import TelemetryCapture


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breast cancer: a logistic regression trained on half, scored on the other half."""
    x, y = load_breast_cancer(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    train, test = idx[:285], idx[285:]
    model = LogisticRegression(max_iter=5000).fit(x[train], y[train])
    proba = model.predict_proba(x[test])
    return proba, proba.argmax(1), y[test]


def test_batch_ids_join_every_row_and_match_sklearn(cap: TelemetryCapture,
                                                    scored: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """prediction_ids aligned with a batch: labels joined later in shuffled chunks give sklearn's scores."""
    proba, predicted, actual = scored
    monitor = cap.monitor("cancer", version="1", positive_class=1)
    ids = [f"row-{i}" for i in range(len(predicted))]
    for start in range(0, len(ids), 100):  # batches of 100 rows
        sl = slice(start, start + 100)
        with monitor.inference(prediction_ids=ids[sl]) as inf:
            inf.record(predictions=predicted[sl], confidence=proba[sl].max(1), score=proba[sl, 1])
    order = np.random.default_rng(1).permutation(len(ids))
    for chunk in np.array_split(order, 7):
        monitor.record_outcomes([ids[i] for i in chunk], [int(actual[i]) for i in chunk])
    report = monitor.quality()
    assert report.n == len(ids)
    assert report.accuracy == pytest.approx(accuracy_score(actual, predicted))
    assert report.precision == pytest.approx(precision_score(actual, predicted))
    assert report.recall == pytest.approx(recall_score(actual, predicted))
    assert report.f1 == pytest.approx(f1_score(actual, predicted))
    assert report.roc_auc is not None and report.roc_auc_error_bound is not None
    assert abs(report.roc_auc - roc_auc_score(actual, proba[:, 1])) <= report.roc_auc_error_bound + 1e-12
    assert cap.counter("ml.outcomes", **{"ml.model.name": "cancer"}) == len(ids)
    assert cap.dropped() == 0, cap.selftelemetry.snapshot()


def test_ids_given_to_record_work_like_ids_given_to_inference(cap: TelemetryCapture) -> None:
    """inf.record(prediction_ids=...) is the same as inference(prediction_ids=...)."""
    monitor = cap.monitor("late-ids", version="1")
    with monitor.inference() as inf:
        inf.record(predictions=["a", "b", "a"], prediction_ids=["x", "y", "z"])
    monitor.record_outcomes(["x", "y", "z"], ["a", "a", "a"])
    assert monitor.quality().accuracy == pytest.approx(2 / 3)


def test_regression_batch_joins(cap: TelemetryCapture) -> None:
    """A regression batch with ids joins its values: MAE and RMSE of the joined rows."""
    monitor = cap.monitor("eta", version="1", task="regression")
    preds = np.array([10.0, 12.0, 7.5, 3.0])
    actual = [11.0, 12.0, 5.5, 4.0]
    with monitor.inference(prediction_ids=[1, 2, 3, 4]) as inf:
        inf.record(predictions=preds)
    monitor.record_outcomes([4, 3, 2, 1], actual[::-1])
    report = monitor.quality()
    errors = preds - np.asarray(actual)
    assert report.mae == pytest.approx(np.abs(errors).mean())
    assert report.rmse == pytest.approx(np.sqrt((errors ** 2).mean()))


def test_mismatched_duplicate_and_unknown_ids_are_counted_not_raised(cap: TelemetryCapture) -> None:
    """Ids that do not line up with the rows, repeat, or were never seen are counted, never raised."""
    monitor = cap.monitor("bad-ids", version="1")
    with monitor.inference(prediction_ids=["a", "b"]) as inf:  # 3 rows, 2 ids
        inf.record(predictions=["x", "y", "z"])
    with monitor.inference(prediction_ids=["c", "c", "d"]) as inf:  # "c" twice
        inf.record(predictions=["x", "y", "z"])
    with monitor.inference(prediction_id="single") as inf:  # one id for a batch
        inf.record(predictions=["x", "y"])
    monitor.record_outcomes(["c", "d", "nope", "a"], ["x", "z", "x", "x"])
    assert cap.dropped("prediction_ids_length_mismatch") >= 1
    assert cap.dropped("duplicate_prediction_id") == 1
    assert cap.dropped("prediction_id_for_batch") == 2
    report = monitor.quality()
    assert report.n == 2 and report.accuracy == 1.0  # c -> x (first kept), d -> z
    assert cap.counter("ml.outcomes.unmatched", **{"otel_ml.reason": "unknown"}) == 2  # "nope" and "a"
    assert cap.dropped(selftelemetry.INTERNAL_ERROR) == 0


def test_clock_drives_ttl_days_later(cap: TelemetryCapture) -> None:
    """With a clock, labels three days later join under a week's TTL and expire under a day's."""
    clock = FakeClock()
    week = cap.monitor("slow-labels", version="1", clock=clock, outcome_ttl_s=7 * 86400,
                       quality_window_s=86400)
    day = cap.monitor("slow-labels", version="2", clock=clock, outcome_ttl_s=86400)
    for m in (week, day):
        with m.inference(prediction_ids=["p1", "p2"]) as inf:
            inf.record(predictions=["x", "y"])
    clock.t += 3 * 86400
    for m in (week, day):
        m.record_outcomes(["p1", "p2"], ["x", "x"])
    assert week.quality().n == 2 and week.quality().accuracy == 0.5
    assert day.quality().n == 0
    assert cap.counter("ml.outcomes.unmatched", **{"ml.model.version": "2", "otel_ml.reason": "expired"}) == 2


def test_quality_window_by_prediction_or_label_time(cap: TelemetryCapture) -> None:
    """The same outcomes land in the label's window or the prediction's, as chosen."""
    clock = FakeClock()
    kw = {"clock": clock, "quality_window_s": 3600.0, "outcome_ttl_s": 10 * 86400}
    by_label = cap.monitor("windows", version="label", quality_window_by="label_time", **kw)
    by_prediction = cap.monitor("windows", version="prediction", quality_window_by="prediction_time", **kw)
    for m in (by_label, by_prediction):
        with m.inference(prediction_ids=["a", "b"]) as inf:
            inf.record(predictions=["x", "x"])
    clock.t += 2 * 86400  # labels two days later: the predictions' hour is long gone
    for m in (by_label, by_prediction):
        m.record_outcomes(["a", "b"], ["x", "y"])
    assert by_label.quality().n == 2
    assert by_prediction.quality().n == 0
    # Counters advance at label time either way (Prometheus cannot back-date them).
    assert cap.counter("ml.outcomes", **{"ml.model.version": "prediction"}) == 2


def test_clock_drives_drift_windows(cap: TelemetryCapture) -> None:
    """Drift windows follow the monitor's clock: old traffic leaves the window, deterministically."""
    from otel_ml import DriftPolicy

    rng = np.random.default_rng(3)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=3000)})
    clock = FakeClock()
    monitor = cap.monitor("replay", version="1", reference=profile, clock=clock,
                          drift_policy=DriftPolicy(window_s=600.0, sub_windows=3))
    with monitor.inference(features={"x": rng.normal(loc=2.0, size=500)}):
        pass
    assert monitor.drift()["x"].status.name == "DRIFT"
    clock.t += 400
    with monitor.inference(features={"x": rng.normal(size=500)}):
        pass
    assert monitor.drift()["x"].n == 1000
    clock.t += 400  # the shifted rows' sub-window has left the 600 s window
    assert monitor.drift()["x"].n == 500
    assert monitor.drift()["x"].status.name == "OK"


def test_prediction_drift_compares_like_with_like(cap: TelemetryCapture) -> None:
    """A profile of scores is fed scores; a monitor that records only confidence counts a mismatch, not drift."""
    rng = np.random.default_rng(4)
    scores = rng.uniform(size=2000)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=2000)}, predictions=scores, prediction_kind="score")
    fed = cap.monitor("kinds", version="score", reference=profile)
    with fed.inference() as inf:
        s = rng.uniform(size=300)
        inf.record(predictions=(s > 0.5).astype(int), confidence=np.maximum(s, 1 - s), score=s)
    assert fed.drift()["__prediction__"].n == 300
    starved = cap.monitor("kinds", version="confidence-only", reference=profile)
    with starved.inference() as inf:
        inf.record(predictions=[1, 0], confidence=[0.9, 0.8])
    assert starved.drift()["__prediction__"].n == 0
    assert cap.dropped("prediction_drift_kind_mismatch") == 1


def test_predictions_that_never_get_a_label_are_exported(cap: TelemetryCapture) -> None:
    """ml.predictions.unlabelled counts expired and evicted predictions; ml.outcomes.pending the waiting ones."""
    clock = FakeClock()
    monitor = cap.monitor("backlog", version="1", clock=clock, outcome_ttl_s=3600, max_pending_outcomes=5)
    with monitor.inference(prediction_ids=[f"a{i}" for i in range(7)]) as inf:  # 2 over the cap: evicted
        inf.record(predictions=["x"] * 7)
    monitor.record_outcome("a6", "x")
    assert cap.counter("ml.outcomes.pending", **{"ml.model.name": "backlog"}) == 4
    clock.t += 3601  # the other four expire unlabelled
    with monitor.inference(prediction_ids=["b0"]) as inf:
        inf.record(predictions=["x"])
    unlabelled = {p.attributes["otel_ml.reason"]: p.point.value
                  for p in cap.points("ml.predictions.unlabelled", **{"ml.model.name": "backlog"})}
    assert unlabelled == {"expired": 4, "evicted": 2}
    assert cap.counter("ml.outcomes.pending", **{"ml.model.name": "backlog"}) == 1
