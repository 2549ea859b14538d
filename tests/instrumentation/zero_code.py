"""Run a script under ``opentelemetry-instrument`` with console exporters and read back what it exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Exported:
    spans: list[dict[str, Any]]
    metrics: list[dict[str, Any]]  # one entry per data point: name, unit, scope, attributes, point
    stderr: str

    def points(self, name: str, **attributes: str) -> list[dict[str, Any]]:
        return [m for m in self.metrics if m["name"] == name
                and all(m["attributes"].get(k) == v for k, v in attributes.items())]

    def final(self, name: str, **attributes: str) -> list[dict[str, Any]]:
        """The points of the last export only (cumulative metrics are exported repeatedly)."""
        last = max((m["export"] for m in self.metrics), default=-1)
        return [m for m in self.points(name, **attributes) if m["export"] == last]


def run(code: str, env: dict[str, str] | None = None, timeout: float = 240) -> Exported:
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
    full_env.update({"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console",
                     "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "zero-code-test",
                     "OTEL_METRIC_EXPORT_INTERVAL": "600000", "PYTHONPATH": str(ROOT)})
    full_env.update(env or {})
    proc = subprocess.run([str(launcher), sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise AssertionError(f"instrumented script failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    spans, metrics = [], []
    decoder, text, i, export = json.JSONDecoder(), proc.stdout, 0, 0
    while True:
        start = text.find("{", i)
        if start < 0:
            break
        doc, i = decoder.raw_decode(text, start)
        if "resource_metrics" in doc:
            for rm in doc["resource_metrics"]:
                for sm in rm["scope_metrics"]:
                    for m in sm["metrics"]:
                        for p in m["data"]["data_points"]:
                            metrics.append({"name": m["name"], "unit": m.get("unit", ""), "scope": sm["scope"]["name"],
                                            "attributes": p.get("attributes", {}), "point": p, "export": export,
                                            "resource": rm["resource"]["attributes"]})
            export += 1
        elif "context" in doc and "name" in doc:
            spans.append(doc)
    return Exported(spans, metrics, proc.stderr)
