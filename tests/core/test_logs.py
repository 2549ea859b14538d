"""Python logging reaches OTel logs with trace ids and model version; prediction logs are redacted."""

from __future__ import annotations

import logging

import pytest

from otel_ml.testing import TelemetryCapture

log = logging.getLogger("service")


def test_log_inside_inference_carries_trace_and_model(cap: TelemetryCapture) -> None:
    """A log line inside the inference has its span's ids and the model's name and version."""
    log.setLevel(logging.INFO)
    monitor = cap.monitor("fraud", version="3")
    with monitor.inference():
        log.info("scored %d rows", 4)
    (span,) = cap.spans()
    (record,) = [r.log_record for r in cap.logs() if r.log_record.body == "scored 4 rows"]
    assert record.trace_id == span.context.trace_id
    assert record.span_id == span.context.span_id
    assert record.attributes is not None
    assert record.attributes["ml.model.name"] == "fraud"
    assert record.attributes["ml.model.version"] == "3"


def test_log_outside_inference_has_no_model(cap: TelemetryCapture) -> None:
    """Outside an inference, logs carry no model attributes."""
    log.setLevel(logging.INFO)
    log.info("startup")
    (record,) = [r.log_record for r in cap.logs() if r.log_record.body == "startup"]
    assert record.attributes is not None
    assert "ml.model.name" not in record.attributes


def test_prediction_log_redacts_features_by_default(cap: TelemetryCapture) -> None:
    """log_prediction records sizes, not raw features or outputs, unless content capture is on."""
    logging.getLogger("otel_ml.predictions").setLevel(logging.INFO)
    monitor = cap.monitor("fraud", version="3")
    monitor.log_prediction(prediction="fraud", confidence=0.9, prediction_id="p1",
                           features={"card": "4111-1111", "amount": 10}, output="fraud!")
    (record,) = [r.log_record for r in cap.logs() if r.log_record.attributes
                 and r.log_record.attributes.get("ml.prediction.id") == "p1"]
    attrs = dict(record.attributes or {})
    assert "4111" not in repr(attrs)
    assert attrs["ml.features.count"] == 2
    assert attrs["ml.prediction.class"] == "fraud"
    assert attrs["ml.model.version"] == "3"


def test_prediction_log_content_opt_in_and_sampling(cap: TelemetryCapture) -> None:
    """capture_content=True includes the features; sample rate 0 emits nothing."""
    logging.getLogger("otel_ml.predictions").setLevel(logging.INFO)
    opted = cap.monitor("fraud", version="3", capture_content=True)
    opted.log_prediction(prediction="ok", prediction_id="p2", features={"amount": 10})
    silent = cap.monitor("fraud", version="4", prediction_log_sample_rate=0.0)
    for i in range(50):
        silent.log_prediction(prediction="ok", prediction_id=f"s{i}")
    attrs = [dict(r.log_record.attributes or {}) for r in cap.logs()]
    (p2,) = [a for a in attrs if a.get("ml.prediction.id") == "p2"]
    assert "'amount': 10" in p2["ml.features"]
    assert not [a for a in attrs if a.get("ml.model.version") == "4"]


def test_redact_hook_sees_opted_in_content_and_fails_closed(cap: TelemetryCapture) -> None:
    """With capture_content, ``redact(kind, value)`` decides what leaves; a record that carries content
    is marked for the collector; a raising hook leaves the content out and is counted."""
    logging.getLogger("otel_ml.predictions").setLevel(logging.INFO)
    seen: list[tuple[str, object]] = []

    def redact(kind: str, value: object) -> object:
        seen.append((kind, value))
        if kind == "output":
            return None  # outputs never leave
        assert isinstance(value, dict)
        return {k: v for k, v in value.items() if k != "card"}

    opted = cap.monitor("fraud", version="3", capture_content=True, redact=redact)
    opted.log_prediction(prediction="ok", prediction_id="r1", features={"card": "4111-1111", "amount": 10},
                         output="approve")

    def broken(kind: str, value: object) -> object:
        raise RuntimeError("redactor bug")

    failing = cap.monitor("fraud", version="5", capture_content=True, redact=broken)
    failing.log_prediction(prediction="ok", prediction_id="r2", features={"card": "4111-1111"})
    plain = cap.monitor("fraud", version="6")
    plain.log_prediction(prediction="ok", prediction_id="r3", features={"card": "4111-1111"})

    attrs = {a.get("ml.prediction.id"): a for a in (dict(r.log_record.attributes or {}) for r in cap.logs())}
    assert seen == [("features", {"card": "4111-1111", "amount": 10}), ("output", "approve")]
    assert attrs["r1"]["ml.features"] == "{'amount': 10}"
    assert "ml.output" not in attrs["r1"]
    assert attrs["r1"]["otel_ml.content.captured"] is True
    assert "4111" not in repr(attrs["r2"]) and "otel_ml.content.captured" not in attrs["r2"]
    assert "otel_ml.content.captured" not in attrs["r3"]
    assert cap.dropped("redact_error", "logs") == 1


def test_redact_must_be_callable(cap: TelemetryCapture) -> None:
    with pytest.raises(TypeError, match="redact"):
        cap.monitor("fraud", version="7", capture_content=True, redact="mask")  # type: ignore[arg-type]
