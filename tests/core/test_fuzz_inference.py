"""Fuzz the inference-path entry points with hostile values: nothing escapes, no bug is caught.

Entry points: ``ModelMonitor(...)``, ``monitor.inference(...)`` + ``inf.record(...)``,
``monitor.generation()`` token counts and usage, ``monitor.log_prediction(...)`` and outcome logging
(``record_outcome(s)`` then ``quality()``). Each runs ``FUZZ_EXAMPLES`` (10 000) generated cases in
the default (non-strict) mode; see tests/core/fuzz.py for what is asserted after each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_ml import ModelMonitor
from otel_ml.testing import TelemetryCapture, capture_telemetry
from tests.core.fuzz import Weird, bug_counts, fuzz_settings, junk, no_bug, scalars

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def fcap() -> Iterator[TelemetryCapture]:
    # Default (production) mode: guards swallow and count; the assertions read the counts.
    with capture_telemetry(strict=False) as cap:
        yield cap


@pytest.fixture(scope="module")
def monitors(fcap: TelemetryCapture) -> dict[str, ModelMonitor]:
    return {
        "classification": fcap.monitor("fuzz-cls", version="1", classes=["ok", "fraud", 3, True], max_classes=5,
                                       positive_class="fraud"),
        "open": fcap.monitor("fuzz-open", version="1", max_classes=4),
        "regression": fcap.monitor("fuzz-reg", version="2", task="regression"),
        "generation": fcap.monitor("fuzz-llm", version="3", task="generation"),
        "content": fcap.monitor("fuzz-content", version="1", capture_content=True,
                                redact=lambda kind, value: value, prediction_log_sample_rate=0.5),
    }


ids = st.one_of(junk, st.lists(st.one_of(st.text(max_size=4), st.integers(0, 5)), max_size=6))
kinds = st.sampled_from(["classification", "open", "regression", "content"])


@fuzz_settings()
@given(kind=kinds, predictions=junk, confidence=junk, batch_size=junk, prediction_id=junk, prediction_ids=ids,
       method=scalars, actuals=junk, raise_inside=st.booleans())
def test_inference_record_log_and_outcomes(fcap: TelemetryCapture, monitors: dict[str, ModelMonitor], kind: str,
                                           predictions: Any, confidence: Any, batch_size: Any, prediction_id: Any,
                                           prediction_ids: Any, method: Any, actuals: Any, raise_inside: bool) -> None:
    """Each case feeds the same hostile values to four entry points: inference + record (predictions,
    confidence, score, batch size, ids, method), log_prediction, and outcome logging (record_outcome,
    record_outcomes with unseen, hostile or misaligned labels and ids, then quality())."""
    monitor = monitors[kind]
    with no_bug(fcap.selftelemetry):
        try:
            with monitor.inference(batch_size=batch_size, prediction_id=prediction_id,
                                   prediction_ids=prediction_ids, method=method) as inf:
                inf.record(predictions=predictions, confidence=confidence, score=actuals,
                           prediction_id=prediction_id, prediction_ids=prediction_ids)
                inf.record(predictions=actuals, score=confidence)  # twice in one inference
                if raise_inside:
                    raise KeyError("the user's own error")
        except KeyError as exc:  # the user's exception passes through unchanged, and only it
            assert raise_inside and exc.args == ("the user's own error",)
        monitor.log_prediction(prediction=predictions, confidence=confidence, prediction_id=prediction_id,
                               features=actuals, output=predictions, level=20 + raise_inside,
                               extra_attribute=str(method))
        monitor.record_outcome(prediction_id, actuals)
        monitor.record_outcomes(prediction_ids, actuals)
        monitor.record_outcomes(["a", "b"], [predictions, actuals])
        if raise_inside:  # a quarter of the cases: the report over everything joined so far
            monitor.quality()


@fuzz_settings()
@given(tokens=junk, usage_in=junk, usage_out=junk, response_model=junk, start_tokens=junk, first=st.booleans(),
       stream=st.lists(junk, max_size=4), operation=st.one_of(st.text(max_size=8), scalars),
       request_model=st.one_of(st.text(max_size=8), scalars))
def test_generation(fcap: TelemetryCapture, monitors: dict[str, ModelMonitor], tokens: Any, usage_in: Any,
                    usage_out: Any, response_model: Any, start_tokens: Any, first: bool, stream: list[Any],
                    operation: Any, request_model: Any) -> None:
    monitor = monitors["generation"]
    if not isinstance(operation, str) or not operation:
        # Like the constructor's, this argument is code, not data: a bad one fails at once, clearly.
        with pytest.raises(ValueError, match="operation must be a non-empty str"):
            monitor.generation(operation=operation)
        operation = "chat"
    with no_bug(fcap.selftelemetry):
        with monitor.generation(input_tokens=start_tokens, operation=operation, request_model=request_model,
                                provider=request_model, response_model=response_model) as gen:
            if first:
                gen.first_token()
            gen.token(tokens)
            gen.set_usage(input_tokens=usage_in, output_tokens=usage_out, response_model=response_model)
        for _ in monitor.wrap_stream(iter(stream), tokens_of=lambda item: item, input_tokens=usage_in):
            pass


constructor_args = st.fixed_dictionaries({}, optional={
    "version": st.one_of(st.text(max_size=5), scalars),
    "task": st.one_of(st.sampled_from(["classification", "regression", "generation"]), scalars),
    "variant": st.one_of(st.none(), st.text(max_size=5), scalars),
    "classes": st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=3), st.integers(-2, 2), st.booleans()),
                                             max_size=6), junk),
    "max_classes": st.one_of(st.integers(-2, 6), scalars),
    "duration_buckets": st.one_of(st.none(), st.lists(st.floats(allow_nan=True), max_size=5), junk),
    "positive_class": junk,
    "outcome_ttl_s": st.one_of(st.floats(), scalars),
    "max_pending_outcomes": st.one_of(st.integers(-2, 10), scalars),
    "quality_window_s": st.one_of(st.floats(), scalars),
    "quality_window_by": st.one_of(st.sampled_from(["label_time", "prediction_time"]), scalars),
    "capture_content": st.one_of(st.none(), st.booleans(), scalars),
    "prediction_log_sample_rate": st.one_of(st.floats(), scalars),
    "clock": st.one_of(st.none(), st.just(lambda: 5.0), scalars),
    "redact": st.one_of(st.none(), st.just(lambda kind, value: value), scalars),
})


@fuzz_settings()
@given(name=st.one_of(st.text(max_size=12), scalars), kwargs=constructor_args, confidence=junk)
def test_monitor_construction(fcap: TelemetryCapture, name: Any, kwargs: dict[str, Any], confidence: Any) -> None:
    """Bad constructor arguments fail at once with TypeError/ValueError; anything accepted then works."""
    with no_bug(fcap.selftelemetry):
        try:
            monitor = ModelMonitor(name, tracer_provider=fcap.tracer_provider, meter_provider=fcap.meter_provider,
                                   **kwargs)
        except (TypeError, ValueError):
            return
        try:
            with monitor.inference(prediction_id="x") as inf:
                inf.record(predictions=confidence, confidence=confidence, score=confidence)
            monitor.record_outcome("x", confidence)
            monitor.log_prediction(prediction=confidence, features=[Weird()])
        finally:
            monitor.close()


def test_fuzz_can_fail() -> None:
    """The check the fuzz tests rely on sees a caught bug (guards re-raise only in strict mode)."""
    with capture_telemetry(strict=False) as cap:
        monitor = cap.monitor("broken", version="1")
        monitor._metrics = None  # type: ignore[assignment]  # an internal bug: the metrics are gone
        with pytest.raises(AssertionError, match="internal_error"), no_bug(cap.selftelemetry), \
                monitor.inference() as inf:
            inf.record(confidence=0.5)
        assert bug_counts(cap.selftelemetry) == {"internal_error": 1}
