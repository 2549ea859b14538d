"""Bad input never escapes into user code during inference; bad constructor arguments fail at once."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_ml._internal import selftelemetry
from otel_ml.testing import TelemetryCapture, capture_telemetry

junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(),
    st.binary(), st.lists(st.one_of(st.floats(), st.text(), st.none()), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3), st.just(object()),
    st.just(np.array([np.nan, np.inf, -1.0, 2.0])), st.just(np.array([["a", "b"]])), st.just(math.pi),
)

_CAP: TelemetryCapture | None = None


@pytest.fixture(scope="module", autouse=True)
def _close_capture() -> Any:
    yield
    global _CAP
    if _CAP is not None:
        _CAP.close()
        _CAP = None


def _capture() -> TelemetryCapture:
    global _CAP
    if _CAP is None:
        _CAP = capture_telemetry().__enter__()
    return _CAP


ids = st.one_of(junk, st.lists(st.one_of(st.text(max_size=4), st.integers(0, 5)), max_size=6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(predictions=junk, confidence=junk, score=junk, batch_size=junk, prediction_id=junk, prediction_ids=ids,
       task=st.sampled_from(["classification", "regression"]))
def test_record_never_raises(predictions: Any, confidence: Any, score: Any, batch_size: Any, prediction_id: Any,
                             prediction_ids: Any, task: Any) -> None:
    """Whatever the model returns, recording it never raises, and no internal error is counted."""
    cap = _capture()
    monitor = cap.monitor(f"fuzz-{task}", version="1", max_classes=5, task=task)
    with monitor.inference(batch_size=batch_size, prediction_id=prediction_id,
                           prediction_ids=prediction_ids) as inf:
        inf.record(predictions=predictions, confidence=confidence, score=score, prediction_id=prediction_id,
                   prediction_ids=prediction_ids)
    monitor.log_prediction(prediction=predictions, confidence=confidence, features=predictions)
    monitor.record_outcome(prediction_id, predictions)
    monitor.record_outcomes(prediction_ids if isinstance(prediction_ids, list) else [prediction_id],
                            [predictions] * (len(prediction_ids) if isinstance(prediction_ids, list) else 1))
    assert cap.dropped(selftelemetry.INTERNAL_ERROR) == 0, cap.selftelemetry.snapshot()


@settings(max_examples=200, deadline=None)
@given(tokens=junk, usage=junk)
def test_generation_never_raises(tokens: Any, usage: Any) -> None:
    """Token counts of any type never raise from a generation, and no internal error is counted."""
    cap = _capture()
    monitor = cap.monitor("fuzz-llm", version="1", task="generation")
    with monitor.generation(input_tokens=usage) as gen:
        gen.token(tokens)
        gen.set_usage(input_tokens=usage, output_tokens=tokens)
    assert cap.dropped(selftelemetry.INTERNAL_ERROR) == 0, cap.selftelemetry.snapshot()


def test_invalid_confidence_is_counted(cap: TelemetryCapture) -> None:
    """NaN, out-of-range and non-numeric confidence values are dropped and counted."""
    monitor = cap.monitor("fraud", version="1")
    for bad in (float("nan"), 1.5, -0.1, "high", None):
        with monitor.inference() as inf:
            inf.record(confidence=bad)
    with monitor.inference() as inf:
        inf.record(confidence=np.array([0.5, np.nan, 7.0]))
    assert cap.dropped("invalid_confidence", "metrics") == 6
    assert cap.histogram("ml.prediction.confidence").count == 1


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"name": 3}, TypeError),
    ({"name": " "}, ValueError),
    ({"name": "m", "version": 1.5}, TypeError),
    ({"name": "m", "task": "clustering"}, ValueError),
    ({"name": "m", "max_classes": 0}, ValueError),
    ({"name": "m", "classes": "abc"}, TypeError),
    ({"name": "m", "classes": [object()]}, ValueError),
    ({"name": "m", "duration_buckets": [1, 0.5]}, ValueError),
    ({"name": "m", "prediction_log_sample_rate": 2}, ValueError),
    ({"name": "m", "variant": 1}, TypeError),
    ({"name": "m", "reference": "profile.json"}, TypeError),
    ({"name": "m", "drift_policy": object()}, ValueError),
    ({"name": "m", "clock": 5}, TypeError),
    ({"name": "m", "quality_window_by": "arrival"}, ValueError),
    ({"name": "m", "quality_window_s": 0}, ValueError),
    ({"name": "m", "quality_window_s": 5e-324}, ValueError),  # the fuzz find: sub-windows of 0 s
    ({"name": "m", "outcome_ttl_s": float("inf")}, ValueError),
    ({"name": "m", "max_pending_outcomes": True}, ValueError),
    ({"name": "m", "capture_content": "yes"}, TypeError),
])
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """ModelMonitor validates its arguments immediately with a clear exception type."""
    from otel_ml import ModelMonitor

    name = kwargs.pop("name")
    with pytest.raises(error) as caught:
        ModelMonitor(name, **kwargs)
    named = next(iter(kwargs), "name")
    assert named in str(caught.value) or (named == "classes" and "label" in str(caught.value)), caught.value


class Counted:
    """An endless iterable that counts what was read of it."""

    def __init__(self, value: Any) -> None:
        self.value, self.read = value, 0

    def __iter__(self) -> Any:
        while True:
            self.read += 1
            yield self.value


@pytest.mark.parametrize(("arg", "value", "bound"), [("classes", "a", 1_000_000), ("duration_buckets", 1.0, 1000)])
def test_constructor_refuses_endless_iterables_after_reading_one_past_the_bound(arg: str, value: Any,
                                                                                bound: int) -> None:
    """The fuzz stage's OOM: classes=range(10**12) was read whole (the host's 24 GB, then the OOM
    killer). An endless iterable is refused with ValueError after bound + 1 items; a huge range too."""
    from otel_ml import ModelMonitor

    endless = Counted(value)
    with pytest.raises(ValueError, match=f"{arg} must hold at most {bound}"):
        ModelMonitor("m", **{arg: endless})
    assert endless.read == bound + 1
    with pytest.raises(ValueError, match=f"{arg} must hold at most"):
        ModelMonitor("m", **{arg: range(10**12)})


def test_constructor_takes_iterables_up_to_the_bound(cap: TelemetryCapture) -> None:
    monitor = cap.monitor("bounded", classes=(str(i) for i in range(3)), duration_buckets=range(1, 1001))
    with monitor.inference() as inf:
        inf.record(predictions="2")
    assert len(cap.histogram("ml.inference.duration", **{"ml.model.name": "bounded"}).explicit_bounds) == 1000
    assert cap.counter("ml.predictions", **{"ml.prediction.class": "2"}) == 1


# --- strict mode: a caught bug re-raises; invalid input stays counted -------------------------------

def _broken(cap: TelemetryCapture) -> Any:
    monitor = cap.monitor("broken", version="1")
    monitor._metrics = None  # type: ignore[assignment]  # an internal bug: inference metrics are gone
    return monitor


def test_default_mode_swallows_and_counts_a_caught_bug() -> None:
    with capture_telemetry(strict=False) as cap:
        with _broken(cap).inference() as inf:
            inf.record(confidence=0.5)
        assert cap.dropped(selftelemetry.INTERNAL_ERROR) == 1


def test_strict_capture_reraises_a_caught_bug() -> None:
    """otel_ml.testing's capture is strict by default: our own tests (and users') see the bug itself."""
    with capture_telemetry() as cap:
        with pytest.raises(AttributeError, match="record"), _broken(cap).inference() as inf:
            inf.record(confidence=0.5)
        assert cap.dropped(selftelemetry.INTERNAL_ERROR) == 1  # counted as well


def test_strict_env_var_reraises_a_caught_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_ML_STRICT", "true")
    with capture_telemetry(strict=False) as cap, pytest.raises(AttributeError), _broken(cap).inference():
        pass
    registry = selftelemetry.SelfTelemetry()
    with pytest.raises(ValueError, match="boom"):
        try:
            raise ValueError("boom")
        except ValueError as exc:
            registry.guard(exc)
    monkeypatch.setenv("OTEL_ML_STRICT", "0")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        registry.guard(exc)  # not strict: counted only
    assert registry.count(selftelemetry.INTERNAL_ERROR) == 2


def test_strict_mode_still_only_counts_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Invalid input otel_ml recognises is what production traffic looks like: counted, never raised."""
    monkeypatch.setenv("OTEL_ML_STRICT", "1")
    with capture_telemetry() as cap:
        monitor = cap.monitor("strict", version="1", classes=["ok"], max_classes=1)
        with monitor.inference(batch_size="many", method=3) as inf:
            inf.record(predictions=["unseen"], confidence=float("nan"), score=7, prediction_ids=[[1]])
        monitor.record_outcome({"unhashable": 1}, "ok")
        with monitor.generation(input_tokens=-1) as gen:
            gen.token(10**400)
        assert cap.dropped(selftelemetry.INTERNAL_ERROR) == 0
        for reason in ("invalid_batch_size", "invalid_method", "invalid_confidence", "invalid_score",
                       "invalid_token_count"):
            assert cap.dropped(reason) >= 1, (reason, cap.selftelemetry.snapshot())
