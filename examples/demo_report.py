"""Print what the demo load produced, read back from Prometheus, Jaeger and Loki.

    python examples/demo_report.py [--prometheus URL] [--jaeger URL] [--loki URL]
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
import urllib.request
from typing import Any

MODEL = 'ml_model_name="breast-cancer-classifier"'
QUERIES = [
    ("requests/s (1m)", f"sum(rate(ml_inference_duration_seconds_count{{{MODEL}}}[1m]))"),
    ("p99 latency s (5m)",
     f"histogram_quantile(0.99, sum by (le) (rate(ml_inference_duration_seconds_bucket{{{MODEL}}}[5m])))"),
    ("errors (total)", f'sum(ml_inference_duration_seconds_count{{{MODEL},error_type!=""}}) or vector(0)'),
    ("mean confidence (5m)", f"sum(rate(ml_prediction_confidence_sum{{{MODEL}}}[5m])) / "
                             f"sum(rate(ml_prediction_confidence_count{{{MODEL}}}[5m]))"),
    ("top drifting features (PSI)", f'topk(3, ml_drift_score_ratio{{{MODEL},ml_drift_method="psi"}})'),
    ("accuracy (delayed labels)", f'ml_quality_score_ratio{{{MODEL},ml_quality_metric="accuracy"}}'),
    ("LLM TTFT p90 s (5m)", "histogram_quantile(0.9, sum by (le) "
                            "(rate(gen_ai_server_time_to_first_token_seconds_bucket[5m])))"),
    ("telemetry dropped by reason", "sum by (otel_ml_reason) (otel_ml_dropped_total)"),
]


def get(url: str, params: dict[str, str]) -> Any:
    with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(params)}", timeout=10) as resp:
        return json.loads(resp.read())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--prometheus", default="http://127.0.0.1:9090")
    p.add_argument("--jaeger", default="http://127.0.0.1:16686")
    p.add_argument("--loki", default="http://127.0.0.1:3100")
    a = p.parse_args()
    print("== Prometheus")
    for title, q in QUERIES:
        res = get(f"{a.prometheus}/api/v1/query", {"query": q})["data"]["result"]
        shown = ", ".join(
            f"{' '.join(v for k, v in s['metric'].items() if k.startswith('ml_feature') or k == 'otel_ml_reason')}"
            f"={float(s['value'][1]):.4g}".lstrip() for s in res[:5]) or "no data"
        print(f"  {title:30s} {shown}")
    now = time.time()
    ex = get(f"{a.prometheus}/api/v1/query_exemplars", {
        "query": f"ml_inference_duration_seconds_bucket{{{MODEL}}}", "start": str(now - 900), "end": str(now)})
    exemplars = [e for s in ex["data"] or [] for e in s["exemplars"]]
    if not exemplars:
        print("  no exemplars yet")
        return 0
    slowest = max(exemplars, key=lambda e: float(e["value"]))
    trace_id = slowest["labels"]["trace_id"]
    print(f"== Slowest exemplar: {float(slowest['value']) * 1000:.1f} ms, trace {trace_id}")
    trace = get(f"{a.jaeger}/api/traces/{trace_id}", {}).get("data") or []
    if trace:
        for s in sorted(trace[0]["spans"], key=lambda s: s["startTime"]):
            print(f"  Jaeger span  {s['operationName']:40s} {s['duration'] / 1000:8.2f} ms")
    print(f"  Jaeger: {a.jaeger}/api/traces/{trace_id}")
    q = f'{{service_name="classifier-service"}} | trace_id="{trace_id}"'
    logs = get(f"{a.loki}/loki/api/v1/query_range", {"query": q, "start": str(int((now - 900) * 1e9))})
    for stream in logs["data"]["result"]:
        for _, line in stream["values"]:
            print(f"  Loki log     {line}")
    print(f"  Loki: {q}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
