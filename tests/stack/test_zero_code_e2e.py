"""An unmodified FastAPI + scikit-learn service under opentelemetry-instrument, through the real stack,
with two pre-forked or spawned workers: every prediction counted once in Prometheus under the model's
identity, one instance per worker, inference spans under HTTP spans in Jaeger."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.stack.backends import Backends, get_json, poll

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, rows: int) -> int:
    import json
    import urllib.request

    body = json.dumps({"rows": [[5.9, 3.0, 5.1, 1.8]] * rows}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


SERVERS = {
    "uvicorn-workers": lambda port: [str(BIN / "uvicorn"), "examples.zero_code.app:app", "--host", "127.0.0.1",
                                     "--port", str(port), "--workers", "2"],
    "gunicorn-preload": lambda port: [str(BIN / "gunicorn"), "examples.zero_code.app:app", "--preload", "-w", "2",
                                      "-k", "uvicorn_worker.UvicornWorker", "-b", f"127.0.0.1:{port}"],
}


@pytest.fixture(params=sorted(SERVERS))
def service(request: pytest.FixtureRequest, backends: Backends, tmp_path: Path) -> Iterator[dict[str, Any]]:
    version = f"zc-{uuid.uuid4().hex[:8]}"
    name = f"otel-ml-zero-code-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"OTEL_SERVICE_NAME": name, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{backends.urls.otlp_grpc}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_METRIC_EXPORT_INTERVAL": "1000",
                "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_LOGS_EXPORTER": "none",
                "OTEL_ML_MODEL_NAME": "iris", "OTEL_ML_MODEL_VERSION": version,
                "OTEL_ML_CLASS_NAMES": "0=setosa,1=versicolor,2=virginica"})
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([str(BIN / "opentelemetry-instrument"), *SERVERS[request.param](port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{request.param} exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
        try:
            return get_json(f"{url}/healthz", timeout=2) is not None
        except OSError:
            return False

    try:
        poll(healthy, f"{request.param} /healthz", timeout=120, interval=0.5)
        yield {"url": url, "service": name, "version": version, "server": request.param}
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


def _query(backends: Backends, expr: str) -> list[dict[str, Any]]:
    return list(get_json(f"{backends.urls.prometheus}/api/v1/query", {"query": expr})["data"]["result"])


def test_two_workers_each_count_their_own_predictions(service: dict[str, Any], backends: Backends) -> None:
    """Concurrent requests reach both workers; Prometheus counts every call once, by instance, model and class."""
    sel = f'service_name="{service["service"]}", ml_model_name="iris", ml_model_version="{service["version"]}"'
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        def instances() -> int | None:
            nonlocal sent
            statuses = list(pool.map(lambda _: _post(f"{service['url']}/predict", 2), range(40)))
            assert statuses == [200] * 40
            sent += 40
            found = _query(backends, f"count(count by (instance) (ml_inference_duration_seconds_count{{{sel}}}))")
            return 2 if found and float(found[0]["value"][1]) == 2 else None

        poll(instances, "inferences from both workers in Prometheus", timeout=90, interval=1)

    def counted() -> float | None:
        got = _query(backends, f"sum(ml_inference_duration_seconds_count{{{sel}}})")
        return float(got[0]["value"][1]) if got and float(got[0]["value"][1]) == sent else None

    poll(counted, f"{sent} inferences counted", timeout=30, interval=1)
    rows = _query(backends, f"sum(ml_inference_batch_size_sum{{{sel}}})")
    assert float(rows[0]["value"][1]) == 2 * sent
    classes = {s["metric"]["ml_prediction_class"] for s in _query(backends, f"ml_predictions_total{{{sel}}}")}
    assert classes == {"virginica"}
    conf = _query(backends, f"sum(ml_prediction_confidence_count{{{sel}}})")
    assert float(conf[0]["value"][1]) == 2 * sent


def test_inference_spans_under_http_spans_in_jaeger(service: dict[str, Any], backends: Backends) -> None:
    """Jaeger has the request's trace: POST /predict (server) with the inference iris span as its child."""
    assert _post(f"{service['url']}/predict", 1) == 200

    def trace() -> dict[str, Any] | None:
        got = get_json(f"{backends.urls.jaeger}/api/traces", {"service": service["service"],
                                                               "operation": "inference iris", "limit": "5"})
        return got["data"][0] if got and got.get("data") else None

    found = poll(trace, "a trace with the inference span in Jaeger", timeout=60, interval=1)
    spans = {s["spanID"]: s for s in found["spans"]}
    inference = next(s for s in found["spans"] if s["operationName"] == "inference iris")
    parents = [spans[r["spanID"]] for r in inference["references"] if r["refType"] == "CHILD_OF"]
    assert parents and parents[0]["operationName"].startswith("POST /predict")
    kinds = {t["key"]: t["value"] for t in parents[0]["tags"]}
    assert kinds.get("span.kind") == "server"
