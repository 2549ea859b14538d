"""The example service's ``/predict`` without any telemetry: the baseline of ``otel-ml bench load``.

Same model, same request model and validation as ``app.py``'s ``/predict`` (single row, no
fault injection, no canary), but no ``otel_ml`` import, no OpenTelemetry and no per-request log
line, so ``otel-ml bench load`` can put a figure on what the monitoring costs a whole service::

    uvicorn examples.classifier_service.bare:app --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

data = load_breast_cancer()
FEATURES = [str(n).replace(" ", "_") for n in data.feature_names]
CLASSES = [str(c) for c in data.target_names]
x_train, x_serve, y_train, y_serve = train_test_split(data.data, data.target, test_size=0.3, random_state=0)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)

app = FastAPI(title="otel_ml example classifier, no telemetry")


class PredictRequest(BaseModel):
    features: list[float] | dict[str, float]
    id: str | None = None


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


@app.post("/predict")
def predict(req: PredictRequest) -> dict[str, Any]:
    row = _row(req.features)
    prediction_id = req.id or uuid.uuid4().hex
    if not np.isfinite(row).all():
        raise HTTPException(422, "features must be finite numbers")
    proba = model.predict_proba(row)[0]
    label = CLASSES[int(proba.argmax())]
    return {"id": prediction_id, "prediction": label, "confidence": float(proba.max()),
            "model_version": "bare", "variant": None}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
