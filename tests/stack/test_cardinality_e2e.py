"""A million distinct values through every capped metric attribute, through the real pipeline.

One interpreter exports over OTLP to the local collector (Prometheus exporter -> Prometheus) and
drives, for each attribute capped in ``otel_ml/_internal/names.py``, 1 000 000 distinct values:

* ``ml.prediction.class``: batches of distinct labels through ``inf.record(predictions=...)``;
* ``ml.model.method`` and ``error.type``: one ``monitor.inference(method=...)`` per value, one
  raising an exception class renamed per call;
* ``ml.model.name``, ``ml.model.version``, ``ml.model.variant``: the realistic path, a process
  creating a monitor per value (each with a distinct name, version and variant), keeping the
  latest 1 000 alive, so every export holds up to 1 000 live identities (a million monitors: about
  70 s on 2 busy cores). ``OTEL_ML_TEST_CARDINALITY_MONITORS`` and ``OTEL_ML_TEST_CARDINALITY_VALUES``
  (both 1 000 000 by default) make it shorter for a local run.

Prometheus must then hold at most cap + 1 values of each attribute for the test's service (the
version and variant caps are per model name, so they are counted under the overflow name), each
overflow must be counted in ``otel_ml_dropped_total`` with its reason, and the driving process's
resident memory must not grow with the number of monitors it made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from otel_ml._internal import names
from tests.stack.backends import Backends, get_json, poll

pytestmark = pytest.mark.e2e

N = int(os.environ.get("OTEL_ML_TEST_CARDINALITY_VALUES", "1000000"))
MONITORS = int(os.environ.get("OTEL_ML_TEST_CARDINALITY_MONITORS", "1000000"))

SCRIPT = """
import collections, json, sys, time
import numpy as np
from opentelemetry import trace
import otel_ml

service, n, monitors = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
telemetry = otel_ml.configure(service_name=service, export_interval_ms=2000)
no_spans = trace.NoOpTracerProvider()  # metrics are under test; a million spans are not
timings = {}

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

t0 = time.perf_counter()
classes = otel_ml.ModelMonitor("card-classes", tracer_provider=no_spans)
batch = 20_000
for start in range(0, n, batch):
    with classes.inference() as inf:
        inf.record(predictions=np.arange(start, min(n, start + batch)).astype(str))
timings["class_s"] = time.perf_counter() - t0

t0 = time.perf_counter()
calls = otel_ml.ModelMonitor("card-calls", tracer_provider=no_spans)
for i in range(n):
    with calls.inference(method=f"m{i}"):
        pass
timings["method_s"] = time.perf_counter() - t0

class Boom(Exception):
    pass

t0 = time.perf_counter()
for i in range(n):
    Boom.__qualname__ = f"Boom{i}"
    try:
        with calls.inference():
            raise Boom
    except Boom:
        pass
timings["error_type_s"] = time.perf_counter() - t0

t0 = time.perf_counter()
live = collections.deque(maxlen=1000)
rss = {"start": rss_mb()}
for i in range(monitors):
    m = otel_ml.ModelMonitor(f"card-model-{i}", version=f"v{i}", variant=f"arm-{i}", tracer_provider=no_spans)
    with m.inference() as inf:
        inf.record(predictions="a")
    live.append(m)
    if i == monitors // 10:
        rss["tenth"] = rss_mb()
rss["end"] = rss_mb()
timings["identity_s"] = time.perf_counter() - t0
time.sleep(3)  # one more export with the last 1 000 monitors alive
telemetry.force_flush()
telemetry.shutdown()
print(json.dumps({"timings": timings, "rss_mb": rss}))
"""


def _query(backends: Backends, expr: str) -> list[dict[str, Any]]:
    got = get_json(f"{backends.urls.prometheus}/api/v1/query", {"query": expr})
    return list(got["data"]["result"]) if got and got.get("status") == "success" else []


def _scalar(backends: Backends, expr: str) -> float | None:
    got = _query(backends, expr)
    return float(got[0]["value"][1]) if got else None


def test_a_million_values_per_attribute_stay_within_the_caps(backends: Backends, repo: Path) -> None:
    service = f"otel-ml-e2e-cardinality-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{backends.urls.otlp_grpc}",
           "OTEL_ML_EXPORTER": "otlp"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), service, str(N), str(MONITORS)], cwd=repo,
                         env=env, check=True, timeout=1800, capture_output=True, text=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"driven in {time.perf_counter() - started:.1f} s: {report}")
    svc = f'service_name="{service}"'

    def dropped(reason: str) -> float | None:
        return _scalar(backends, f'sum(otel_ml_dropped_total{{{svc}, otel_ml_reason="{reason}"}})')

    # The name cap counts every monitor of the process: card-classes and card-calls took two places.
    overflow_names = MONITORS - (names.MAX_MODEL_NAMES - 2)
    expected_drops = {
        "label_cardinality_cap": N - 50,  # ModelMonitor's default max_classes
        "method_cardinality_cap": N - names.MAX_METHODS,
        "error_type_cardinality_cap": N - names.MAX_ERROR_TYPES,
        "model_name_cardinality_cap": overflow_names,
        "model_version_cardinality_cap": overflow_names - names.MAX_MODEL_VERSIONS,
        "model_variant_cardinality_cap": overflow_names - names.MAX_MODEL_VARIANTS,
    }
    for reason, n in expected_drops.items():
        poll(lambda reason=reason, n=n: dropped(reason) == n or None,
             f"otel_ml_dropped_total{{otel_ml_reason={reason}}} == {n}", timeout=90)

    other = f'ml_model_name="{names.OVERFLOW_VALUE}"'
    calls = f'{svc}, ml_model_name="card-calls"'
    checks = [
        ("ml_prediction_class", f'ml_predictions_total{{{svc}, ml_model_name="card-classes"}}', 50),
        ("ml_model_method", f'ml_inference_duration_seconds_count{{{calls}, ml_model_method!=""}}',
         names.MAX_METHODS),
        ("error_type", f'ml_inference_duration_seconds_count{{{calls}, error_type!=""}}',
         names.MAX_ERROR_TYPES),
        ("ml_model_name", f"ml_inference_duration_seconds_count{{{svc}}}", names.MAX_MODEL_NAMES),
        ("ml_model_version", f"ml_inference_duration_seconds_count{{{svc}, {other}}}", names.MAX_MODEL_VERSIONS),
        ("ml_model_variant", f"ml_inference_duration_seconds_count{{{svc}, {other}}}", names.MAX_MODEL_VARIANTS),
    ]
    for label, selector, cap in checks:
        count = _scalar(backends, f"count(count by ({label}) ({selector}))")
        assert count is not None, f"no series for {selector}"
        assert count <= cap + 1, f"{label}: {count} distinct values in Prometheus for a cap of {cap}"
        values = {s["metric"].get(label) for s in _query(backends, f"count by ({label}) ({selector})")}
        overflow = names.ERROR_TYPE_OVERFLOW if label == "error_type" else names.OVERFLOW_VALUE
        assert overflow in values, f"{label}: no overflow series"
    # Memory: a million monitors made (a thousand alive at a time) cost no more than the first tenth.
    rss = report["rss_mb"]
    assert rss["end"] - rss["tenth"] < 64, rss
