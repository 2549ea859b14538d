"""A FastAPI + scikit-learn service with no observability code at all - the zero-code example.

Run it under OpenTelemetry's launcher; otel_ml's scikit-learn instrumentor (an entry point) makes
every prediction an inference of the model, under the request's HTTP span::

    pip install 'otel-ml[sklearn,fastapi,auto]'
    OTEL_SERVICE_NAME=iris-api OTEL_ML_MODEL_NAME=iris OTEL_ML_CLASS_NAMES=0=setosa,1=versicolor,2=virginica \\
        opentelemetry-instrument uvicorn examples.zero_code.app:app --port 8001

Nothing below imports otel_ml or OpenTelemetry.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

x, y = load_iris(return_X_y=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)

app = FastAPI(title="zero-code iris classifier")


class Rows(BaseModel):
    rows: list[list[float]]


@app.post("/predict")
def predict(req: Rows) -> dict[str, Any]:
    """A plain def endpoint: FastAPI runs it in its thread pool."""
    proba = model.predict_proba(req.rows)
    return {"classes": proba.argmax(axis=1).tolist(), "confidence": proba.max(axis=1).tolist()}


@app.post("/predict-async")
async def predict_async(req: Rows) -> dict[str, Any]:
    return {"classes": model.predict(req.rows).tolist()}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
