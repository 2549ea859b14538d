"""An unmodified FastAPI + scikit-learn service under ``opentelemetry-instrument``: otel_ml's entry point
turns its predictions into inferences, spans under the HTTP spans, with the model identity from env."""

from __future__ import annotations

import pytest

from tests.instrumentation.zero_code import run

DRIVE = """
from fastapi.testclient import TestClient
from examples.zero_code.app import app
client = TestClient(app)
for n in (1, 3, 5):
    assert client.post("/predict", json={"rows": [[5.1, 3.5, 1.4, 0.2]] * n}).status_code == 200
assert client.post("/predict-async", json={"rows": [[6.7, 3.0, 5.2, 2.3]] * 2}).status_code == 200
"""
IDENTITY = {"OTEL_ML_MODEL_NAME": "iris", "OTEL_ML_MODEL_VERSION": "2026.11",
            "OTEL_ML_CLASS_NAMES": "0=setosa,1=versicolor,2=virginica"}


@pytest.fixture(scope="module")
def exported():  # type: ignore[no-untyped-def]
    return run(DRIVE, IDENTITY)


def test_every_prediction_is_an_inference_of_the_named_model(exported) -> None:  # type: ignore[no-untyped-def]
    """Four calls, 11 rows; latency by method, class mix with mapped names, confidence per row."""
    model = {"ml.model.name": "iris", "ml.model.version": "2026.11"}
    durations = exported.final("ml.inference.duration", **model)
    assert {p["attributes"]["ml.model.method"]: p["point"]["count"] for p in durations} == {
        "predict_proba": 3, "predict": 1}
    assert all(p["unit"] == "s" for p in durations)
    (batch,) = exported.final("ml.inference.batch.size", **model)
    assert batch["point"]["sum"] == 11 and batch["unit"] == "{row}"
    classes = {p["attributes"]["ml.prediction.class"]: p["point"]["value"]
               for p in exported.final("ml.predictions", **model)}
    assert classes == {"setosa": 9, "virginica": 2}
    (conf,) = exported.final("ml.prediction.confidence", **model)
    assert conf["point"]["count"] == 9  # predict_proba rows only
    assert durations[0]["resource"]["service.name"] == "zero-code-test"


def test_inference_spans_sit_under_the_http_spans(exported) -> None:  # type: ignore[no-untyped-def]
    """Sync endpoints run in the thread pool, async ones in the loop: both inferences are children of their
    request's server span."""
    by_id = {s["context"]["span_id"]: s for s in exported.spans}
    inferences = [s for s in exported.spans if s["name"] == "inference iris"]
    assert len(inferences) == 4
    for span in inferences:
        parent = by_id[span["parent_id"]]
        assert parent["kind"] == "SpanKind.SERVER" and parent["name"].startswith("POST /predict")
        assert span["context"]["trace_id"] == parent["context"]["trace_id"]
        assert span["attributes"]["ml.model.name"] == "iris"


def test_disabled_by_the_standard_variable() -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_sklearn: HTTP spans, no inference."""
    got = run(DRIVE, {**IDENTITY, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otel_ml_sklearn"})
    assert any(s["name"].startswith("POST /predict") for s in got.spans)
    assert not [s for s in got.spans if s["name"].startswith("inference")]
    assert not got.points("ml.inference.duration")


UPSTREAM = """
from fastapi.testclient import TestClient
from examples.zero_code.app import app
client = TestClient(app)
for i, (n, flags) in enumerate([(1, "00"), (3, "01"), (5, "00"), (2, "00"), (4, "01")]):
    parent = f"00-{i + 1:032x}-{i + 1:016x}-{flags}"  # upstream decided: 01 sampled, 00 not
    r = client.post("/predict", json={"rows": [[5.1, 3.5, 1.4, 0.2]] * n}, headers={"traceparent": parent})
    assert r.status_code == 200
unsampled = {"traceparent": f"00-{'f' * 32}-{'e' * 16}-00"}
for _ in range(40):  # one row each, unsampled upstream: the QuickLane
    r = client.post("/predict", json={"rows": [[6.7, 3.0, 5.2, 2.3]]}, headers=unsampled)
    assert r.status_code == 200
"""


def test_upstream_sampling_decides_spans_and_every_call_is_counted() -> None:
    """Requests whose upstream did not sample the trace make no inference span (parent-based
    sampling) but count exactly like sampled ones - 45 calls, 55 rows, the class mix of the rows."""
    got = run(UPSTREAM, IDENTITY)
    model = {"ml.model.name": "iris", "ml.model.version": "2026.11"}
    inferences = [s for s in got.spans if s["name"] == "inference iris"]
    assert sorted(s["context"]["trace_id"] for s in inferences) == [f"0x{2:032x}", f"0x{5:032x}"]
    (duration,) = got.final("ml.inference.duration", **model)
    assert duration["point"]["count"] == 45
    (batch,) = got.final("ml.inference.batch.size", **model)
    assert batch["point"]["sum"] == 1 + 3 + 5 + 2 + 4 + 40
    classes = {p["attributes"]["ml.prediction.class"]: p["point"]["value"]
               for p in got.final("ml.predictions", **model)}
    assert classes == {"setosa": 15, "virginica": 40}
    (conf,) = got.final("ml.prediction.confidence", **model)
    assert conf["point"]["count"] == 55
