"""Generate otel_ml's Prometheus recording and alerting rules from ``alerts/config.py``.

    python alerts/generate.py            # writes alerts/*.rules.yml
    python alerts/generate.py --check    # exit 1 when a committed file differs
    python alerts/generate.py --time-scale 0.0333 --out DIR   # the demo's rules, time compressed

``--time-scale`` multiplies every duration - range windows, ``offset``, ``for:`` and group
intervals - and nothing else: the same expressions, thresholds and guards, so the demo stack
(``OTEL_ML_RULES_TIME_SCALE``, see stack/README.md) fires the shipped alerts on minutes of real
traffic. Rule names keep their nominal windows (``ratio_rate1h`` is 2 minutes at 1/30).

Conventions (kubernetes-mixin): recording rules are named ``level:metric:operations`` where
``level`` is the labels kept (``service_name_ml_model_name:...``); alerts are CamelCase with the
``OtelMl`` prefix and carry ``severity`` (critical = P0 page, warning = P1/P2 ticket, info = P3),
``priority``, ``team`` (routing, alerts/alertmanager.yml) and the annotations ``summary``,
``description``, ``value`` (the alert's value, human-readable), ``runbook_url`` (a section of
alerts/runbooks.md) and ``dashboard_url`` (the Grafana dashboard for the alert's model).

Metric names are what the collector's prometheus exporter writes for otel_ml's OTel names
(README's Signals table); ``service_name`` and the other resource attributes are labels on every
series (``resource_to_telemetry_conversion``), so no ``target_info`` join is needed. Rules assume
Prometheus 3 semantics (``le`` label values as Prometheus 3 normalises them).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import config as cfg  # noqa: E402 - the mixin's config sits beside this script

C = cfg.CONFIG
T = C.thresholds
S = C.slo

DUR = "ml_inference_duration_seconds"
# Matchers used inside f-strings (which cannot hold backslashes before Python 3.12).
FAILED = 'error_type!=""'
GENERAL_TASK = 'hw_gpu_task="general"'
GPU = 'hw_type="gpu"'
UNCORRECTED = 'error_type="uncorrected"'
EXPIRED = 'otel_ml_reason="expired"'
EVICTED = 'otel_ml_reason="evicted"'
CLASSIFIED = 'ml_prediction_class!=""'
CANDIDATE = 'ml_model_variant!=""'
SM, MV, VAR, FEAT = cfg.SERVICE_MODEL, cfg.MODEL_VERSION, cfg.MODEL_VARIANT, cfg.FEATURE


# --- small PromQL helpers ----------------------------------------------------------------------

def sel(*matchers: str) -> str:
    """A label selector: the config's SELECTOR plus ``matchers``."""
    parts = [m for m in (cfg.SELECTOR, *matchers) if m]
    return "{" + ", ".join(parts) + "}" if parts else ""


def by(labels: Sequence[str]) -> str:
    return "by (" + ", ".join(labels) + ")"


def on(labels: Sequence[str]) -> str:
    return "on (" + ", ".join(labels) + ")"


def level(labels: Sequence[str]) -> str:
    return "_".join(labels)


def num(x: float) -> str:
    """A number as PromQL and promtool print it (no float noise such as 0.014400000000000001)."""
    text = repr(round(float(x), 10))
    return text[:-2] if text.endswith(".0") else text


def le(seconds: float) -> str:
    """A bucket bound as Prometheus 3 stores ``le`` (normalised float text: 0.5, 1.0, 2.5)."""
    return repr(float(seconds))


def seconds(window: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(window[:-1]) * units[window[-1]]


FAST = f'le="{le(S.latency_threshold_s)}"'  # the latency objective's bucket


# --- rule objects ----------------------------------------------------------------------------

@dataclass
class Record:
    record: str
    expr: str

    def doc(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


SEVERITY_PRIORITY = {"P0": "critical", "P1": "warning", "P2": "warning", "P3": "info"}


@dataclass
class Alert:
    alert: str
    expr: str
    for_: str
    priority: str  # P0..P3
    team: str
    summary: str
    description: str
    value: str  # template rendering $value for humans
    dashboard: str = "overview"
    # The quantity the alert compares, for the real-data test (which runs it against Prometheus):
    # by default the expression's left side before its first comparison.
    probe: str | None = None
    # dashboard variables filled from the alert's labels: service and model, model only, or none
    link: tuple[tuple[str, str], ...] = (("service", "service_name"), ("model", "ml_model_name"))

    @property
    def severity(self) -> str:
        return SEVERITY_PRIORITY[self.priority]

    @property
    def probe_expr(self) -> str:
        if self.probe is not None:
            return self.probe
        m = re.match(r"^(.*?)\s*(>=|<=|>|<|==)\s", self.expr, re.S)
        left = m.group(1) if m else ""
        if not left or left.count("(") != left.count(")"):
            raise ValueError(f"{self.alert}: give it an explicit probe=")
        return left

    def doc(self) -> dict[str, Any]:
        uid = cfg.DASHBOARDS[self.dashboard]
        url = f"{cfg.GRAFANA_URL}/d/{uid}"
        if self.link:
            url += "?" + "&".join(f"var-{var}={{{{ $labels.{label} }}}}" for var, label in self.link)
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "priority": self.priority, "team": self.team},
            "annotations": {
                "summary": self.summary,
                "description": " ".join(self.description.split()),
                "value": self.value,
                "runbook_url": f"{cfg.RUNBOOK_BASE}#{self.alert.lower()}",
                "dashboard_url": url,
            },
        }


@dataclass
class Group:
    name: str
    rules: list[Record | Alert]
    interval: str = "1m"


@dataclass
class RuleFile:
    name: str
    doc: str
    groups: list[Group] = field(default_factory=list)


NO_LINK: tuple[tuple[str, str], ...] = ()
MODEL_LINK = (("model", "ml_model_name"), ("version", "ml_model_version"))
SERVICE_LINK = (("service", "service_name"),)
PCT = "{{ $value | humanizePercentage }}"
DURATION = "{{ $value | humanizeDuration }}"
COUNT = "{{ $value | humanize }}"
MODEL = "{{ $labels.ml_model_name }} {{ $labels.ml_model_version }}"
VARIANT = "{{ if $labels.ml_model_variant }} ({{ $labels.ml_model_variant }}){{ end }}"


# --- inference: requests, errors, latency ----------------------------------------------------

REQ5 = f"{level(MV)}:ml_inference_requests:rate5m"
ERR5 = f"{level(MV)}:ml_inference_error:ratio_rate5m"
P99_5 = f"{level(MV)}:{DUR}:p99_rate5m"
REQ15_VAR = f"{level(VAR)}:ml_inference_requests:rate15m"
ERR15_VAR = f"{level(VAR)}:ml_inference_error:ratio_rate15m"
P99_15_VAR = f"{level(VAR)}:{DUR}:p99_rate15m"


def _error_ratio(labels: Sequence[str], window: str, total_record: str | None = None, metric: str = DUR) -> str:
    """Share of requests with an ``error.type``; 0 (not absent) when there were none."""
    total = total_record or f"sum {by(labels)} (rate({metric}_count{sel()}[{window}]))"
    return (f"(\n  sum {by(labels)} (rate({metric}_count{sel(FAILED)}[{window}]))\n  or\n"
            f"  {total} * 0\n)\n/\n{total}")


def inference_rules() -> list[Group]:
    records: list[Record | Alert] = [
        Record(REQ5, f"sum {by(MV)} (rate({DUR}_count{sel()}[5m]))"),
        Record(ERR5, _error_ratio(MV, "5m", REQ5)),
        Record(P99_5, f"histogram_quantile(0.99, sum {by((*MV, 'le'))} (rate({DUR}_bucket{sel()}[5m])))"),
        Record(REQ15_VAR, f"sum {by(VAR)} (rate({DUR}_count{sel()}[15m]))"),
        Record(ERR15_VAR, _error_ratio(VAR, "15m", REQ15_VAR)),
        Record(P99_15_VAR, f"histogram_quantile(0.99, sum {by((*VAR, 'le'))} (rate({DUR}_bucket{sel()}[15m])))"),
    ]
    alerts: list[Record | Alert] = [
        Alert("OtelMlHighErrorRatio",
              f"{ERR5} > {num(T.error_ratio)}\nand {on(MV)}\n{REQ5} > {num(T.min_requests_per_s)}",
              "5m", "P1", cfg.TEAM_PLATFORM,
              f"{MODEL}{VARIANT} in {{{{ $labels.service_name }}}}: {PCT} of inferences fail",
              f"More than {num(T.error_ratio * 100)} % of this model version's inference calls raised an "
              "error over 5 minutes (ml_inference_duration_seconds_count with error_type set).", PCT),
        Alert("OtelMlHighLatencyP99",
              f"{P99_5} > {num(S.latency_threshold_s)}\nand {on(MV)}\n{REQ5} > {num(T.min_requests_per_s)}",
              "10m", "P2", cfg.TEAM_PLATFORM,
              f"{MODEL}{VARIANT} in {{{{ $labels.service_name }}}}: p99 inference latency {DURATION}",
              f"The 99th percentile of inference duration stayed above the {num(S.latency_threshold_s)} s "
              "latency objective for 10 minutes.", DURATION),
    ]
    return [Group("otel_ml.inference", records), Group("otel_ml.inference.alerts", alerts)]


# --- SLOs: multi-window multi-burn-rate ------------------------------------------------------

def _slo_windows() -> tuple[list[str], list[str]]:
    short = sorted({w for b in (*S.page, *S.ticket) for w in (b.long, b.short) if seconds(w) < 86400}, key=seconds)
    long = sorted({w for b in (*S.page, *S.ticket) for w in (b.long, b.short) if seconds(w) >= 86400}, key=seconds)
    return short, long


def _slo_records(windows: list[str]) -> list[Record | Alert]:
    out: list[Record | Alert] = []
    ok = 'error_type=""'
    for w in windows:
        out.append(Record(f"{level(SM)}:ml_inference_error:ratio_rate{w}", _error_ratio(SM, w)))
        out.append(Record(
            f"{level(SM)}:ml_inference_slow:ratio_rate{w}",
            f"1 - (\n  sum {by(SM)} (rate({DUR}_bucket{sel(ok, FAST)}[{w}]))\n  /\n"
            f"  sum {by(SM)} (rate({DUR}_count{sel(ok)}[{w}]))\n)"))
    return out


def _bad_events(kind: str, window: str) -> str:
    if kind == "error":
        return f"sum {by(SM)} (increase({DUR}_count{sel(FAILED)}[{window}]))"
    ok = 'error_type=""'
    return (f"(\n    sum {by(SM)} (increase({DUR}_count{sel(ok)}[{window}]))\n    -\n"
            f"    sum {by(SM)} (increase({DUR}_bucket{sel(ok, FAST)}[{window}]))\n  )")


def _burn(kind: str, windows: Sequence[cfg.BurnWindow], target: float, min_bad: int) -> str:
    budget = 1.0 - target
    branches = []
    for b in windows:
        threshold = num(b.factor * budget)
        branches.append(
            f"(\n  {level(SM)}:ml_inference_{kind}:ratio_rate{b.long} > {threshold}\n"
            f"  and\n  {level(SM)}:ml_inference_{kind}:ratio_rate{b.short} > {threshold}\n"
            f"  and {on(SM)}\n  {_bad_events(kind, b.long)} >= {min_bad}\n)")
    return "\nor\n".join(branches)


def slo_rules() -> list[Group]:
    short, long = _slo_windows()
    avail, lat = S.availability_target, S.latency_target
    page = " or ".join(f"{b.long}/{b.short} at {num(b.factor)}x" for b in S.page)
    ticket = " or ".join(f"{b.long}/{b.short} at {num(b.factor)}x" for b in S.ticket)
    alerts: list[Record | Alert] = [
        Alert("OtelMlAvailabilityBudgetBurnFast", _burn("error", S.page, avail, S.min_bad_page), "2m", "P0",
              cfg.TEAM_PLATFORM,
              f"{{{{ $labels.ml_model_name }}}} in {{{{ $labels.service_name }}}} burns its error budget fast "
              f"({PCT} errors)",
              f"At this error rate the {num(avail * 100)} % availability objective's 30-day budget is gone in "
              f"days ({page} burn rate, at least {S.min_bad_page} failed inferences).", PCT,
              probe=f"{level(SM)}:ml_inference_error:ratio_rate{S.page[0].long}"),
        Alert("OtelMlAvailabilityBudgetBurnSlow", _burn("error", S.ticket, avail, S.min_bad_ticket), "15m", "P2",
              cfg.TEAM_PLATFORM,
              f"{{{{ $labels.ml_model_name }}}} in {{{{ $labels.service_name }}}} is eating its error budget "
              f"({PCT} errors)",
              f"The {num(avail * 100)} % availability objective is being missed slowly ({ticket} burn rate, at "
              f"least {S.min_bad_ticket} failed inferences): fix it this week, not tonight.", PCT,
              probe=f"{level(SM)}:ml_inference_error:ratio_rate{S.ticket[0].long}"),
        Alert("OtelMlLatencyBudgetBurnFast", _burn("slow", S.page, lat, S.min_bad_page), "2m", "P0",
              cfg.TEAM_PLATFORM,
              f"{{{{ $labels.ml_model_name }}}} in {{{{ $labels.service_name }}}}: {PCT} of inferences slower "
              f"than {num(S.latency_threshold_s)} s",
              f"Too many successful inferences are slower than {num(S.latency_threshold_s)} s for the "
              f"{num(lat * 100)} % latency objective ({page} burn rate, at least {S.min_bad_page} slow ones).",
              PCT, probe=f"{level(SM)}:ml_inference_slow:ratio_rate{S.page[0].long}"),
        Alert("OtelMlLatencyBudgetBurnSlow", _burn("slow", S.ticket, lat, S.min_bad_ticket), "15m", "P2",
              cfg.TEAM_PLATFORM,
              f"{{{{ $labels.ml_model_name }}}} in {{{{ $labels.service_name }}}}: {PCT} of inferences slower "
              f"than {num(S.latency_threshold_s)} s over days",
              f"The {num(lat * 100)} % latency objective ({num(S.latency_threshold_s)} s) is being missed slowly "
              f"({ticket} burn rate, at least {S.min_bad_ticket} slow inferences).", PCT,
              probe=f"{level(SM)}:ml_inference_slow:ratio_rate{S.ticket[0].long}"),
    ]
    return [Group("otel_ml.slo", _slo_records(short)),
            Group("otel_ml.slo.long", _slo_records(long), interval="5m"),
            Group("otel_ml.slo.alerts", alerts)]


# --- pipeline: collector, targets, dropped telemetry -------------------------------------------

def pipeline_rules() -> list[Group]:
    job = f'job="{cfg.COLLECTOR_JOB}"'
    def per_signal(counter: str, by_label: str) -> str:
        """Any signal above zero, one sum per signal: rate() drops __name__, so one selector over the
        three counters would give three series with the same labels, which PromQL rejects."""
        return "\nor\n".join(
            f'sum by (job, instance, {by_label}) (rate({{__name__=~"{counter}_{signal}(_total)?", {job}}}[5m])) > 0'
            for signal in ("spans", "metric_points", "log_records"))

    reporting = f'{{__name__=~"{DUR}_count|gen_ai_server_request_duration_seconds_count"' + (
        f", {cfg.SELECTOR}" if cfg.SELECTOR else "") + "}"
    alerts: list[Record | Alert] = [
        Alert("OtelMlCollectorDown",
              f'up{{job=~"{cfg.COLLECTOR_JOB}|{cfg.EXPORTER_JOB}"}} == 0\nor\nabsent(up{{{job}}})',
              "2m", "P0", cfg.TEAM_PLATFORM,
              "The otel_ml collector is down or not scraped ({{ $labels.job }})",
              "Prometheus cannot scrape the collector (its own telemetry or its prometheus exporter): no "
              "metrics, traces or logs from instrumented services reach any backend.",
              "{{ $value }}", link=NO_LINK),
        Alert("OtelMlCollectorRefusingData", per_signal("otelcol_receiver_refused", "receiver"),
              "5m", "P1", cfg.TEAM_PLATFORM,
              "The collector refuses telemetry on {{ $labels.receiver }} ({{ $value | humanize }}/s)",
              "The collector's receivers reject data, usually because memory_limiter is over its limit: the "
              "SDKs' retries will give up and data is lost.", "{{ $value | humanize }}/s", link=NO_LINK),
        Alert("OtelMlCollectorExportFailing", per_signal("otelcol_exporter_send_failed", "exporter"),
              "5m", "P1", cfg.TEAM_PLATFORM,
              "The collector cannot deliver to {{ $labels.exporter }} ({{ $value | humanize }} items/s)",
              "An exporter (Jaeger, Loki or Prometheus) fails to accept data after retries: that backend is "
              "down, refusing, or too slow.", "{{ $value | humanize }}/s", link=NO_LINK),
        Alert("OtelMlCollectorQueueFilling",
              f"max by (job, instance, exporter) (\n  otelcol_exporter_queue_size{{{job}}}\n  /\n"
              f"  otelcol_exporter_queue_capacity{{{job}}}\n) > 0.8",
              "5m", "P2", cfg.TEAM_PLATFORM,
              "The collector's {{ $labels.exporter }} queue is {{ $value | humanizePercentage }} full",
              "The sending queue of an exporter is filling: its backend is slower than the traffic. At 100 % "
              "new data is dropped.", PCT, link=NO_LINK),
        Alert("OtelMlServiceStoppedReporting",
              f"count by (service_name) (count_over_time({reporting}[1h] offset 15m))\nunless\n"
              f"count by (service_name) ({reporting})",
              "5m", "P0", cfg.TEAM_PLATFORM,
              "{{ $labels.service_name }} stopped reporting inference metrics",
              "A service that reported model metrics in the hour before the last 15 minutes reports none now: "
              "it is down, cannot reach the collector, or stopped serving.", "{{ $value }}", link=SERVICE_LINK,
              probe=f"count by (service_name) (count_over_time({reporting}[1h]))"),
        Alert("OtelMlTelemetryDropped",
              f"sum by (service_name, otel_ml_reason) (increase(otel_ml_dropped_total{sel()}[10m])) > 0",
              "10m", "P2", cfg.TEAM_PLATFORM,
              "{{ $labels.service_name }} drops otel_ml telemetry ({{ $labels.otel_ml_reason }})",
              "otel_ml counted items it could not record or export (otel_ml_dropped_total): dashboards and "
              "drift for this service are incomplete.", COUNT, link=SERVICE_LINK),
    ]
    return [Group("otel_ml.pipeline", alerts)]


# --- LLM ---------------------------------------------------------------------------------------

def llm_rules() -> list[Group]:
    llm = (*SM, "gen_ai_request_model")
    ttft, tpot, dur = ("gen_ai_server_time_to_first_token_seconds", "gen_ai_server_time_per_output_token_seconds",
                       "gen_ai_server_request_duration_seconds")

    def p90(metric: str) -> str:
        return f"histogram_quantile(0.9, sum {by((*llm, 'le'))} (rate({metric}_bucket{sel()}[5m])))"

    def busy(metric: str) -> str:
        return f"sum {by(llm)} (rate({metric}_count{sel()}[5m])) > {num(T.min_requests_per_s)}"

    alerts: list[Record | Alert] = [
        Alert("OtelMlLLMSlowTimeToFirstToken", f"{p90(ttft)} > {num(T.ttft_p90_s)}\nand {on(llm)}\n{busy(ttft)}",
              "10m", "P2", cfg.TEAM_PLATFORM,
              "{{ $labels.gen_ai_request_model }} in {{ $labels.service_name }}: p90 time to first token "
              f"{DURATION}",
              f"Users wait more than {num(T.ttft_p90_s)} s for the first token (90th percentile over 5 minutes): "
              "prefill is slow, the batch is full, or requests queue.", DURATION, dashboard="llm"),
        Alert("OtelMlLLMSlowTimePerOutputToken", f"{p90(tpot)} > {num(T.tpot_p90_s)}\nand {on(llm)}\n{busy(tpot)}",
              "10m", "P2", cfg.TEAM_PLATFORM,
              "{{ $labels.gen_ai_request_model }} in {{ $labels.service_name }}: p90 time per output token "
              f"{DURATION}",
              f"Decoding is slower than {num(T.tpot_p90_s)} s per token (90th percentile over 5 minutes).",
              DURATION, dashboard="llm"),
        Alert("OtelMlLLMErrors",
              f"{_error_ratio(llm, '5m', metric=dur)} > {num(T.llm_error_ratio)}\nand {on(llm)}\n{busy(dur)}",
              "5m", "P1", cfg.TEAM_PLATFORM,
              f"{{{{ $labels.gen_ai_request_model }}}} in {{{{ $labels.service_name }}}}: {PCT} of generations fail",
              f"More than {num(T.llm_error_ratio * 100)} % of generations ended with an error over 5 minutes.",
              PCT, dashboard="llm"),
    ]
    return [Group("otel_ml.llm", alerts)]


# --- GPU (hardware semantic conventions) --------------------------------------------------------

def gpu_rules() -> list[Group]:
    dev = ("service_name", "instance", "hw_id", "hw_name")
    alerts: list[Record | Alert] = [
        Alert("OtelMlGPUMemoryNearlyFull",
              f"max {by(dev)} (hw_gpu_memory_usage_bytes{sel()})\n/\nmax {by(dev)} (hw_gpu_memory_limit_bytes{sel()})"
              f"\n> {num(T.gpu_memory_ratio)}",
              "10m", "P1", cfg.TEAM_PLATFORM,
              "GPU {{ $labels.hw_name }} ({{ $labels.hw_id }}) of {{ $labels.service_name }} memory "
              f"{PCT} used",
              "The GPU's memory is almost full: the next larger batch or longer sequence fails with an "
              "out-of-memory error.", PCT, dashboard="gpu", link=SERVICE_LINK),
        Alert("OtelMlGPUSaturated",
              f"avg {by(dev)} (avg_over_time(hw_gpu_utilization_ratio{sel(GENERAL_TASK)}[15m]))"
              f" > {num(T.gpu_utilization_ratio)}",
              "30m", "P3", cfg.TEAM_PLATFORM,
              f"GPU {{{{ $labels.hw_name }}}} of {{{{ $labels.service_name }}}} busy {PCT} of the time",
              "The GPU has been saturated for half an hour: latency will grow with traffic; plan capacity.",
              PCT, dashboard="gpu", link=SERVICE_LINK),
        Alert("OtelMlGPUHot",
              f"max {by(dev)} (hw_temperature_celsius{sel(GPU)}) > {num(T.gpu_temperature_celsius)}",
              "10m", "P2", cfg.TEAM_PLATFORM,
              "GPU {{ $labels.hw_name }} of {{ $labels.service_name }} at {{ $value }} °C",
              f"The GPU stays above {num(T.gpu_temperature_celsius)} °C: it will throttle its clocks.",
              "{{ $value }} °C", dashboard="gpu", link=SERVICE_LINK),
        Alert("OtelMlGPUUncorrectedErrors",
              f"sum {by(dev)} (increase(hw_errors_total{sel(GPU, UNCORRECTED)}[10m]))"
              " > 0",
              "1m", "P0", cfg.TEAM_PLATFORM,
              "GPU {{ $labels.hw_name }} of {{ $labels.service_name }} reports uncorrected errors",
              "The GPU reported uncorrectable (ECC) errors: results computed on it may be wrong. Drain it.",
              COUNT, dashboard="gpu", link=SERVICE_LINK),
    ]
    return [Group("otel_ml.gpu", alerts)]


# --- model quality: confidence, accuracy, F1 --------------------------------------------------

CONF30 = f"{level(MV)}:ml_prediction_confidence:mean_rate30m"
CONF1D = f"{level(MV)}:ml_prediction_confidence:mean_rate1d"


def _accuracy_records(labels: Sequence[str], window: str) -> list[Record | Alert]:
    """Accuracy from the ml_outcomes_total counters, predicted == actual found without regexes.

    label_replace copies the predicted class into ``ml_class`` on one side and the actual class on
    the other; ``and`` then keeps exactly the series whose two copies agree.
    """
    classified = sel(CLASSIFIED)
    rate = f"rate(ml_outcomes_total{classified}[{window}])"
    outcomes = f"{level(labels)}:ml_outcomes:rate{window}"
    correct = f"{level(labels)}:ml_outcomes_correct:rate{window}"
    return [
        Record(outcomes, f"sum {by(labels)} ({rate})"),
        Record(correct,
               f"sum {by(labels)} (\n  label_replace({rate}, \"ml_class\", \"$1\", \"ml_prediction_class\", \"(.*)\")\n"
               f"  and\n  label_replace({rate}, \"ml_class\", \"$1\", \"ml_outcome_class\", \"(.*)\")\n)"),
        Record(f"{level(labels)}:ml_accuracy:ratio_rate{window}", f"({correct} or {outcomes} * 0)\n/\n{outcomes}"),
    ]


def _mean(labels: Sequence[str], metric: str, window: str) -> str:
    return (f"sum {by(labels)} (rate({metric}_sum{sel()}[{window}]))\n/\n"
            f"sum {by(labels)} (rate({metric}_count{sel()}[{window}]))")


def model_rules() -> list[Group]:
    acc1h, acc1d = f"{level(MV)}:ml_accuracy:ratio_rate1h", f"{level(MV)}:ml_accuracy:ratio_rate1d"
    f1 = sel('ml_quality_metric="f1"')
    alerts: list[Record | Alert] = [
        Alert("OtelMlConfidenceDrop",
              f"{CONF30} < {on(MV)} ({CONF1D} - {num(T.confidence_drop)})\nand {on(MV)}\n"
              f"sum {by(MV)} (increase(ml_prediction_confidence_count{sel()}[30m])) >= {T.min_predictions}",
              "15m", "P2", cfg.TEAM_PLATFORM,
              f"{MODEL}{VARIANT}: mean confidence fell to {{{{ $value | printf \"%.2f\" }}}}",
              f"The model's mean confidence over 30 minutes is more than {num(T.confidence_drop)} below its "
              "mean over the last day: inputs it has not seen, or a broken feature, usually before labels show "
              "it.", "{{ $value | printf \"%.3f\" }}", dashboard="quality"),
        Alert("OtelMlAccuracyDrop",
              f"{acc1h} < {on(MV)} ({acc1d} - {num(T.accuracy_drop)})\nand {on(MV)}\n"
              f"sum {by(MV)} (increase(ml_outcomes_total{sel(CLASSIFIED)}[1h])) >= {T.min_outcomes}",
              "30m", "P1", cfg.TEAM_PLATFORM,
              f"{MODEL}{VARIANT}: accuracy fell to {PCT}",
              f"Accuracy from delayed labels over the last hour is more than {num(T.accuracy_drop * 100)} points "
              "below the last day's (ml_outcomes_total, predicted vs actual class).", PCT, dashboard="quality"),
        Alert("OtelMlF1Drop",
              f"avg {by(MV)} (ml_quality_score_ratio{f1})\n< {on(MV)}\n"
              f"(avg {by(MV)} (avg_over_time(ml_quality_score_ratio{f1}[1d])) - {num(T.f1_drop)})",
              "30m", "P2", cfg.TEAM_PLATFORM,
              f"{MODEL}{VARIANT}: F1 fell to {{{{ $value | printf \"%.3f\" }}}}",
              f"F1 over the quality window (ml_quality_score_ratio, positive class as configured in the SDK) is "
              f"more than {num(T.f1_drop)} below its average over the last day.",
              "{{ $value | printf \"%.3f\" }}", dashboard="quality"),
    ]
    return [
        Group("otel_ml.model", [Record(CONF30, _mean(MV, "ml_prediction_confidence", "30m")),
                                *_accuracy_records(MV, "1h"), *_accuracy_records(VAR, "1h")]),
        Group("otel_ml.model.long", [Record(CONF1D, _mean(MV, "ml_prediction_confidence", "1d")),
                                     *_accuracy_records(MV, "1d")], interval="5m"),
        Group("otel_ml.model.alerts", alerts),
    ]


# --- drift: fleet PSI and JS from per-bin counters --------------------------------------------

DRIFT = ("ml_model_name", "ml_model_version", "ml_feature_name")
DRIFT_BIN = (*DRIFT, "ml_feature_bin")
BIN_COUNT = f"{level(DRIFT_BIN)}:ml_feature_bin_count:increase1h"
N_COUNT = f"{level(DRIFT)}:ml_feature_bin_count:increase1h"
P = f"{level(DRIFT_BIN)}:ml_feature_bin_proportion:1h"
Q = f"{level(DRIFT_BIN)}:ml_feature_reference_proportion:max"
PSI = f"{level(DRIFT)}:ml_drift_psi:1h"
JS = f"{level(DRIFT)}:ml_drift_jensen_shannon:1h"


def drift_thresholds() -> dict[str, float]:
    """The fleet rule's numbers, from the SDK's drift defaults (DriftPolicy())."""
    import scipy.stats

    from otel_ml._internal.drift import DriftPolicy
    from otel_ml._internal.drift.features import DEFAULT_BINS
    from otel_ml._internal.drift.methods import PSI_EPSILON

    policy = DriftPolicy()
    _, psi_drift = policy.thresholds("psi")
    return {"psi_drift": psi_drift, "drift_alpha": policy.drift_alpha, "bins": DEFAULT_BINS, "epsilon": PSI_EPSILON,
            "n_psi_floor": float(scipy.stats.chi2.ppf(1.0 - policy.drift_alpha, DEFAULT_BINS - 1))}


def drift_rules() -> list[Group]:
    t = drift_thresholds()
    eps = num(t["epsilon"])

    def clamp(x: str, e: str) -> str:
        return f"clamp_min({x}, {e})"

    pc, qc = clamp(P, eps), clamp(Q, eps)
    pj, qj = clamp(P, "1e-12"), clamp(Q, "1e-12")
    m = f"(({pj} + {qj}) / 2)"
    records: list[Record | Alert] = [
        # per bin, summed over replicas: the fleet's histogram of the last hour
        Record(BIN_COUNT, f"sum {by(DRIFT_BIN)} (increase(ml_feature_bin_count_total{sel()}[1h]))"),
        Record(N_COUNT, f"sum {by(DRIFT)} ({BIN_COUNT})"),
        Record(P, f"{BIN_COUNT}\n/ ignoring (ml_feature_bin) group_left\n{N_COUNT}"),
        # identical on every replica: max de-duplicates
        Record(Q, f"max {by(DRIFT_BIN)} (ml_feature_reference_proportion_ratio{sel()})"),
        # PSI = sum over bins of (p - q) ln(p / q), both clipped as in otel_ml's methods.py
        Record(PSI, f"sum {by(DRIFT)} (\n  ({pc} - {qc})\n  * ln({pc} / {qc})\n)"),
        # Jensen-Shannon distance, base 2; the 1e-12 clip only avoids 0 * log 0
        Record(JS, f"sqrt(\n  sum {by(DRIFT)} (\n    {pj} * log2({pj} / {m})\n"
                   f"    + {qj} * log2({qj} / {m})\n  ) / 2\n)"),
    ]
    psi, floor = num(t["psi_drift"]), num(t["n_psi_floor"])

    def drift_alert(name: str, which: str, team: str, what: str) -> Alert:
        cond = f'{{ml_feature_name{which}"__prediction__"}}'
        return Alert(
            name, f"({PSI}{cond} > {psi})\nand\n({PSI}{cond} * {N_COUNT}{cond} > {floor})", "15m", "P2", team,
            f"{{{{ $labels.ml_model_name }}}} {{{{ $labels.ml_model_version }}}}: {what} drifted "
            f"(PSI {{{{ $value | printf \"%.2f\" }}}})",
            f"Over the last hour, across all replicas, the {what} distribution differs from the training reference: "
            f"fleet PSI above {psi} and n x PSI above {floor} (the chi-squared {1 - t['drift_alpha']:.4%} quantile "
            f"for {int(t['bins'])} bins, so a quiet hour does not alert on noise) for 15 minutes; the same rule as "
            "the SDK's ml.drift.status.", "{{ $value | printf \"%.3f\" }}", dashboard="quality", link=MODEL_LINK,
            probe=f"{PSI}{cond}")

    alerts: list[Record | Alert] = [
        drift_alert("OtelMlFeatureDrift", "!=", cfg.TEAM_DATA, "feature {{ $labels.ml_feature_name }}"),
        drift_alert("OtelMlPredictionDrift", "=", cfg.TEAM_PLATFORM, "prediction"),
    ]
    return [Group("otel_ml.drift", records), Group("otel_ml.drift.alerts", alerts)]


# --- data quality ----------------------------------------------------------------------------

ROWS = f"{level(FEAT)}:ml_feature_rows:rate15m"
ISSUE_RATIO = f"{level((*FEAT, 'ml_data_quality_issue'))}:ml_data_quality_issues:ratio_rate15m"
# Values that never reach a bin; with the binned ones (ml_feature_values_total, which includes
# out-of-range and unseen values) they are every row offered to the feature.
UNBINNED = "missing|nan|inf|type_mismatch"
UNBINNED_ISSUES = f'ml_data_quality_issue=~"{UNBINNED}"'


def data_quality_rules() -> list[Group]:
    records: list[Record | Alert] = [
        Record(ROWS, f"sum {by(FEAT)} (rate(ml_feature_values_total{sel()}[15m]))\n+\n"
                     f"sum {by(FEAT)} (rate(ml_data_quality_issues_total"
                     f"{sel(UNBINNED_ISSUES)}[15m]))"),
        Record(ISSUE_RATIO, f"sum {by((*FEAT, 'ml_data_quality_issue'))} "
                            f"(rate(ml_data_quality_issues_total{sel()}[15m]))"
                            f"\n/ ignoring (ml_data_quality_issue) group_left\n{ROWS}"),
    ]
    guard = f"and {on(FEAT)}\nsum {by(FEAT)} (increase(ml_feature_values_total{sel()}[15m])) >= {T.min_rows}"

    def dq(name: str, issues: str, threshold: float, priority: str, what: str, why: str) -> Alert:
        return Alert(
            name, f"sum {by(FEAT)} ({ISSUE_RATIO}{{ml_data_quality_issue=~\"{issues}\"}}) > {num(threshold)}\n{guard}",
            "15m", priority, cfg.TEAM_DATA,
            f"{MODEL}: {PCT} of {{{{ $labels.ml_feature_name }}}} values are {what}",
            f"More than {num(threshold * 100)} % of the values of this feature were {what} over 15 minutes. {why}",
            PCT, dashboard="quality")

    alerts: list[Record | Alert] = [
        dq("OtelMlFeatureMissingValues", "missing|nan", T.missing_rate, "P2", "missing",
           "An upstream join or source is failing; compare with the feature's missing rate in training."),
        dq("OtelMlFeatureUnseenCategories", "unseen_category", T.unseen_category_rate, "P2",
           "categories never seen in training", "A new product, region or code appeared; the model treats it as "
           "'other'."),
        dq("OtelMlFeatureOutOfRange", "out_of_range", T.out_of_range_rate, "P2",
           "outside the training range", "Units changed, or the world moved past what the model was trained on."),
        dq("OtelMlFeatureTypeMismatch", "type_mismatch|inf", T.type_mismatch_rate, "P1",
           "of the wrong type or infinite", "A schema change upstream: strings where numbers belong, or "
           "overflowing values."),
    ]
    return [Group("otel_ml.data_quality", records), Group("otel_ml.data_quality.alerts", alerts)]


# --- canary / A-B: a variant against the model's main variant ---------------------------------

def canary_rules() -> list[Group]:
    cand, base = '{ml_model_variant!=""}', '{ml_model_variant=""}'
    acc = f"{level(VAR)}:ml_accuracy:ratio_rate1h"
    enough = (f"and {on(VAR)}\nsum {by(VAR)} (rate({DUR}_count{sel(CANDIDATE)}[15m]))"
              f" >= {num(T.canary_min_requests_per_s)}")
    alerts: list[Record | Alert] = [
        Alert("OtelMlCanaryErrorRatioWorse",
              f"{ERR15_VAR}{cand}\n> {on(SM)} group_left ()\n"
              f"({num(T.canary_error_factor)} * {ERR15_VAR}{base} + {num(T.canary_error_margin)})\n{enough}",
              "10m", "P1", cfg.TEAM_PLATFORM,
              f"{{{{ $labels.ml_model_name }}}} variant {{{{ $labels.ml_model_variant }}}} fails {PCT} of "
              "inferences, worse than the main variant",
              f"Over 15 minutes the variant's error ratio is above {num(T.canary_error_factor)} x the main "
              f"variant's + {num(T.canary_error_margin * 100)} points: stop the rollout.", PCT, dashboard="ab"),
        Alert("OtelMlCanaryLatencyWorse",
              f"{P99_15_VAR}{cand}\n> {on(SM)} group_left ()\n({num(T.canary_latency_factor)} * {P99_15_VAR}{base})"
              f"\n{enough}",
              "10m", "P2", cfg.TEAM_PLATFORM,
              f"{{{{ $labels.ml_model_name }}}} variant {{{{ $labels.ml_model_variant }}}}: p99 {DURATION}, slower "
              "than the main variant",
              f"Over 15 minutes the variant's p99 inference latency is above {num(T.canary_latency_factor)} x the "
              "main variant's.", DURATION, dashboard="ab"),
        Alert("OtelMlCanaryAccuracyWorse",
              f"{acc}{cand}\n< {on(SM)} group_left ()\n({acc}{base} - {num(T.canary_accuracy_drop)})\n"
              f"and {on(VAR)}\nsum {by(VAR)} (increase(ml_outcomes_total{sel(CLASSIFIED, CANDIDATE)}[1h]))"
              f" >= {T.min_outcomes}",
              "30m", "P1", cfg.TEAM_PLATFORM,
              f"{{{{ $labels.ml_model_name }}}} variant {{{{ $labels.ml_model_variant }}}}: accuracy {PCT}, worse "
              "than the main variant",
              f"Accuracy from delayed labels over the last hour is more than {num(T.canary_accuracy_drop * 100)} "
              "points below the main variant's.", PCT, dashboard="ab"),
    ]
    return [Group("otel_ml.canary", alerts)]


# --- delayed labels ---------------------------------------------------------------------------

def label_rules() -> list[Group]:
    unl = "ml_predictions_unlabelled_total"
    joined = f"sum {by(MV)} (rate(ml_outcomes_total{sel()}[6h]))"
    left = f"sum {by(MV)} (rate({unl}{sel()}[6h]))"
    late = f"sum {by(MV)} (rate(ml_outcomes_unmatched_total{sel(EXPIRED)}[1h]))"
    alerts: list[Record | Alert] = [
        Alert("OtelMlLabelBacklog",
              f"{left}\n/\n({left} + ({joined} or {left} * 0))\n> {num(T.unlabelled_share)}\nand {on(MV)}\n"
              f"sum {by(MV)} (increase({unl}{sel()}[6h])) >= {T.min_predictions}",
              "30m", "P2", cfg.TEAM_PLATFORM,
              f"{MODEL}: {PCT} of predictions leave without a label",
              f"More than {num(T.unlabelled_share * 100)} % of the predictions kept for delayed labels over 6 hours "
              "expired or were evicted before their label arrived: the label feed is late, broken, or sends "
              "other ids.", PCT, dashboard="quality"),
        Alert("OtelMlLabelStoreFull",
              f"sum {by(MV)} (increase({unl}{sel(EVICTED)}[15m])) > 0",
              "15m", "P2", cfg.TEAM_PLATFORM,
              f"{MODEL}: the delayed-label store is full ({COUNT} evicted)",
              "Predictions are evicted before their TTL because max_pending_outcomes is too small for the label "
              "delay: raise it (memory: about 150 MiB per million pending predictions).", COUNT,
              dashboard="quality"),
        Alert("OtelMlLabelsArriveTooLate",
              f"{late}\n/\n({late} + sum {by(MV)} (rate(ml_outcomes_total{sel()}[1h])))\n> {num(T.late_label_share)}",
              "30m", "P3", cfg.TEAM_PLATFORM,
              f"{MODEL}: {PCT} of labels arrive after their prediction expired",
              f"More than {num(T.late_label_share * 100)} % of labels came after outcome_ttl_s: raise the TTL so "
              "accuracy counts them.", PCT, dashboard="quality"),
    ]
    return [Group("otel_ml.labels", alerts)]


FILES = [
    RuleFile("pipeline.rules.yml", "Collector, scrape targets and dropped telemetry.", pipeline_rules()),
    RuleFile("inference.rules.yml", "Requests, errors and latency per model version.", inference_rules()),
    RuleFile("slo.rules.yml", "Availability and latency objectives: multi-window multi-burn-rate.", slo_rules()),
    RuleFile("llm.rules.yml", "LLM generations (GenAI semantic conventions).", llm_rules()),
    RuleFile("gpu.rules.yml", "GPUs (hardware semantic conventions).", gpu_rules()),
    RuleFile("model.rules.yml", "Model quality: confidence, accuracy and F1 from delayed labels.", model_rules()),
    RuleFile("drift.rules.yml", "Fleet-wide drift from per-bin counters; thresholds are the SDK's defaults.",
             drift_rules()),
    RuleFile("data_quality.rules.yml", "Missing, unseen, out-of-range and mistyped feature values.",
             data_quality_rules()),
    RuleFile("canary.rules.yml", "A canary or A/B variant against the model's main variant.", canary_rules()),
    RuleFile("labels.rules.yml", "The delayed-label pipeline.", label_rules()),
]


_DURATION = re.compile(r"(\[|offset )(\d+)([smhd])(\])?")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def scale_duration(text: str, scale: float) -> str:
    """A duration (``5m``) times ``scale``, in whole seconds, at least 1 s."""
    return f"{max(1, round(seconds(text) * scale))}s"


def _scale_expr(expr: str, scale: float) -> str:
    def sub(m: re.Match[str]) -> str:
        return f"{m.group(1)}{scale_duration(m.group(2) + m.group(3), scale)}{m.group(4) or ''}"

    return _DURATION.sub(sub, expr)


def _scaled(doc: dict[str, Any], scale: float) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for g in out["groups"]:
        g["interval"] = scale_duration(g.get("interval", "1m"), scale)
        for r in g["rules"]:
            r["expr"] = _scale_expr(r["expr"], scale)
            if "for" in r:
                r["for"] = scale_duration(r["for"], scale)
    return out


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(f: RuleFile, scale: float = 1.0) -> str:
    doc: dict[str, Any] = {"groups": [
        {"name": g.name, **({"interval": g.interval} if g.interval != "1m" else {}),
         "rules": [r.doc() for r in g.rules]} for g in f.groups]}
    header = (f"# GENERATED by alerts/generate.py from alerts/config.py - do not edit.\n"
              f"# {f.doc}\n# Runbooks: alerts/runbooks.md. Tests: alerts/tests/ (promtool test rules).\n")
    if scale != 1.0:
        doc = _scaled(doc, scale)
        header += f"# Every duration scaled by {scale!r} for a demo stack: not the shipped rules.\n"
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return header + body


def alerts() -> list[Alert]:
    return [r for f in FILES for g in f.groups for r in g.rules if isinstance(r, Alert)]


def probes() -> dict[str, str]:
    """Each alert's measured quantity (see :attr:`Alert.probe`), by alert name."""
    return {a.alert: a.probe_expr for a in alerts()}


def records() -> list[Record]:
    return [r for f in FILES for g in f.groups for r in g.rules if isinstance(r, Record)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file is stale")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply every duration (demo stacks)")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: alerts/)")
    args = parser.parse_args(argv[1:])
    if not 0 < args.time_scale <= 1:
        print(f"--time-scale must be in (0, 1], got {args.time_scale}", file=sys.stderr)
        return 2
    if args.time_scale != 1.0 and args.out.resolve() == HERE:
        print("--time-scale writes demo rules: give --out a folder other than alerts/", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    stale = []
    for f in FILES:
        path = args.out / f.name
        text = render(f, args.time_scale)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(f.name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)} (run python alerts/generate.py)", file=sys.stderr)
        return 1
    if "--check" not in argv:
        print(f"wrote {len(FILES)} files: {len(alerts())} alerts, {len(records())} recording rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
