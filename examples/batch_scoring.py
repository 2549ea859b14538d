"""A batch scoring job with delayed labels: score today's file in chunks, join the labels when they come.

    python examples/batch_scoring.py                          # OTLP to localhost:4317 (otel-ml stack up)
    OTEL_ML_EXPORTER=console python examples/batch_scoring.py # print the telemetry instead
    python examples/batch_scoring.py --batch-id 2026-11-23 --chunk 100 --labels-delay 2

Each chunk is one inference of ``batch-fraud-scorer`` (``ml.inference.batch.size`` = its rows),
with one prediction id per row - ``<batch id>:<row>`` - so that labels arriving later (here after
``--labels-delay`` seconds, in production from tomorrow's feedback table) join row by row:
``ml_outcomes_total``, ``ml_quality_score_ratio{ml_quality_metric="accuracy"}`` and the rest. The
job also checks the batch's drift against the training data's profile, and prints the monitor's
accuracy beside scikit-learn's on the same rows.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml

CLASSES = ["malignant", "benign"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--batch-id", default=time.strftime("%Y-%m-%d"), help="prefix of the prediction ids")
    p.add_argument("--chunk", type=int, default=100, help="rows per inference (default 100)")
    p.add_argument("--labels-delay", type=float, default=2.0, help="seconds until the labels arrive (default 2)")
    p.add_argument("--version", default="1", help="model version (default 1)")
    p.add_argument("--service", default="batch-scoring", help="service.name (default batch-scoring)")
    a = p.parse_args()

    telemetry = otel_ml.configure(service_name=a.service, export_interval_ms=1000)
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    x_train, x_batch, y_train, y_batch = train_test_split(data.data, data.target, test_size=0.4, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_train, y_train)
    profile = otel_ml.ReferenceProfile.from_data(x_train, feature_names=names)
    monitor = otel_ml.ModelMonitor("batch-fraud-scorer", version=a.version, classes=CLASSES,
                                   positive_class="benign", reference=profile)

    ids = [f"{a.batch_id}:{i}" for i in range(len(x_batch))]
    predicted: list[int] = []
    for start in range(0, len(x_batch), a.chunk):
        rows = x_batch[start:start + a.chunk]
        with monitor.inference(features=rows, prediction_ids=ids[start:start + a.chunk]) as inf:
            proba = model.predict_proba(rows)
            top = proba.argmax(axis=1)
            inf.record(predictions=[CLASSES[i] for i in top], confidence=proba.max(axis=1), score=proba[:, 1])
        predicted.extend(int(i) for i in top)

    drift = profile.compare(x_batch)  # the whole batch as one window, by the monitor's own rule
    drifting = sorted(k for k, r in drift.items() if r.status.name == "DRIFT")

    time.sleep(a.labels_delay)  # ... the labels arrive
    monitor.record_outcomes(ids, [CLASSES[int(y)] for y in y_batch])
    quality = monitor.quality()
    telemetry.force_flush()
    time.sleep(1.5)  # one more metric export, so the last quality scores are sent
    telemetry.shutdown()
    print(json.dumps({"batch_id": a.batch_id, "rows": len(x_batch), "chunks": -(-len(x_batch) // a.chunk),
                      "accuracy_monitor": quality.accuracy,
                      "accuracy_sklearn": float(accuracy_score(y_batch, np.asarray(predicted))),
                      "drifting_features": drifting}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
