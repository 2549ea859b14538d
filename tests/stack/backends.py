"""Clients for the local stack's backends, for end-to-end tests (ours and the ML e2e suites).

Everything is plain HTTP against 127.0.0.1 with the ports the committed configs use; override a
base URL with the matching environment variable (e.g. to point tests at compose.yaml's stack).
All polling is bounded: ``poll`` gives up after ``timeout`` seconds with the last value seen.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class StackURLs:
    otlp_grpc: str = os.environ.get("OTEL_ML_TEST_OTLP_GRPC", "127.0.0.1:4317")
    otlp_http: str = os.environ.get("OTEL_ML_TEST_OTLP_HTTP", "http://127.0.0.1:4318")
    prometheus: str = os.environ.get("OTEL_ML_TEST_PROMETHEUS", "http://127.0.0.1:9090")
    alertmanager: str = os.environ.get("OTEL_ML_TEST_ALERTMANAGER", "http://127.0.0.1:9093")
    jaeger: str = os.environ.get("OTEL_ML_TEST_JAEGER", "http://127.0.0.1:16686")
    loki: str = os.environ.get("OTEL_ML_TEST_LOKI", "http://127.0.0.1:3100")


def get_json(url: str, params: dict[str, str] | None = None, timeout: float = 5.0) -> Any:
    """GET ``url`` and decode JSON; a 404 returns None (Jaeger's answer for a trace not yet stored)."""
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def poll(fetch: Callable[[], T | None], what: str, timeout: float = 60.0, interval: float = 1.0) -> T:
    """Call ``fetch`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = fetch()
            if last:
                return last
        except (OSError, ValueError) as exc:  # backend briefly unavailable or mid-restart
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r} {last_error or ''}")


class Backends:
    """Query helpers, one method per question a test asks a backend."""

    def __init__(self, urls: StackURLs | None = None) -> None:
        self.urls = urls or StackURLs()

    # Prometheus
    def prom_query(self, expr: str) -> list[dict[str, Any]]:
        body = get_json(f"{self.urls.prometheus}/api/v1/query", {"query": expr})
        return list(body["data"]["result"])

    def prom_exemplars(self, expr: str, since_s: float = 600.0) -> list[dict[str, Any]]:
        now = time.time()
        body = get_json(
            f"{self.urls.prometheus}/api/v1/query_exemplars",
            {"query": expr, "start": f"{now - since_s:.3f}", "end": f"{now + 60:.3f}"},
        )
        return list(body["data"] or [])

    def wait_prom(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        return poll(lambda: self.prom_query(expr), f"Prometheus result for {expr}", timeout)

    # Jaeger
    def jaeger_trace(self, trace_id: str) -> dict[str, Any] | None:
        body = get_json(f"{self.urls.jaeger}/api/traces/{trace_id}")
        data = (body or {}).get("data") or []
        return dict(data[0]) if data else None

    def wait_trace(self, trace_id: str, timeout: float = 60.0) -> dict[str, Any]:
        return poll(lambda: self.jaeger_trace(trace_id), f"trace {trace_id} in Jaeger", timeout)

    # Loki
    def loki_query_range(self, logql: str, since_s: float = 600.0) -> list[dict[str, Any]]:
        now_ns = time.time_ns()
        body = get_json(
            f"{self.urls.loki}/loki/api/v1/query_range",
            {"query": logql, "start": str(now_ns - int(since_s * 1e9)), "end": str(now_ns + int(60e9)),
             "limit": "100"},
        )
        return list(body["data"]["result"])

    def wait_logs(self, logql: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        return poll(lambda: self.loki_query_range(logql), f"Loki streams for {logql}", timeout)

    # Alertmanager
    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        filters = [f'{k}="{v}"' for k, v in labels.items()]
        url = f"{self.urls.alertmanager}/api/v2/alerts"
        if filters:
            url += "?" + "&".join(f"filter={urllib.parse.quote(f)}" for f in filters)
        return list(get_json(url) or [])

    def wait_alert(self, timeout: float = 60.0, **labels: str) -> list[dict[str, Any]]:
        return poll(lambda: self.alerts(**labels), f"alert {labels} in Alertmanager", timeout)
