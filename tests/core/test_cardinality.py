"""Every metric attribute whose values can come from data or callers is capped (names.py lists the caps).

For each one: drive many distinct values, then check what the in-memory reader collected holds
at most cap + 1 distinct values (the cap plus the overflow value) and that every overflowing
value was counted in ``otel_ml.dropped`` with the attribute's reason.
"""

from __future__ import annotations

import gc

import numpy as np

from otel_ml._internal import names
from otel_ml.testing import TelemetryCapture

N = 5_000


def _distinct(cap: TelemetryCapture, metric: str, attribute: str) -> set[object]:
    return {p.attributes[attribute] for p in cap.points(metric) if attribute in p.attributes}


def _reason(cap: TelemetryCapture, reason: str) -> float:
    return cap.counter(names.DROPPED, **{names.REASON: reason})


def test_prediction_class_batch(cap: TelemetryCapture) -> None:
    monitor = cap.monitor("card-class", max_classes=10)
    labels = np.array([f"label-{i}" for i in range(N)])
    with monitor.inference() as inf:
        inf.record(predictions=labels)
    got = _distinct(cap, names.PREDICTIONS, names.PREDICTION_CLASS)
    assert len(got) == 11 and names.OVERFLOW_VALUE in got
    assert cap.counter(names.PREDICTIONS, **{names.PREDICTION_CLASS: names.OVERFLOW_VALUE}) == N - 10
    assert _reason(cap, "label_cardinality_cap") == N - 10


def test_method(cap: TelemetryCapture) -> None:
    monitor = cap.monitor("card-method")
    for i in range(N):
        with monitor.inference(method=f"m{i}"):
            pass
    got = _distinct(cap, names.INFERENCE_DURATION, names.MODEL_METHOD)
    assert len(got) == names.MAX_METHODS + 1 and names.OVERFLOW_VALUE in got
    assert _reason(cap, "method_cardinality_cap") == N - names.MAX_METHODS
    # Every call is still counted, none lost to the cap.
    assert sum(p.point.count for p in cap.points(names.INFERENCE_DURATION)) == N


def test_error_type_with_and_without_method(cap: TelemetryCapture) -> None:
    monitor = cap.monitor("card-error")

    class Boom(Exception):
        pass

    for method in (None, "predict"):
        for i in range(N):
            Boom.__qualname__ = f"Boom{i}"
            try:
                with monitor.inference(method=method):
                    raise Boom
            except Boom:
                pass
    got = _distinct(cap, names.INFERENCE_DURATION, names.ERROR_TYPE)
    assert len(got) == names.MAX_ERROR_TYPES + 1 and names.ERROR_TYPE_OVERFLOW in got
    # The same error types repeat under the method, so they overflow the same way twice.
    assert _reason(cap, "error_type_cardinality_cap") == 2 * (N - names.MAX_ERROR_TYPES)
    series = {(p.attributes.get(names.MODEL_METHOD), p.attributes[names.ERROR_TYPE])
              for p in cap.points(names.INFERENCE_DURATION)}
    assert len(series) == 2 * (names.MAX_ERROR_TYPES + 1)


def test_model_version_and_variant_per_monitor(cap: TelemetryCapture) -> None:
    """A process that makes a monitor per version (or variant) value exports at most cap + 1 of them."""
    for i in range(2_000):
        monitor = cap.monitor("card-identity", version=f"v{i}", variant=f"arm-{i}")
        with monitor.inference() as inf:
            inf.record(predictions="a")
        assert monitor.version == f"v{i}"  # the monitor keeps its real identity (spans, logs)
    gc.collect()
    versions = _distinct(cap, names.PREDICTIONS, names.MODEL_VERSION)
    variants = _distinct(cap, names.PREDICTIONS, names.MODEL_VARIANT)
    assert len(versions) == names.MAX_MODEL_VERSIONS + 1 and names.OVERFLOW_VALUE in versions
    assert len(variants) == names.MAX_MODEL_VARIANTS + 1 and names.OVERFLOW_VALUE in variants
    assert _reason(cap, "model_version_cardinality_cap") == 2_000 - names.MAX_MODEL_VERSIONS
    assert _reason(cap, "model_variant_cardinality_cap") == 2_000 - names.MAX_MODEL_VARIANTS
    # The overflowing monitors merge into one series: nothing is lost.
    assert cap.counter(names.PREDICTIONS) == 2_000
    overflow = {names.MODEL_VERSION: names.OVERFLOW_VALUE, names.MODEL_VARIANT: names.OVERFLOW_VALUE}
    assert cap.counter(names.PREDICTIONS, **overflow) == 2_000 - names.MAX_MODEL_VERSIONS


def test_model_name(cap: TelemetryCapture) -> None:
    n = names.MAX_MODEL_NAMES + 50
    for i in range(n):
        with cap.monitor(f"card-name-{i}").inference():
            pass
    got = _distinct(cap, names.INFERENCE_DURATION, names.MODEL_NAME)
    assert len(got) == names.MAX_MODEL_NAMES + 1 and names.OVERFLOW_VALUE in got
    assert _reason(cap, "model_name_cardinality_cap") == 50


def test_caps_are_per_capture(cap: TelemetryCapture) -> None:
    """Another provider's registry has its own caps: one capture's values do not use up another's."""
    from otel_ml.testing import capture_telemetry

    for i in range(names.MAX_MODEL_VERSIONS):
        cap.monitor("card-iso", version=str(i))
    with capture_telemetry() as other:
        with other.monitor("card-iso", version="fresh").inference():
            pass
        assert _distinct(other, names.INFERENCE_DURATION, names.MODEL_VERSION) == {"fresh"}


def test_series_backstop_uses_sdk_overflow_marker(cap: TelemetryCapture) -> None:
    """Past MAX_SERIES_PER_INSTRUMENT attribute sets one instrument shares an otel.metric.overflow series."""
    from otel_ml._internal import instruments
    from otel_ml._internal.producer import MetricSource

    source = MetricSource(max_series_per_instrument=5, registry=cap.selftelemetry)
    with source.lock:
        for i in range(50):
            source.series(instruments.PREDICTIONS, {"k": str(i)}).value += 1
    points = dict(p for spec, pts in source.snapshot() for p in [(k, v) for _, k, v in pts])
    assert len(points) == 6
    assert points[(("otel.metric.overflow", True),)][0] == 45
    assert cap.dropped("cardinality_cap") == 45


def test_genai_attributes(cap: TelemetryCapture) -> None:
    """gen_ai.request.model, operation, provider and error.type are capped; spans keep the real values."""
    monitor = cap.monitor("card-llm", task="generation")

    class Boom(Exception):
        pass

    for i in range(N // 10):
        Boom.__qualname__ = f"Boom{i}"
        try:
            with monitor.generation(operation=f"op{i}", request_model=f"model-{i}", provider=f"p{i}"):
                raise Boom
        except Boom:
            pass
    n = N // 10
    for attribute, limit, reason, overflow in (
            (names.GENAI_OPERATION_NAME, names.MAX_GENAI_OPERATIONS, "genai_operation_cardinality_cap", "other"),
            (names.GENAI_REQUEST_MODEL, names.MAX_GENAI_MODELS, "genai_request_model_cardinality_cap", "other"),
            (names.GENAI_PROVIDER_NAME, names.MAX_GENAI_PROVIDERS, "genai_provider_cardinality_cap", "other"),
            (names.ERROR_TYPE, names.MAX_ERROR_TYPES, "error_type_cardinality_cap", names.ERROR_TYPE_OVERFLOW)):
        got = _distinct(cap, names.GENAI_REQUEST_DURATION, attribute)
        assert len(got) == limit + 1 and overflow in got, attribute
        assert _reason(cap, reason) == n - limit, attribute
    assert sum(p.point.count for p in cap.points(names.GENAI_REQUEST_DURATION)) == n
    assert {s.attributes[names.GENAI_REQUEST_MODEL] for s in cap.spans()} == {f"model-{i}" for i in range(n)}
