"""``otel-ml explain PREDICTION_ID|TRACE_ID``: follow one prediction across the backends.

The local stack's Jaeger has no web UI (its assets are not in the Go module), so this is how a
user without Docker follows a slow or wrong prediction: from the id a service returned (or a
trace id from an exemplar), it prints

* the **span tree** of its trace from Jaeger (service, operation, duration, the ML attributes,
  errors), found by trace id or by the ``ml.prediction.id`` attribute of the inference span;
* the **model** that served it: name, version, variant, method, predicted class and confidence;
* the **log lines** from Loki that carry the trace id or mention the prediction id (the
  prediction's own, and the outcome's when the service logs the label's arrival);
* the **drift status** of the model's features at the time, from Prometheus
  (``ml_drift_status``: ok / warning / drift / insufficient data) and its latest quality scores.

Exit status: 0 found, 1 no trace with that id in the look-back window, 2 a backend unreachable
or bad arguments (the URL is named).
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from otel_ml._internal.errors import CLIError

TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
ML_KEYS = ("ml.model.name", "ml.model.version", "ml.model.variant", "ml.model.method", "ml.prediction.id",
           "ml.prediction.class", "ml.prediction.confidence", "ml.inference.batch.size", "error.type",
           "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
           "http.route", "http.response.status_code", "http.status_code")
DRIFT_STATUS = {0: "ok", 1: "warning", 2: "DRIFT", -1: "insufficient data"}


def _get(url: str, params: dict[str, str] | None = None, timeout: float = 15) -> Any:
    full = f"{url}?{urllib.parse.urlencode(params)}" if params else url
    try:
        with urllib.request.urlopen(full, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise CLIError(f"{full} answered HTTP {exc.code}: {exc.read().decode(errors='replace')[:200]}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CLIError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None


@dataclass
class Span:
    span_id: str
    parent: str | None
    service: str
    operation: str
    start_us: int
    duration_us: int
    tags: dict[str, Any]
    error: bool
    children: list[Span] = field(default_factory=list)


@dataclass
class Explanation:
    trace_id: str
    spans: list[Span]
    roots: list[Span]
    inference: Span | None
    logs: list[tuple[int, str, str]] = field(default_factory=list)  # (ns, level, line)
    drift: dict[str, str] = field(default_factory=dict)  # feature -> status
    quality: dict[str, float] = field(default_factory=dict)  # metric -> value


def find_trace(jaeger: str, key: str, lookback: str) -> str | None:
    """The trace id of ``key`` (a trace id already, or a prediction id looked up by span attribute)."""
    if TRACE_ID.match(key):
        body = _get(f"{jaeger}/api/traces/{key.lower()}")
        if (body or {}).get("data"):
            return key.lower()
        # 32 hex digits are also what uuid4().hex prediction ids look like: search for it as one.
    services = (_get(f"{jaeger}/api/services") or {}).get("data") or []
    for service in services:
        if service == "jaeger":
            continue
        found = _get(f"{jaeger}/api/traces", {"service": service, "tags": json.dumps({"ml.prediction.id": key}),
                                              "lookback": lookback, "limit": "5"})
        for trace in (found or {}).get("data") or []:
            return str(trace["traceID"])
    return None


def _spans(trace: dict[str, Any]) -> list[Span]:
    processes = trace.get("processes") or {}
    out = []
    for s in trace.get("spans") or []:
        tags = {t["key"]: t.get("value") for t in s.get("tags") or []}
        parent = next((r["spanID"] for r in s.get("references") or [] if r.get("refType") == "CHILD_OF"), None)
        service = (processes.get(s.get("processID")) or {}).get("serviceName", "?")
        error = tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR"
        out.append(Span(s["spanID"], parent, service, s.get("operationName", ""), int(s.get("startTime", 0)),
                        int(s.get("duration", 0)), tags, error))
    return out


def explain(key: str, *, jaeger: str, loki: str, prometheus: str, lookback: str = "24h") -> Explanation | None:
    trace_id = find_trace(jaeger, key, lookback)
    if trace_id is None:
        return None
    body = _get(f"{jaeger}/api/traces/{trace_id}")
    data = (body or {}).get("data") or []
    if not data:
        return None
    spans = _spans(data[0])
    by_id = {s.span_id: s for s in spans}
    roots: list[Span] = []
    for s in sorted(spans, key=lambda s: s.start_us):
        parent = by_id.get(s.parent) if s.parent else None
        (parent.children if parent is not None else roots).append(s)
    inference = next((s for s in spans if "ml.model.name" in s.tags), None)
    result = Explanation(trace_id, spans, roots, inference)
    start_ns = min(s.start_us for s in spans) * 1000
    end_ns = max(s.start_us + s.duration_us for s in spans) * 1000
    services = sorted({s.service for s in spans})
    prediction_id = str(inference.tags["ml.prediction.id"]) if inference and inference.tags.get(
        "ml.prediction.id") else (None if key.lower() == trace_id else key)
    result.logs = _logs(loki, services, trace_id, prediction_id, start_ns, lookback)
    if inference is not None:
        _model_state(prometheus, inference, end_ns / 1e9, result)
    return result


def _logs(loki: str, services: list[str], trace_id: str, prediction_id: str | None, start_ns: int,
          lookback: str) -> list[tuple[int, str, str]]:
    selector = "{service_name=~\"" + "|".join(_logql_regex(s) for s in services) + "\"}"
    queries = [f'{selector} | trace_id="{trace_id}"']
    if prediction_id:
        queries.append(f"{selector} |= {json.dumps(prediction_id)}")
    seconds = _seconds(lookback)
    lines: dict[tuple[int, str], str] = {}
    for query in queries:
        got = _get(f"{loki}/loki/api/v1/query_range", {
            "query": query, "start": str(start_ns - 60 * 10**9), "end": str(start_ns + int(seconds * 1e9)),
            "limit": "200", "direction": "forward"})
        for stream in ((got or {}).get("data") or {}).get("result") or []:
            level = stream.get("stream", {}).get("severity_text") or stream.get("stream", {}).get("detected_level", "")
            for ts, line in stream.get("values") or []:
                lines[(int(ts), line)] = str(level)
    return sorted((ts, level, line) for (ts, line), level in lines.items())


def _logql_regex(value: str) -> str:
    """``value`` matched literally inside a LogQL regex string (backslashes doubled for the string)."""
    return "".join("\\\\" + c if c in ".+*?()[]{}|^$\\" else '\\"' if c == '"' else c for c in value)


def _seconds(lookback: str) -> float:
    m = re.fullmatch(r"(\d+)([smhd])", lookback)
    if not m:
        raise CLIError(f"--lookback {lookback!r}: expected a duration such as 30m, 6h or 2d")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _model_state(prometheus: str, inference: Span, at_s: float, result: Explanation) -> None:
    matchers = [f'ml_model_name="{_escape(str(inference.tags["ml.model.name"]))}"']
    if inference.tags.get("ml.model.version"):
        matchers.append(f'ml_model_version="{_escape(str(inference.tags["ml.model.version"]))}"')
    sel = ",".join(matchers)
    when = str(at_s + 60)  # the first evaluation after the prediction: drift windows close later
    drift = _get(f"{prometheus}/api/v1/query", {"query": f"max by (ml_feature_name) (ml_drift_status{{{sel}}})",
                                               "time": when})
    for r in ((drift or {}).get("data") or {}).get("result") or []:
        value = int(float(r["value"][1]))
        result.drift[r["metric"].get("ml_feature_name", "?")] = DRIFT_STATUS.get(value, str(value))
    quality_query = f"max by (ml_quality_metric) (ml_quality_score_ratio{{{sel}}})"
    quality = _get(f"{prometheus}/api/v1/query", {"query": quality_query, "time": when})
    for r in ((quality or {}).get("data") or {}).get("result") or []:
        result.quality[r["metric"].get("ml_quality_metric", "?")] = float(r["value"][1])


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def render(e: Explanation) -> str:
    out = [f"trace {e.trace_id}"]

    def walk(span: Span, prefix: str, last: bool) -> None:
        branch = "└─ " if last else "├─ "
        ml = {k: span.tags[k] for k in ML_KEYS if k in span.tags}
        extra = " ".join(f"{k}={v}" for k, v in ml.items())
        flag = "  ERROR" if span.error else ""
        out.append(f"{prefix}{branch}{span.service}: {span.operation}  {span.duration_us / 1000:.1f} ms{flag}"
                   + (f"  [{extra}]" if extra else ""))
        for i, child in enumerate(span.children):
            walk(child, prefix + ("   " if last else "│  "), i == len(span.children) - 1)

    for i, root in enumerate(e.roots):
        walk(root, "", i == len(e.roots) - 1)
    if e.inference is not None:
        t = e.inference.tags
        out.append(f"model: {t.get('ml.model.name')} version {t.get('ml.model.version', '?')}"
                   + (f" variant {t['ml.model.variant']}" if t.get("ml.model.variant") else "")
                   + (f", predicted {t['ml.prediction.class']}" if "ml.prediction.class" in t else "")
                   + (f" (confidence {float(t['ml.prediction.confidence']):.3f})"
                      if "ml.prediction.confidence" in t else ""))
    else:
        out.append("model: no inference span in this trace")
    out.append(f"logs ({len(e.logs)}):")
    for ts, level, line in e.logs[:50]:
        stamp = time.strftime("%H:%M:%S", time.gmtime(ts / 1e9)) + f".{(ts // 1_000_000) % 1000:03d}"
        out.append(f"  {stamp} {level:<5} {line}")
    if len(e.logs) > 50:
        out.append(f"  ... {len(e.logs) - 50} more")
    if e.drift:
        by_status: dict[str, list[str]] = {}
        for feature, status in sorted(e.drift.items()):
            by_status.setdefault(status, []).append(feature)
        out.append("drift then:")
        for status in ("DRIFT", "warning", "insufficient data", "ok"):
            features = by_status.pop(status, [])
            if features:
                listed = ", ".join(features[:12]) + (f" (+{len(features) - 12})" if len(features) > 12 else "")
                out.append(f"  {status:<8} {len(features):>3}: {listed}")
        for status, features in by_status.items():
            out.append(f"  {status:<8} {len(features):>3}: {', '.join(features[:12])}")
    elif e.inference is not None:
        out.append("drift then: no drift status for this model (no reference profile, or no window closed yet)")
    if e.quality:
        out.append("quality then: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(e.quality.items())))
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    for name in ("jaeger", "loki", "prometheus"):
        url = getattr(args, name)
        try:
            parsed = urllib.parse.urlparse(url)
        except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
            parsed = urllib.parse.urlparse("")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CLIError(f"--{name} {url!r}: expected an http(s) URL")
    _seconds(args.lookback)
    if not args.id.strip():
        raise CLIError("explain: give a prediction id or a 32-hex-digit trace id")
    found = explain(args.id.strip(), jaeger=args.jaeger.rstrip("/"), loki=args.loki.rstrip("/"),
                    prometheus=args.prometheus.rstrip("/"), lookback=args.lookback)
    if found is None:
        print(f"no trace for {args.id!r} in Jaeger at {args.jaeger} (last {args.lookback}): the prediction id is "
              "on the inference span only when the service passes prediction_id=, and unsampled traces are "
              "not stored")
        return 1
    if args.json:
        print(json.dumps({"trace_id": found.trace_id, "spans": len(found.spans),
                          "inference": found.inference.tags if found.inference else None,
                          "logs": [{"time_ns": t, "level": lv, "line": ln} for t, lv, ln in found.logs],
                          "drift": found.drift, "quality": found.quality}, default=str))
    else:
        print(render(found))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("explain", help="follow one prediction: span tree (Jaeger), logs (Loki), "
                                                   "model, drift and quality then (Prometheus)")
    parser.add_argument("id", help="a prediction id (the ml.prediction.id the service used) or a trace id")
    parser.add_argument("--jaeger", default="http://127.0.0.1:16686")
    parser.add_argument("--loki", default="http://127.0.0.1:3100")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--lookback", default="24h", help="how far back to search (30m, 6h, 2d; default 24h)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)
