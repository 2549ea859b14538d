"""examples/batch_scoring.py, run as its docstring says, against the real stack: every chunk is one
inference, every row's label joins by its batch id, and Prometheus's accuracy is scikit-learn's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.stack.backends import Backends, get_json, poll

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _value(backends: Backends, expr: str) -> float | None:
    got: Any = get_json(f"{backends.urls.prometheus}/api/v1/query", {"query": expr})
    rows = got["data"]["result"] if got else []
    return float(rows[0]["value"][1]) if rows else None


def test_batch_job_joins_delayed_labels_by_batch_id(backends: Backends) -> None:
    service = f"otel-ml-batch-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{backends.urls.otlp_grpc}", "OTEL_ML_EXPORTER": "otlp"}
    proc = subprocess.run([sys.executable, "examples/batch_scoring.py", "--service", service, "--batch-id",
                           "b-2026-11-23", "--labels-delay", "1"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 228 and summary["chunks"] == 3
    assert summary["accuracy_monitor"] == pytest.approx(summary["accuracy_sklearn"])
    sel = f'service_name="{service}", ml_model_name="batch-fraud-scorer"'

    def outcomes() -> float | None:
        v = _value(backends, f"sum(ml_outcomes_total{{{sel}}})")
        return v if v == 228 else None

    poll(outcomes, "228 joined outcomes in Prometheus", timeout=60, interval=1)
    assert _value(backends, f"sum(ml_inference_duration_seconds_count{{{sel}}})") == 3
    assert _value(backends, f"sum(ml_inference_batch_size_sum{{{sel}}})") == 228
    accuracy = _value(backends, f'max(ml_quality_score_ratio{{{sel}, ml_quality_metric="accuracy"}})')
    assert accuracy == pytest.approx(summary["accuracy_sklearn"])
