"""Calls under an unsampled parent take the QuickLane (one append per call, folded later): the
metrics a reader sees must be exactly those of the full path, for two models at once, from many
threads, across folds, with batches, errors and odd outputs handed back to the full path."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml.auto
from otel_ml._internal import energy
from otel_ml._internal.inference import QUICK_FOLD_AT
from otel_ml._internal.logs import READERS
from otel_ml.instrumentation.sklearn import SklearnInstrumentor
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented
from tests.instrumentation.lanes import lane, unsampled_parent


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, SklearnInstrumentor()) as capture:
        yield capture


def _expect_proba(cap: TelemetryCapture, name: str, probas: list[np.ndarray], classes: list[str]) -> None:
    """The series of ``name`` hold exactly what scikit-learn returned, one row per call."""
    top = np.array([p[0].max() for p in probas])
    winners = np.array([int(p[0].argmax()) for p in probas])
    n = len(probas)
    duration = cap.histogram("ml.inference.duration", **{"ml.model.name": name, "ml.model.method": "predict_proba"})
    assert duration.count == n and duration.sum > 0 and duration.min > 0
    batch = cap.histogram("ml.inference.batch.size", **{"ml.model.name": name})
    assert (batch.count, batch.sum) == (n, n)
    confidence = cap.histogram("ml.prediction.confidence", **{"ml.model.name": name})
    assert confidence.count == n
    assert confidence.sum == pytest.approx(top.sum())
    assert (confidence.min, confidence.max) == (pytest.approx(top.min()), pytest.approx(top.max()))
    # OTel buckets are (lower, upper]: searchsorted(side="left") puts a value equal to a bound
    # (a probability of exactly 1.0) in the bucket that bound closes.
    bounds = list(confidence.explicit_bounds)
    expected = np.bincount(np.searchsorted(bounds, top, side="left"), minlength=len(bounds) + 1)
    assert list(confidence.bucket_counts) == expected.tolist()
    for i, label in enumerate(classes):
        assert cap.counter("ml.predictions", **{"ml.model.name": name, "ml.prediction.class": label}) == \
            (winners == i).sum(), label


def test_two_models_unsampled_count_exactly_what_they_returned(cap: TelemetryCapture) -> None:
    """Two models called in turn under unsampled parents: no span, and every call in the metrics."""
    x, y = load_breast_cancer(return_X_y=True)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    xi, yi = load_iris(return_X_y=True)
    nb = GaussianNB().fit(xi, yi)
    got_lr: list[np.ndarray] = []
    got_nb: list[np.ndarray] = []
    with unsampled_parent():
        for i in range(300):
            got_lr.append(lr.predict_proba(x[i:i + 1]))
            got_nb.append(nb.predict_proba(xi[i % 150:i % 150 + 1]))
    assert cap.spans() == []
    assert len(lane(lr).pending) == 300 and len(lane(nb).pending) == 300  # folded when a reader collects
    _expect_proba(cap, "LogisticRegression", got_lr, ["0", "1"])
    _expect_proba(cap, "GaussianNB", got_nb, ["0", "1", "2"])
    assert len(lane(lr).pending) == 0 and len(lane(nb).pending) == 0  # the collection folded them

    # Sampled calls of the same model still make spans, with exemplars, into the same series.
    for i in range(300, 350):
        got_lr.append(lr.predict_proba(x[i:i + 1]))
    assert len(cap.spans()) == 50
    _expect_proba(cap, "LogisticRegression", got_lr, ["0", "1"])
    exemplars = [e for p in cap.points("ml.inference.duration", **{"ml.model.name": "LogisticRegression"})
                 for e in p.point.exemplars]
    assert exemplars and {e.trace_id for e in exemplars} <= {s.context.trace_id for s in cap.spans()}


def test_pending_calls_stay_bounded_without_a_reader(cap: TelemetryCapture) -> None:
    """Nothing collects for 2 500 calls: the calling thread folds every QUICK_FOLD_AT calls."""
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    with unsampled_parent():
        model.predict_proba(x[:1])
        quick = lane(model)
        for i in range(2499):
            model.predict_proba(x[i % 150:i % 150 + 1])
            assert len(quick.pending) < QUICK_FOLD_AT
    assert len(quick.pending) == 2500 % QUICK_FOLD_AT
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "LogisticRegression"}).count == 2500


def test_batches_errors_labels_and_regression_values_unsampled(cap: TelemetryCapture) -> None:
    """What the lane does not take (a batch, an error) goes the full path, timed from the same start;
    predict's labels and a regressor's values go the lane."""
    x, y = load_breast_cancer(return_X_y=True)
    lr = LogisticRegression(max_iter=3000).fit(x, y)
    xd, yd = load_diabetes(return_X_y=True)
    ridge = Ridge().fit(xd, yd)
    boom = ValueError("bad row")

    class Flaky(ClassifierMixin, BaseEstimator):
        def fit(self, x: Any, y: Any) -> Flaky:
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, x: Any) -> Any:
            raise boom

    flaky = Flaky().fit(x, y)
    with unsampled_parent():
        batch = lr.predict_proba(x[:40])
        labels = [lr.predict(x[i:i + 1])[0] for i in range(60)]
        values = [ridge.predict(xd[i:i + 1])[0] for i in range(25)]
        with pytest.raises(ValueError) as caught:
            flaky.predict_proba(x[:1])
    assert caught.value is boom
    assert cap.spans() == []
    lr_attrs = {"ml.model.name": "LogisticRegression"}
    assert cap.histogram("ml.inference.duration", **lr_attrs, **{"ml.model.method": "predict_proba"}).count == 1
    assert cap.histogram("ml.inference.duration", **lr_attrs, **{"ml.model.method": "predict"}).count == 60
    assert cap.histogram("ml.inference.batch.size", **lr_attrs).sum == 40 + 60
    confidence = cap.histogram("ml.prediction.confidence", **lr_attrs)
    assert confidence.count == 40 and confidence.sum == pytest.approx(batch.max(axis=1).sum())
    labels_arr = np.array(labels)
    winners = batch.argmax(axis=1)
    for c in (0, 1):
        assert cap.counter("ml.predictions", **lr_attrs, **{"ml.prediction.class": str(c)}) == \
            (labels_arr == c).sum() + (winners == c).sum()
    value = cap.histogram("ml.prediction.value", **{"ml.model.name": "Ridge"})
    assert value.count == 25 and value.sum == pytest.approx(sum(values))
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "Flaky", "error.type": "ValueError"}).count == 1


def test_nan_probabilities_count_the_same_on_both_paths(cap: TelemetryCapture) -> None:
    """A model returning NaN rows: class counted, confidence dropped as invalid - sampled or not."""
    class Broken(ClassifierMixin, BaseEstimator):
        def fit(self, x: Any, y: Any) -> Broken:
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, x: Any) -> Any:
            return np.full((len(x), 2), np.nan)

    x = np.zeros((1, 3))
    sampled = Broken().fit(x, [0])
    for _ in range(5):
        sampled.predict_proba(x)
    counted = cap.counter("ml.predictions", **{"ml.prediction.class": "0"})
    before = {r: cap.dropped(r) for r in ("invalid_confidence", "invalid_score")}
    assert before == {"invalid_confidence": 5, "invalid_score": 5}
    # A NaN positive-class score sends a binary model's call the full path; a 3-class NaN row goes the lane.
    class Broken3(Broken):
        def fit(self, x: Any, y: Any) -> Broken3:
            self.classes_ = np.array([0, 1, 2])
            return self

        def predict_proba(self, x: Any) -> Any:
            return np.full((len(x), 3), np.nan)

    three = Broken3().fit(x, [0])
    with unsampled_parent():
        for _ in range(5):
            sampled.predict_proba(x)
        for _ in range(4):
            three.predict_proba(x)
        assert len(lane(three).pending) == 4 and len(lane(sampled).pending) == 0
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "0"}) == counted + 5 + 4 == 14
    assert cap.dropped("invalid_confidence") == 5 + 5 + 4
    assert cap.dropped("invalid_score") == 5 + 5
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "Broken"}).count == 10


def test_threads_and_collections_lose_nothing(cap: TelemetryCapture) -> None:
    """4 threads x 600 unsampled calls while another thread collects without pause: exact totals."""
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    expected = np.bincount(model.predict_proba(x).argmax(axis=1), minlength=3)
    cap.metrics()  # the sampled call above is in; count from here
    base = {c: cap.counter("ml.predictions", **{"ml.prediction.class": str(c)}) for c in range(3)}
    done = threading.Event()
    errors: list[BaseException] = []

    def serve(offset: int) -> None:
        try:
            with unsampled_parent(0x100 + offset):
                for i in range(600):
                    model.predict_proba(x[(i + offset) % 150:(i + offset) % 150 + 1])
        except BaseException as exc:
            errors.append(exc)

    def collect() -> None:
        while not done.is_set():
            cap.metrics()

    collector = threading.Thread(target=collect)
    collector.start()
    workers = [threading.Thread(target=serve, args=(150 * k,)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    collector.join()
    assert errors == []
    # Each worker went through all 150 rows four times: 16 x the per-row winners.
    for c in range(3):
        assert cap.counter("ml.predictions", **{"ml.prediction.class": str(c)}) - base[c] == 16 * expected[c]
    assert cap.histogram("ml.inference.duration", **{"ml.model.method": "predict_proba"}).count == 1 + 2400


def test_lane_stays_shut_where_a_call_needs_the_full_path(cap: TelemetryCapture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Sampled or root parent, an energy meter, prediction ids: not the quick."""
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    model.predict_proba(x[:1])
    quick = lane(model)
    assert not quick.open()  # no parent: the root span is sampled
    with unsampled_parent():
        assert quick.open()
        monkeypatch.setattr(energy.CURRENT, "meter", object())
        assert not quick.open()
        monkeypatch.setattr(energy.CURRENT, "meter", None)
        with otel_ml.auto.prediction_ids(["a"]):
            model.predict_proba(x[:1])
        assert len(quick.pending) == 0  # joined to an id: recorded through the full path
    sampled = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        trace_id=0x9, span_id=0x8, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))))
    token = otel_context.attach(sampled)
    try:
        assert not quick.open()
    finally:
        otel_context.detach(token)


def test_logs_inside_an_unsampled_call_carry_the_model(cap: TelemetryCapture) -> None:
    """The capture's log handler reads the current model (READERS.model_filter): a log the model
    writes during a lane call has the model's attributes and the request's trace id; one after it
    has no model."""
    log = logging.getLogger("tests.quick.model")
    log.setLevel(logging.INFO)

    class Chatty(ClassifierMixin, BaseEstimator):
        def fit(self, x: Any, y: Any) -> Chatty:
            self.classes_ = np.array(["no", "yes"])
            return self

        def predict_proba(self, x: Any) -> Any:
            log.info("scoring %d rows", len(x))
            return np.array([[0.2, 0.8]] * len(x))

    model = Chatty().fit(None, None)
    assert READERS.model_filter
    with unsampled_parent(0xABC):
        model.predict_proba(np.zeros((1, 2)))
        assert len(lane(model).pending) == 1  # it went the lane
        log.info("after the call")
    (inside,) = [r.log_record for r in cap.logs() if r.log_record.body == "scoring 1 rows"]
    (after,) = [r.log_record for r in cap.logs() if r.log_record.body == "after the call"]
    assert inside.attributes is not None and inside.attributes["ml.model.name"] == "Chatty"
    assert inside.trace_id == 0xABC
    assert after.attributes is not None and "ml.model.name" not in after.attributes
    assert cap.counter("ml.predictions", **{"ml.model.name": "Chatty", "ml.prediction.class": "yes"}) == 1


def test_a_zero_dimensional_result_is_still_one_inference(cap: TelemetryCapture) -> None:
    """Fuzz find: a 0-d array result (``shape == ()``) made the lane's row check raise, and the
    call was counted nowhere. It goes the full path now: one inference, the same object back."""
    class Scalar(BaseEstimator):
        def fit(self, x: Any = None, y: Any = None) -> Scalar:
            return self

        def predict(self, x: Any) -> Any:
            return out

    out = np.array(3.0)
    model = Scalar().fit()
    with unsampled_parent():
        assert model.predict(np.zeros((1, 2))) is out
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "Scalar"}).count == 1
