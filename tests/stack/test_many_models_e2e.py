"""Three monitors in one process - a model, its canary variant, a second model - through the real stack.

One interpreter configures OTLP export to the local collector, scores batches with prediction ids
on all three monitors (same reference profile), joins the labels, flushes and exits; Prometheus
must then hold every drift, data-quality and outcome series of each of the three.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.stack.backends import Backends, get_json, poll

pytestmark = pytest.mark.e2e

SCRIPT = """
import sys
import numpy as np
import otel_ml

version = sys.argv[1]
telemetry = otel_ml.configure(service_name="otel-ml-e2e-many", export_interval_ms=1000)
rng = np.random.default_rng(0)
profile = otel_ml.ReferenceProfile.from_data({"x": rng.normal(size=3000), "y": rng.uniform(size=3000)},
                                             predictions=rng.uniform(0.5, 1.0, size=3000))
monitors = [otel_ml.ModelMonitor(name, version=version, variant=variant, reference=profile)
            for name, variant in (("e2e-a", None), ("e2e-a", "canary"), ("e2e-b", None))]
for k, m in enumerate(monitors):
    rows = 150 + 50 * k
    ids = [f"{version}-{k}-{i}" for i in range(rows)]
    x = rng.normal(loc=0.0 if k == 0 else 1.5, size=rows)  # the canary and model b drift
    labels = np.where(x > 0, "up", "down")
    with m.inference(features={"x": x, "y": rng.uniform(size=rows)}, prediction_ids=ids) as inf:
        inf.record(predictions=labels, confidence=rng.uniform(0.5, 1.0, size=rows))
    m.record_outcomes(ids, labels)
telemetry.force_flush()
telemetry.shutdown()
"""


def _query(backends: Backends, expr: str) -> list[dict[str, Any]]:
    got = get_json(f"{backends.urls.prometheus}/api/v1/query", {"query": expr})
    return list(got["data"]["result"]) if got and got.get("status") == "success" else []


def test_three_monitors_reach_prometheus(backends: Backends, repo: Path) -> None:
    """Each of three monitors in one process exports drift status, bin counts, issues and outcomes."""
    version = f"many-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{backends.urls.otlp_grpc}",
           "OTEL_ML_EXPORTER": "otlp"}
    subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), version], cwd=repo, env=env, check=True,
                   timeout=120)
    sel = f'ml_model_version="{version}"'
    expected = {("e2e-a", ""), ("e2e-a", "canary"), ("e2e-b", "")}

    def models(expr: str) -> set[tuple[str, str]] | None:
        found = {(s["metric"]["ml_model_name"], s["metric"].get("ml_model_variant", ""))
                 for s in _query(backends, expr)}
        return found if found == expected else None

    for metric in ("ml_drift_status", "ml_feature_bin_count_total", "ml_data_quality_issues_total",
                   "ml_outcomes_total", "ml_quality_score_ratio", "ml_inference_duration_seconds_count"):
        poll(lambda metric=metric: models(f'count by (ml_model_name, ml_model_variant) ({metric}{{{sel}}})'),
             f"{metric} for all three monitors", timeout=60)
    outcomes = {(s["metric"]["ml_model_name"], s["metric"].get("ml_model_variant", "")): float(s["value"][1])
                for s in _query(backends, f"sum by (ml_model_name, ml_model_variant) (ml_outcomes_total{{{sel}}})")}
    assert outcomes == {("e2e-a", ""): 150.0, ("e2e-a", "canary"): 200.0, ("e2e-b", ""): 250.0}
    status = {(s["metric"]["ml_model_name"], s["metric"].get("ml_model_variant", "")): float(s["value"][1])
              for s in _query(backends, f'ml_drift_status{{{sel}, ml_feature_name="x"}}')}
    assert status[("e2e-a", "")] == 0 and status[("e2e-a", "canary")] == 2 and status[("e2e-b", "")] == 2
