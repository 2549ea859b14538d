"""Python logging reaches OTel logs with trace ids and model version; prediction logs are redacted."""

from __future__ import annotations

import logging

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
