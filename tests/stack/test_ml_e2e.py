"""The instrumented example service, under requests, seen through the real backends' APIs.

Starts ``examples/classifier_service`` with uvicorn, exporting OTLP to the local stack's
collector, sends a known number of predictions, labels and generations, and then asks
Prometheus, Jaeger and Loki what arrived. The model version is unique per run, so every count
is exactly this run's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from tests.stack.backends import Backends, poll

pytestmark = pytest.mark.e2e

N_PREDICT = 120  # above the drift tracker's min_samples (100), so drift scores are exported
N_LABELLED = 30
N_GENERATE = 5
_DATA = load_breast_cancer()  # bundled with scikit-learn; loaded once for the whole module


@dataclass
class Run:
    version: str
    service: str
    url: str
    predictions: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def run(backends: Backends, repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    version = f"e2e-{uuid.uuid4().hex[:8]}"
    service = f"otel-ml-e2e-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    env = {**os.environ, "MODEL_VERSION": version, "OTEL_SERVICE_NAME": service,
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{backends.urls.otlp_grpc}",
           "OTEL_METRIC_EXPORT_INTERVAL": "1000", "OTEL_BSP_SCHEDULE_DELAY": "200",
           "OTEL_BLRP_SCHEDULE_DELAY": "200", "DRIFT_WINDOW_S": "60"}
    log = (tmp_path_factory.mktemp("svc") / "service.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "examples.classifier_service.app:app", "--host", "127.0.0.1",
         "--port", str(port)], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"example service exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        poll(healthy, "example service /healthz", timeout=120, interval=0.5)
        r = Run(version, service, url)
        rows = _DATA.data
        for i in range(N_PREDICT):
            status, body = _post(f"{url}/predict", {"features": [float(v) for v in rows[i]], "id": f"{version}-{i}"})
            assert status == 200, body
            r.predictions.append(json.loads(body))
        for i in range(N_LABELLED):
            actual = _actual(i)
            assert _post(f"{url}/outcome", {"id": f"{version}-{i}", "actual": actual})[0] == 200
        status, _ = _post(f"{url}/predict", {"features": [1.0, 2.0]})  # wrong length: rejected, no inference
        assert status == 422
        r.rejected = 1
        for _ in range(N_GENERATE):
            assert _post(f"{url}/generate", {"prompt": "what is drift", "max_tokens": 8})[0] == 200
        yield r
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _value(result: list[dict[str, Any]]) -> float:
    return sum(float(s["value"][1]) for s in result)


def test_prometheus_counts_equal_what_was_sent(backends: Backends, run: Run) -> None:
    """Latency, confidence and class counts in Prometheus equal the predictions sent, per version."""
    sel = f'ml_model_name="breast-cancer-classifier",ml_model_version="{run.version}"'

    def count(expr: str) -> float | None:
        got = backends.prom_query(expr)
        return _value(got) if got and _value(got) >= N_PREDICT else None

    assert poll(lambda: count(f"sum(ml_inference_duration_seconds_count{{{sel}}})"),
                "inference count", timeout=90) == N_PREDICT
    assert poll(lambda: count(f"sum(ml_prediction_confidence_count{{{sel}}})"),
                "confidence count", timeout=60) == N_PREDICT
    by_class = backends.wait_prom(f"sum by (ml_prediction_class) (ml_predictions_total{{{sel}}})")
    sent: dict[str, int] = {}
    for p in run.predictions:
        sent[p["prediction"]] = sent.get(p["prediction"], 0) + 1
    got = {s["metric"]["ml_prediction_class"]: int(float(s["value"][1])) for s in by_class}
    assert got == sent
    series = backends.prom_query(f"ml_inference_duration_seconds_bucket{{{sel}}}")
    assert series and all(s["metric"]["service_name"] == run.service for s in series)


def test_outcomes_and_quality_reach_prometheus(backends: Backends, run: Run) -> None:
    """Delayed labels arrive as predicted x actual counters whose total is the labels posted."""
    sel = f'ml_model_version="{run.version}"'
    total = poll(lambda: (v := _value(backends.prom_query(f"sum(ml_outcomes_total{{{sel}}})"))) >= N_LABELLED and v,
                 "outcome counters", timeout=90)
    assert total == N_LABELLED
    agree = sum(1 for i, p in enumerate(run.predictions[:N_LABELLED]) if p["prediction"] == _actual(i))
    accuracy = backends.wait_prom(f'ml_quality_score_ratio{{{sel},ml_quality_metric="accuracy"}}')
    assert float(accuracy[0]["value"][1]) == pytest.approx(agree / N_LABELLED)


def _actual(i: int) -> str:
    return str(_DATA.target_names[_DATA.target[i]])


def test_drift_and_bin_counts_reach_prometheus(backends: Backends, run: Run) -> None:
    """Per-feature bin counters add up to the rows served; drift scores are exported per feature."""
    sel = f'ml_model_version="{run.version}",ml_feature_name="mean_radius"'
    total = poll(lambda: (v := _value(backends.prom_query(f"sum(ml_feature_bin_count_total{{{sel}}})")))
                 >= N_PREDICT and v, "bin counts", timeout=90)
    assert total == N_PREDICT
    scores = backends.wait_prom(f'ml_drift_score_ratio{{{sel}}}')
    assert {s["metric"]["ml_drift_method"] for s in scores} >= {"psi"}


def test_exemplar_trace_in_jaeger_has_inference_under_http_span(backends: Backends, run: Run) -> None:
    """A latency exemplar's trace id resolves in Jaeger to the HTTP span with the inference span under it."""
    sel = f'ml_model_version="{run.version}"'

    def trace_ids() -> list[str]:
        out = []
        for series in backends.prom_exemplars(f"ml_inference_duration_seconds_bucket{{{sel}}}"):
            for ex in series.get("exemplars", []):
                tid = ex["labels"].get("trace_id")
                if tid:
                    out.append(tid)
        return out

    ids = poll(trace_ids, "exemplars with trace ids", timeout=90)
    trace = backends.wait_trace(ids[0], timeout=90)
    spans = {s["spanID"]: s for s in trace["spans"]}
    inference = [s for s in spans.values() if s["operationName"] == "inference breast-cancer-classifier"]
    assert len(inference) == 1
    parents = [ref["spanID"] for ref in inference[0]["references"] if ref["refType"] == "CHILD_OF"]
    assert parents, "inference span has no parent"
    http = spans[parents[0]]
    assert "POST /predict" in http["operationName"]
    tags = {t["key"]: t["value"] for t in inference[0]["tags"]}
    assert tags["ml.model.version"] == run.version
    assert "ml.features" not in tags


def test_logs_of_the_trace_are_in_loki(backends: Backends, run: Run) -> None:
    """Loki returns the service's log lines of one prediction's trace, by trace id."""
    sel = f'ml_model_version="{run.version}"'
    ids = poll(lambda: [ex["labels"]["trace_id"] for s in backends.prom_exemplars(
        f"ml_inference_duration_seconds_bucket{{{sel}}}") for ex in s.get("exemplars", [])],
        "exemplar trace ids", timeout=90)
    trace_id = ids[0]
    streams = backends.wait_logs(f'{{service_name="{run.service}"}} | trace_id="{trace_id}"', timeout=90)
    lines = [v[1] for s in streams for v in s["values"]]
    assert any(line.startswith("predicted ") for line in lines), lines


def test_genai_metrics_reach_prometheus(backends: Backends, run: Run) -> None:
    """Streamed generations appear as GenAI semconv histograms with one count per request."""
    sel = 'ml_model_name="tiny-llm",service_name="' + run.service + '"'
    ttft = poll(lambda: (v := _value(backends.prom_query(
        f"sum(gen_ai_server_time_to_first_token_seconds_count{{{sel}}})"))) >= N_GENERATE and v,
        "TTFT histogram", timeout=90)
    assert ttft == N_GENERATE
    tokens = backends.wait_prom(
        f'sum(gen_ai_client_token_usage_sum{{{sel},gen_ai_token_type="output"}})')
    assert _value(tokens) == N_GENERATE * 8


def test_explain_follows_a_prediction_across_jaeger_loki_and_prometheus(
        backends: Backends, run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """`otel-ml explain <prediction id>`: the span tree with the inference under the HTTP span, the
    prediction's and its outcome's log lines, the model version; a trace id works as well."""
    from otel_ml.cli import main

    pid = f"{run.version}-0"
    args = ["--jaeger", backends.urls.jaeger, "--loki", backends.urls.loki, "--prometheus", backends.urls.prometheus,
            "--lookback", "1h", "--json"]

    def explained() -> dict[str, Any] | None:
        if main(["explain", pid, *args]) != 0:
            capsys.readouterr()
            return None
        got: dict[str, Any] = json.loads(capsys.readouterr().out)
        return got if len(got["logs"]) >= 2 else None  # the outcome's line arrives later

    report = poll(explained, f"explain {pid}", timeout=90)
    assert report["inference"]["ml.prediction.id"] == pid
    assert report["inference"]["ml.model.version"] == run.version
    lines = [entry["line"] for entry in report["logs"]]
    assert any(line.startswith("predicted ") and line.endswith(pid) for line in lines), lines
    assert any(line.startswith("outcome ") and line.endswith(pid) for line in lines), lines
    assert main(["explain", report["trace_id"], *args]) == 0
    assert json.loads(capsys.readouterr().out)["trace_id"] == report["trace_id"]
    text_args = [a for a in args if a != "--json"]
    assert main(["explain", pid, *text_args]) == 0
    text = capsys.readouterr().out
    assert "inference " in text and f"version {run.version}" in text
    assert "└─" in text and f"ml.prediction.id={pid}" in text
    assert main(["explain", "no-such-prediction", *args]) == 1
    capsys.readouterr()
    assert main(["explain", pid, "--jaeger", "http://127.0.0.1:9", "--lookback", "1h"]) == 2
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
