"""An instrumented model service: a scikit-learn classifier behind FastAPI, plus a streaming LLM stub.

Run it (with the local stack up, or anything listening for OTLP on 127.0.0.1:4317)::

    uvicorn examples.classifier_service.app:app --host 127.0.0.1 --port 8000

What it shows:
* ``otel_ml.configure()`` + the FastAPI instrumentor: every request is an HTTP span, and the
  inference span is its child, so Jaeger shows request -> inference;
* ``ModelMonitor`` with a reference profile built from the training split: latency, confidence,
  class mix, drift and data quality for every served row, with model name and version;
* ``POST /outcome``: ground truth that arrives later, joined by prediction id -> accuracy, F1, AUC;
* ``POST /generate``: a token stream (a stand-in for an LLM server) timed with the GenAI metrics;
* log lines correlated with the trace (Loki <-> Jaeger);
* ``CANARY_SHARE=0.1``: an in-process canary - the next model version as ``variant="canary"``,
  trained on less (and noisier) data, a little slower - serving that share of traffic, so the
  A/B dashboard and the canary alerts have something to compare;
* ``DEMO_FAULTS=1``: the load generator may ask, per request, for a failure or a slow call
  inside the inference (header ``X-Demo-Fault: error|slow``), where otel_ml measures them.

The model is trained at start-up on scikit-learn's bundled breast-cancer data (no download).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import StreamingResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml

MODEL_VERSION = os.environ.get("MODEL_VERSION", "2026.11.1")
CANARY_SHARE = float(os.environ.get("CANARY_SHARE", "0"))
DEMO_FAULTS = os.environ.get("DEMO_FAULTS", "") == "1"

telemetry = otel_ml.configure(
    service_name=os.environ.get("OTEL_SERVICE_NAME", "classifier-service"),
    service_version="1.0.0",
    deployment_environment=os.environ.get("DEPLOYMENT_ENVIRONMENT", "dev"),
    export_interval_ms=int(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "5000")),
)
log = logging.getLogger("classifier_service")
log.setLevel(logging.INFO)

data = load_breast_cancer()
FEATURES = [str(n).replace(" ", "_") for n in data.feature_names]
CLASSES = [str(c) for c in data.target_names]  # malignant, benign
x_train, x_serve, y_train, y_serve = train_test_split(data.data, data.target, test_size=0.3, random_state=0)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)

# Prediction drift compares served confidence (top-class probability) with the training one.
reference = otel_ml.ReferenceProfile.from_data(
    x_train, feature_names=FEATURES, predictions=model.predict_proba(x_train).max(axis=1),
    prediction_kind="confidence")
monitor = otel_ml.ModelMonitor(
    "breast-cancer-classifier", version=MODEL_VERSION, task="classification", classes=CLASSES,
    positive_class="malignant", reference=reference,
    drift_policy=otel_ml.DriftPolicy(window_s=float(os.environ.get("DRIFT_WINDOW_S", "60"))),
)
llm = otel_ml.ModelMonitor("tiny-llm", version="0.1", task="generation")

# The canary: the next version, trained on a fifth of the data with 15 % of its labels flipped -
# worse, as a rushed retrain can be - and served to CANARY_SHARE of the traffic.
_rng = np.random.default_rng(1)
_subset = _rng.choice(len(x_train), size=len(x_train) // 5, replace=False)
_noisy = np.where(_rng.random(len(_subset)) < 0.15, 1 - y_train[_subset], y_train[_subset])
canary_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train[_subset], _noisy)
canary = otel_ml.ModelMonitor(
    "breast-cancer-classifier", version=f"{MODEL_VERSION}-rc1", variant="canary", task="classification",
    classes=CLASSES, positive_class="malignant",
    reference=otel_ml.ReferenceProfile.from_data(
        x_train, feature_names=FEATURES, predictions=canary_model.predict_proba(x_train).max(axis=1),
        prediction_kind="confidence"),
    drift_policy=otel_ml.DriftPolicy(window_s=float(os.environ.get("DRIFT_WINDOW_S", "60"))),
) if CANARY_SHARE > 0 else None
# Which variant served each prediction id, so its label reaches the right monitor (bounded).
_served_by: OrderedDict[str, bool] = OrderedDict()
_MAX_ASSIGNMENTS = 200_000

# A regression model beside the classifier: disease progression from scikit-learn's diabetes data,
# with its labels (the measured progression) arriving later on /estimate/outcome.
diabetes = load_diabetes()
DIABETES_FEATURES = [str(n) for n in diabetes.feature_names]
xd_train, xd_serve, yd_train, yd_serve = train_test_split(diabetes.data, diabetes.target, test_size=0.3,
                                                          random_state=0)
regressor = Ridge(alpha=0.1).fit(xd_train, yd_train)
progression = otel_ml.ModelMonitor(
    "diabetes-progression", version=MODEL_VERSION, task="regression",
    reference=otel_ml.ReferenceProfile.from_data(xd_train, feature_names=DIABETES_FEATURES,
                                                 predictions=regressor.predict(xd_train), prediction_kind="value"),
    drift_policy=otel_ml.DriftPolicy(window_s=float(os.environ.get("DRIFT_WINDOW_S", "60"))),
)

app = FastAPI(title="otel_ml example classifier")
# The server span per request, without its internal "http receive" / "http send" child spans: they
# tell nothing about a prediction and cost more than the inference's own telemetry (bench load).
FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])


class PredictRequest(BaseModel):
    features: list[float] | dict[str, float]
    id: str | None = None


class BatchRequest(BaseModel):
    rows: list[list[float]]
    ids: list[str] | None = None


class OutcomeRequest(BaseModel):
    id: str
    actual: str


class OutcomesRequest(BaseModel):
    ids: list[str]
    actuals: list[str]


class EstimateRequest(BaseModel):
    features: list[float]
    id: str | None = None


class EstimateOutcomeRequest(BaseModel):
    id: str
    actual: float


class GenerateRequest(BaseModel):
    prompt: str
    max_tokens: int = 16


def _row(features: list[float] | dict[str, float]) -> np.ndarray:
    if isinstance(features, dict):
        missing = [f for f in FEATURES if f not in features]
        if missing:
            raise HTTPException(422, f"missing features: {missing[:5]}")
        values = [features[f] for f in FEATURES]
    else:
        values = list(features)
    if len(values) != len(FEATURES):
        raise HTTPException(422, f"expected {len(FEATURES)} features, got {len(values)}")
    return np.asarray(values, dtype=float).reshape(1, -1)


def _fault(kind: str | None, on_canary: bool) -> None:
    """What DEMO_FAULTS lets the load generator ask for, inside the inference where it is measured."""
    if not DEMO_FAULTS:
        return
    if on_canary:
        time.sleep(random.uniform(0.03, 0.06))  # the canary's bigger model
        if random.random() < 0.15:  # the canary's new feature lookup is flaky
            raise TimeoutError("canary: feature store timed out")
    if kind == "error":
        raise TimeoutError("feature store timed out")
    if kind == "slow":
        time.sleep(random.uniform(0.6, 1.0))


@app.post("/predict")
def predict(req: PredictRequest, x_demo_fault: str | None = Header(default=None)) -> dict[str, Any]:
    row = _row(req.features)
    prediction_id = req.id or uuid.uuid4().hex
    on_canary = canary is not None and random.random() < CANARY_SHARE
    serving, mon, version = (canary_model, canary, f"{MODEL_VERSION}-rc1") if on_canary and canary else (
        model, monitor, MODEL_VERSION)
    try:
        with mon.inference(batch_size=1, features=row, prediction_id=prediction_id) as inf:
            if not np.isfinite(row).all():
                log.error("non-finite input for prediction %s", prediction_id)
                raise HTTPException(422, "features must be finite numbers")
            try:
                _fault(x_demo_fault, on_canary)
            except TimeoutError as exc:
                # Logged inside the inference: the record carries its trace id and model version.
                log.error("prediction %s failed: %s", prediction_id, exc)
                raise
            proba = serving.predict_proba(row)[0]
            label = CLASSES[int(proba.argmax())]
            confidence = float(proba.max())
            inf.record(predictions=label, confidence=confidence, score=float(proba[0]))
            log.info("predicted %s (confidence %.3f) for %s", label, confidence, prediction_id)
    except TimeoutError as exc:
        raise HTTPException(503, str(exc)) from None
    if canary is not None:
        _served_by[prediction_id] = on_canary
        if len(_served_by) > _MAX_ASSIGNMENTS:
            _served_by.popitem(last=False)
    return {"id": prediction_id, "prediction": label, "confidence": confidence, "model_version": version,
            "variant": "canary" if on_canary else None}


@app.post("/predict/batch")
def predict_batch(req: BatchRequest) -> dict[str, Any]:
    rows = np.asarray(req.rows, dtype=float)
    if rows.ndim != 2 or rows.shape[1] != len(FEATURES):
        raise HTTPException(422, f"rows must be n x {len(FEATURES)}")
    ids = req.ids or [uuid.uuid4().hex for _ in range(len(rows))]
    if len(ids) != len(rows):
        raise HTTPException(422, f"{len(ids)} ids for {len(rows)} rows")
    # One id per row: labels posted later to /outcomes join every row of the batch.
    with monitor.inference(features=rows, prediction_ids=ids) as inf:
        proba = model.predict_proba(rows)
        labels = [CLASSES[i] for i in proba.argmax(axis=1)]
        inf.record(predictions=labels, confidence=proba.max(axis=1), score=proba[:, 0])
    return {"ids": ids, "predictions": labels, "model_version": MODEL_VERSION}


@app.post("/estimate")
def estimate(req: EstimateRequest) -> dict[str, Any]:
    if len(req.features) != len(DIABETES_FEATURES):
        raise HTTPException(422, f"expected {len(DIABETES_FEATURES)} features, got {len(req.features)}")
    row = np.asarray(req.features, dtype=float).reshape(1, -1)
    prediction_id = req.id or uuid.uuid4().hex
    with progression.inference(batch_size=1, features=row, prediction_id=prediction_id) as inf:
        value = float(regressor.predict(row)[0])
        inf.record(predictions=value)
        log.info("estimated progression %.1f for %s", value, prediction_id)
    return {"id": prediction_id, "progression": value, "model_version": MODEL_VERSION}


@app.post("/estimate/outcome")
def estimate_outcome(req: EstimateOutcomeRequest) -> dict[str, str]:
    progression.record_outcome(req.id, req.actual)
    return {"status": "recorded"}


@app.post("/outcome")
def outcome(req: OutcomeRequest) -> dict[str, str]:
    mon = canary if canary is not None and _served_by.pop(req.id, False) else monitor
    mon.record_outcome(req.id, req.actual)
    log.info("outcome %s for %s", req.actual, req.id)  # `otel-ml explain ID` finds it by the id
    return {"status": "recorded"}


@app.post("/outcomes")
def outcomes(req: OutcomesRequest) -> dict[str, Any]:
    if len(req.ids) != len(req.actuals):
        raise HTTPException(422, f"{len(req.ids)} ids for {len(req.actuals)} labels")
    monitor.record_outcomes(req.ids, req.actuals)
    return {"status": "recorded", "n": len(req.ids)}


@app.post("/generate")
async def generate(req: GenerateRequest) -> StreamingResponse:
    async def tokens() -> AsyncIterator[str]:
        await asyncio.sleep(random.uniform(0.02, 0.08))  # prefill: the wait for the first token
        for i in range(max(1, min(req.max_tokens, 256))):
            if i:
                await asyncio.sleep(random.uniform(0.002, 0.01))
            if DEMO_FAULTS and i == 3 and random.random() < 0.05:
                raise RuntimeError("decoder ran out of KV cache")  # a generation failing mid-stream
            yield f"tok{i} "

    stream = llm.wrap_stream(tokens(), request_model="tiny-llm", provider="otel_ml-example",
                             input_tokens=len(req.prompt.split()))
    return StreamingResponse(stream, media_type="text/plain")


@app.get("/drift")
def drift() -> dict[str, Any]:
    return {name: {"status": r.status.name, "psi": r.scores.get("psi"), "n": r.n}
            for name, r in monitor.drift().items()}


@app.get("/quality")
def quality() -> dict[str, Any]:
    report = monitor.quality()
    return {k: v for k, v in vars(report).items() if isinstance(v, (int, float, str)) or v is None}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
