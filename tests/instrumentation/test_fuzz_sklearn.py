"""Fuzz the scikit-learn instrumentor's recording of model outputs, on both of its paths.

A model whose ``predict_proba`` / ``predict`` returns hostile values (arrays of any dtype and shape,
NaN, inf, objects, junk that is not an array) or raises, with hostile ``classes_``, called with
the trace sampled (full path) or under an unsampled parent (the QuickLane, which hands what it
cannot take back to the full path). After each case: the caller got the model's own return value
or exception object, no bug was counted (tests/core/fuzz.py), and - checked every 200 cases through
a real collection - every call was counted as exactly one inference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from otel_ml._internal import selftelemetry
from otel_ml.instrumentation.sklearn import SklearnInstrumentor
from otel_ml.testing import TelemetryCapture, capture_telemetry
from tests.core.fuzz import fuzz_settings, junk, no_bug
from tests.instrumentation.capture import IDENTITY_ENV

pytestmark = pytest.mark.fuzz


class Served:
    """What the next call returns (or raises)."""

    value: Any = None
    error: BaseException | None = None


class HostileClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, x: Any = None, y: Any = None) -> HostileClassifier:
        self.classes_ = np.array([0, 1, 2])
        return self

    def predict_proba(self, x: Any) -> Any:
        if Served.error is not None:
            raise Served.error
        return Served.value

    def predict(self, x: Any) -> Any:
        return self.predict_proba(x)


class HostileRegressor(RegressorMixin, BaseEstimator):
    def fit(self, x: Any = None, y: Any = None) -> HostileRegressor:
        return self

    def predict(self, x: Any) -> Any:
        if Served.error is not None:
            raise Served.error
        return Served.value


@pytest.fixture(scope="module")
def fcap() -> Iterator[TelemetryCapture]:
    mp = pytest.MonkeyPatch()
    for name in IDENTITY_ENV:
        mp.delenv(name, raising=False)
    instrumentor = SklearnInstrumentor()
    with capture_telemetry(strict=False) as cap:  # production mode: guards count, the test reads them
        instrumentor.instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
        try:
            yield cap
        finally:
            instrumentor.uninstrument()
            mp.undo()


dtypes = st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.uint8, object, "U3", np.complex64])
outputs = st.one_of(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
               elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
    dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=3))),
    st.lists(st.floats(0, 1), min_size=1, max_size=4).map(lambda row: np.array([row])),  # one valid-ish row
    junk,
)
classes = st.one_of(
    st.none(),
    st.lists(st.one_of(st.integers(-2, 5), st.text(max_size=3), st.booleans()), max_size=5)
    .map(lambda v: np.array(v, dtype=object)),
    st.sampled_from([np.array([0, 1]), np.array([0, 1, 2]), np.array(["no", "yes"]), np.array([0.5, 1.5])]),
)
errors = st.one_of(st.none(), st.sampled_from([ValueError("bad"), KeyError("k"), MemoryError(), RuntimeError()]))

_UNSAMPLED = trace.set_span_in_context(NonRecordingSpan(SpanContext(
    trace_id=0xF00, span_id=0xBA, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))))
_COUNT = {"calls": 0, "checked_at": 0}
_CLASSIFIER = HostileClassifier().fit()
_REGRESSOR = HostileRegressor().fit()


def _inferences(cap: TelemetryCapture) -> int:
    return sum(p.point.count for p in cap.points("ml.inference.duration")
               if p.attributes.get("ml.model.name", "").startswith("Hostile"))


@fuzz_settings()
@given(value=outputs, model_classes=classes, error=errors, unsampled=st.booleans(),
       which=st.sampled_from(["proba", "predict", "regressor"]))
def test_hostile_outputs_on_both_paths(fcap: TelemetryCapture, value: Any, model_classes: Any,
                                       error: BaseException | None, unsampled: bool, which: str) -> None:
    Served.value, Served.error = value, error
    model: Any = _REGRESSOR if which == "regressor" else _CLASSIFIER
    if model is _CLASSIFIER:
        if model_classes is None:
            model.__dict__.pop("classes_", None)
        else:
            model.classes_ = model_classes
    call = model.predict_proba if which == "proba" else model.predict
    token = otel_context.attach(_UNSAMPLED) if unsampled else None
    with no_bug(fcap.selftelemetry), no_bug(selftelemetry.DEFAULT):
        try:
            try:
                got = call(np.zeros((1, 2)))
            except BaseException as exc:
                assert error is not None and exc is error, f"otel_ml raised {exc!r}"
            else:
                assert error is None and got is value
        finally:
            if token is not None:
                otel_context.detach(token)
        _COUNT["calls"] += 1
        if _COUNT["calls"] - _COUNT["checked_at"] >= 200:
            _COUNT["checked_at"] = _COUNT["calls"]
            assert _inferences(fcap) == _COUNT["calls"]  # a collection folds the lanes: none lost
