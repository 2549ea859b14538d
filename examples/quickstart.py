"""The smallest instrumented model: no collector needed, telemetry printed to the console.

    OTEL_ML_EXPORTER=console python examples/quickstart.py     # print spans, metrics, logs
    python examples/quickstart.py                              # OTLP to localhost:4317 (a collector)
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import otel_ml

telemetry = otel_ml.configure(service_name="quickstart", export_interval_ms=1000)
logging.getLogger("quickstart").setLevel(logging.INFO)

iris = load_iris()
model = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
monitor = otel_ml.ModelMonitor("iris", version="1", classes=list(iris.target_names))


@monitor.observe(outputs=lambda proba: {"predictions": [iris.target_names[i] for i in proba.argmax(1)],
                                        "confidence": proba.max(1)})
def predict(rows: np.ndarray) -> np.ndarray:
    return model.predict_proba(rows)


for start in range(0, 150, 10):
    predict(iris.data[start:start + 10])
logging.getLogger("quickstart").info("scored 150 rows")
telemetry.force_flush()
telemetry.shutdown()
