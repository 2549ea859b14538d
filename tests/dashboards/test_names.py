"""Every metric and label a panel queries is one the project emits and documents.

The allowed Prometheus names are derived, not listed: each instrument otel_ml creates (name, unit,
kind, read from the code that creates it) goes through the collector's Prometheus translation;
to those come the FastAPI instrumentation's HTTP metrics, the hardware-semconv GPU metrics whose
names names.py reserves, and the recording rules in alerts/*.rules.yml. A panel that queries
anything else - a typo, a unit suffix the exporter does not add - fails here instead of showing
"No data" (openlit#731).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from dashboards.queries import all_queries, label_names, metric_names
from otel_ml._internal import instruments, names, producer, wiring

ROOT = Path(__file__).resolve().parents[2]

# The collector's prometheus exporter: unit -> name suffix ({...} annotations are dropped).
UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "W": "watts", "J": "joules", "Cel": "celsius"}


def prometheus_names(name: str, unit: str, kind: str) -> set[str]:
    """The series names the collector's prometheus exporter writes for one OTel instrument.

    Dots become underscores; the unit becomes a suffix (``1`` -> ``_ratio`` for gauges only; an
    up-down counter is a non-monotonic sum, not a gauge, in OTel); monotonic counters gain
    ``_total``; histograms become ``_bucket``/``_sum``/``_count``.
    """
    base = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    if unit.startswith("{") or unit == "":
        suffix = ""
    elif unit == "1":
        suffix = "ratio" if kind == "gauge" else ""
    else:
        suffix = UNIT_SUFFIX[unit]  # KeyError: a unit this table does not know yet
    if suffix and not base.endswith("_" + suffix):
        base += "_" + suffix
    if kind == "counter":
        return {base + "_total"}
    if kind == "histogram":
        return {base + s for s in ("_bucket", "_sum", "_count")}
    assert kind in ("gauge", "updowncounter"), kind
    return {base}


class _RecordingMeter:
    """Stands in for a Meter to learn which observable instruments wiring.py creates."""

    def __init__(self, seen: dict[str, tuple[str, str]]) -> None:
        self.seen = seen

    def _add(self, kind: str, name: str, unit: str) -> None:
        self.seen[name] = (kind, unit)

    def create_observable_gauge(self, name: str, callbacks: Any = None, unit: str = "", description: str = "") -> None:
        self._add("gauge", name, unit)

    def create_observable_counter(self, name: str, callbacks: Any = None, unit: str = "",
                                  description: str = "") -> None:
        self._add("counter", name, unit)

    def create_observable_up_down_counter(self, name: str, callbacks: Any = None, unit: str = "",
                                          description: str = "") -> None:
        self._add("updowncounter", name, unit)


class _RecordingProvider:
    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, str]] = {}

    def get_meter(self, *args: Any, **kwargs: Any) -> _RecordingMeter:
        return _RecordingMeter(self.seen)


def emitted_instruments() -> dict[str, tuple[str, str]]:
    """OTel name -> (kind, unit) of every instrument otel_ml creates."""
    specs = [v for v in vars(instruments).values() if isinstance(v, producer.InstrumentSpec)]
    specs += [instruments.inference_duration(), producer.DROPPED_SPEC]
    out = {s.name: (s.kind, s.unit) for s in specs}
    provider = _RecordingProvider()
    wiring._ProviderInstruments(provider)  # type: ignore[arg-type]  # duck-typed: only get_meter is used
    out.update(provider.seen)
    return out


# GPU metrics (hardware semantic conventions). names.py reserves the hw.gpu.* names; the GPU
# exporter arrives with its own issue, so kinds and units are the semconv's (hw.gpu.* and hw.*
# are up-down counters or gauges, hw.energy and hw.errors counters). Move each entry to the code
# that creates the instrument once it exists; the panels must not change.
HARDWARE_SEMCONV = {
    names.GPU_UTILIZATION: ("gauge", "1"),
    names.GPU_MEMORY_USAGE: ("updowncounter", "By"),
    names.GPU_MEMORY_LIMIT: ("updowncounter", "By"),
    "hw.gpu.memory.utilization": ("gauge", "1"),
    "hw.power": ("gauge", "W"),
    "hw.energy": ("counter", "J"),
    "hw.temperature": ("gauge", "Cel"),
    "hw.errors": ("counter", "{error}"),
    "hw.status": ("updowncounter", "1"),
    "ml.inference.energy": ("histogram", "J"),  # energy of one inference call, per model
}

# opentelemetry-instrumentation-fastapi (through its ASGI middleware, asgi/__init__.py):
# the default (no OTEL_SEMCONV_STABILITY_OPT_IN) emits http.server.duration in ms; "http" emits
# http.server.request.duration in s; both modes emit http.server.active_requests.
HTTP_INSTRUMENTS = {
    "http.server.duration": ("histogram", "ms"),
    "http.server.request.duration": ("histogram", "s"),
    "http.server.active_requests": ("updowncounter", "{request}"),
}


def recording_rules() -> set[str]:
    out: set[str] = set()
    for path in (ROOT / "alerts").glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            out.update(r["record"] for r in group.get("rules", []) if "record" in r)
    return out


def documented_metrics() -> set[str]:
    out: set[str] = set()
    for table in (emitted_instruments(), HARDWARE_SEMCONV, HTTP_INSTRUMENTS):
        for name, (kind, unit) in table.items():
            out |= prometheus_names(name, unit, kind)
    return out | recording_rules()


def _prom(name: str) -> str:
    return name.replace(".", "_")


def documented_labels() -> set[str]:
    """Labels the series can carry: attribute keys in names.py, resource and exporter labels."""
    attributes = [v for k, v in vars(names).items() if k.isupper() and isinstance(v, str) and "." in v]
    resource = ["service_name", "service_instance_id", "service_namespace", "service_version",
                "deployment_environment_name", "job", "instance"]
    http = ["http_route", "http_response_status_code", "http_request_method", "url_scheme",  # stable semconv
            "http_target", "http_status_code", "http_method", "http_scheme", "http_host"]  # old semconv
    hardware = ["hw_id", "hw_name", "hw_vendor", "hw_model", "hw_type", "hw_gpu_task", "hw_state"]
    # le: histogram buckets; arm: written by the A/B dashboard's label_join; severity_text:
    # Loki structured metadata of OTLP log records.
    other = ["le", "arm", "severity_text"]
    return {_prom(a) for a in attributes} | set(resource) | set(http) | set(hardware) | set(other)


def _flat(items: Iterable[set[str]]) -> set[str]:
    out: set[str] = set()
    for s in items:
        out |= s
    return out


def test_translation_matches_the_documented_examples() -> None:
    """The translation rules give the Prometheus names README.md and names.py document."""
    assert prometheus_names(names.INFERENCE_DURATION, "s", "histogram") >= {"ml_inference_duration_seconds_bucket"}
    assert prometheus_names(names.PREDICTION_CONFIDENCE, "1", "histogram") >= {"ml_prediction_confidence_count"}
    assert prometheus_names(names.DRIFT_SCORE, "1", "gauge") == {"ml_drift_score_ratio"}
    assert prometheus_names(names.PREDICTIONS, "{prediction}", "counter") == {"ml_predictions_total"}
    assert prometheus_names("hw.status", "1", "updowncounter") == {"hw_status"}
    assert prometheus_names("hw.energy", "J", "counter") == {"hw_energy_joules_total"}


def test_every_emitted_instrument_is_named_in_names_py() -> None:
    """names.py is the one list of metric names: everything the code creates is in it."""
    listed = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    assert set(emitted_instruments()) <= listed


def test_every_panel_metric_is_documented() -> None:
    """Each metric name in each panel expression is an emitted, translated name or a recording rule."""
    allowed = documented_metrics()
    unknown: dict[str, str] = {}
    for q in all_queries():
        if q.datasource == "prometheus":
            for metric in metric_names(q.expr):
                if metric not in allowed:
                    unknown.setdefault(metric, f"{q.dashboard_uid} / {q.panel_title}")
    assert not unknown, unknown


def _variable_query(query: str) -> tuple[set[str], str | None]:
    """Metrics a dropdown's query reads, and the label whose values it lists (label_values)."""
    values = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
    result = re.fullmatch(r"query_result\((.*)\)", query)
    assert values or result, query
    expr, label = (values.group(1), values.group(2)) if values else (result.group(1) if result else "", None)
    used = set(metric_names(expr))
    for alternatives in re.findall(r'__name__=~"([^"]+)"', expr):
        used |= set(alternatives.split("|"))
    return used, label


def test_variable_queries_use_documented_metrics_and_labels() -> None:
    """The label_values / query_result queries behind the dropdowns read documented names too."""
    from dashboards.queries import all_variables

    metrics, labels = documented_metrics(), documented_labels()
    for uid, variables in all_variables().items():
        for var in variables.values():
            if var.type != "query":
                continue
            used, label = _variable_query(var.query)
            assert used and used <= metrics, (uid, var.name, used - metrics)
            assert label is None or label in labels, (uid, var.name, label)
            assert label_names(var.query) - {"__name__"} <= labels, (uid, var.name)


def test_every_label_is_documented() -> None:
    """Labels in matchers and by/on/ignoring clauses are attributes otel_ml, the SDK or the
    instrumentations emit (a misspelt label silently matches nothing)."""
    allowed = documented_labels()
    used = _flat(label_names(q.expr) for q in all_queries())
    assert used <= allowed, used - allowed
