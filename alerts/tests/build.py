"""Write alerts/tests/<file>.test.yml: promtool unit tests for every otel_ml rule.

    python alerts/tests/build.py    # then: promtool test rules alerts/tests/*.test.yml

Each alert is tested on both sides of its ``for:`` (pending, not firing, before; firing with its
exact labels and annotations after) and, where it has one, against its guard (the same
condition on traffic too low to alert on). Every recording rule's value is checked. The expected
numbers, labels and annotation texts are written here by hand from the input series - not taken
from alerts/generate.py - so a wrong expression fails. Only the static ``description`` text is
read from the rule files. ``drift.test.yml`` is built from real data by gen_drift_test.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE.parent
RUNBOOK = "https://github.com/otel-ml/otel-ml/blob/main/alerts/runbooks.md"
GRAFANA = "http://localhost:3000/d"

# What an alert's routing labels must be: severity from the priority, and the owning team.
ROUTING = {
    "OtelMlHighErrorRatio": ("P1", "ml-platform"), "OtelMlHighLatencyP99": ("P2", "ml-platform"),
    "OtelMlCollectorDown": ("P0", "ml-platform"), "OtelMlCollectorRefusingData": ("P1", "ml-platform"),
    "OtelMlCollectorExportFailing": ("P1", "ml-platform"), "OtelMlCollectorQueueFilling": ("P2", "ml-platform"),
    "OtelMlServiceStoppedReporting": ("P0", "ml-platform"), "OtelMlTelemetryDropped": ("P2", "ml-platform"),
    "OtelMlAvailabilityBudgetBurnFast": ("P0", "ml-platform"),
    "OtelMlAvailabilityBudgetBurnSlow": ("P2", "ml-platform"),
    "OtelMlLatencyBudgetBurnFast": ("P0", "ml-platform"), "OtelMlLatencyBudgetBurnSlow": ("P2", "ml-platform"),
    "OtelMlLLMSlowTimeToFirstToken": ("P2", "ml-platform"),
    "OtelMlLLMSlowTimePerOutputToken": ("P2", "ml-platform"), "OtelMlLLMErrors": ("P1", "ml-platform"),
    "OtelMlGPUMemoryNearlyFull": ("P1", "ml-platform"), "OtelMlGPUSaturated": ("P3", "ml-platform"),
    "OtelMlGPUHot": ("P2", "ml-platform"), "OtelMlGPUUncorrectedErrors": ("P0", "ml-platform"),
    "OtelMlConfidenceDrop": ("P2", "ml-platform"), "OtelMlAccuracyDrop": ("P1", "ml-platform"),
    "OtelMlF1Drop": ("P2", "ml-platform"),
    "OtelMlFeatureMissingValues": ("P2", "data"), "OtelMlFeatureUnseenCategories": ("P2", "data"),
    "OtelMlFeatureOutOfRange": ("P2", "data"), "OtelMlFeatureTypeMismatch": ("P1", "data"),
    "OtelMlCanaryErrorRatioWorse": ("P1", "ml-platform"), "OtelMlCanaryLatencyWorse": ("P2", "ml-platform"),
    "OtelMlCanaryAccuracyWorse": ("P1", "ml-platform"),
    "OtelMlLabelBacklog": ("P2", "ml-platform"), "OtelMlLabelStoreFull": ("P2", "ml-platform"),
    "OtelMlLabelsArriveTooLate": ("P3", "ml-platform"),
    "OtelMlPredictionDrift": ("P2", "ml-platform"),
}
SEVERITY = {"P0": "critical", "P1": "warning", "P2": "warning", "P3": "info"}

# Series labels: one replica of service "svc" serving model "m" version "1".
REPLICA = 'job="svc", instance="i1", service_name="svc"'
M = f'{REPLICA}, ml_model_name="m", ml_model_version="1"'
MODEL_LABELS = {"service_name": "svc", "ml_model_name": "m", "ml_model_version": "1"}
SVC_MODEL = {"service_name": "svc", "ml_model_name": "m"}
DUR = "ml_inference_duration_seconds"


def link(uid: str, **variables: str) -> str:
    query = "&".join(f"var-{k}={v}" for k, v in variables.items())
    return f"{GRAFANA}/{uid}" + (f"?{query}" if query else "")


@dataclass
class Fires:
    """An alert that must be absent at ``before`` and firing at ``after`` (``for:`` between)."""

    alert: str
    before: str
    after: str
    labels: dict[str, str]
    summary: str
    value: str
    dashboard: str
    description: str | None = None  # only for descriptions with templates


@dataclass
class Quiet:
    """An alert that must not fire at ``at`` (a guard holds it back)."""

    alert: str
    at: str


@dataclass
class Value:
    """A recording rule (rounded to 1e-3) and its expected samples."""

    expr: str
    at: str
    samples: list[tuple[dict[str, str], float]]


@dataclass
class Case:
    name: str
    series: list[tuple[str, str]]
    checks: list[Fires | Quiet | Value]
    interval: str = "1m"


@dataclass
class TestFile:
    rules: str
    cases: list[Case] = field(default_factory=list)
    out: str = ""  # the test file's name, when not <rules>.test.yml

    @property
    def name(self) -> str:
        return self.out or self.rules.replace(".rules.yml", ".test.yml")


def _descriptions() -> dict[str, str]:
    out = {}
    for path in RULES.glob("*.rules.yml"):
        for g in yaml.safe_load(path.read_text())["groups"]:
            for r in g["rules"]:
                if "alert" in r:
                    out[r["alert"]] = r["annotations"]["description"]
    return out


def _labels(d: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in d.items()) + "}"


def render(tf: TestFile, descriptions: dict[str, str]) -> str:
    # Every rule file: alerts read recordings of other files (the canary ones, accuracy and latency).
    files = "\n".join(f"  - ../{p.name}" for p in sorted(RULES.glob("*.rules.yml")))
    out = [f"# GENERATED by alerts/tests/build.py - expected values are written by hand there; tests {tf.rules}.",
           f"rule_files:\n{files}", "evaluation_interval: 1m", "tests:"]
    for case in tf.cases:
        out.append(f"  # {case.name}")
        out.append(f"  - interval: {case.interval}\n    input_series:")
        for s, v in case.series:
            out.append(f"      - series: '{s}'\n        values: '{v}'")
        alerts = [c for c in case.checks if not isinstance(c, Value)]
        values = [c for c in case.checks if isinstance(c, Value)]
        if alerts:
            out.append("    alert_rule_test:")
        for c in alerts:
            if isinstance(c, Quiet):
                out.append(f"      - alertname: {c.alert}\n        eval_time: {c.at}\n        exp_alerts: []")
                continue
            priority, team = ROUTING[c.alert]
            labels = {"severity": SEVERITY[priority], "priority": priority, "team": team, **c.labels}
            annotations = {
                "summary": c.summary,
                "description": c.description if c.description is not None else descriptions[c.alert],
                "value": c.value,
                "runbook_url": f"{RUNBOOK}#{c.alert.lower()}",
                "dashboard_url": c.dashboard,
            }
            out.append(f"      - alertname: {c.alert}\n        eval_time: {c.before}\n        exp_alerts: []")
            body = yaml.safe_dump([{"exp_labels": labels, "exp_annotations": annotations}], sort_keys=False,
                                  width=1000, allow_unicode=True)
            body = "\n".join("          " + line for line in body.rstrip().splitlines())
            out.append(f"      - alertname: {c.alert}\n        eval_time: {c.after}\n        exp_alerts:\n{body}")
        if values:
            out.append("    promql_expr_test:")
        for v in values:
            out.append(f"      - expr: 'round({v.expr}, 0.001)'\n        eval_time: {v.at}\n        exp_samples:")
            if not v.samples:
                out[-1] = out[-1].replace("exp_samples:", "exp_samples: []")
            for labels, value in v.samples:
                out.append(f"          - labels: '{_labels(labels)}'\n            value: {value!r}")
    return "\n".join(out) + "\n"


# --- inference.rules.yml -----------------------------------------------------------------------

LEVEL_MV = "service_name_ml_model_name_ml_model_version_ml_model_variant"
LEVEL_VAR = "service_name_ml_model_name_ml_model_variant"

INFERENCE = TestFile("inference.rules.yml", [
    Case("errors: 6 of 66 calls a minute fail (9.1 %) at 1.1 calls/s", [
        (f"{DUR}_count{{{M}}}", "0+60x30"),
        (f'{DUR}_count{{{M}, error_type="ValueError"}}', "0+6x30"),
    ], [
        Value(f"{LEVEL_MV}:ml_inference_requests:rate5m", "10m", [(MODEL_LABELS, 1.1)]),
        Value(f"{LEVEL_MV}:ml_inference_error:ratio_rate5m", "10m", [(MODEL_LABELS, 0.091)]),
        Value(f"{LEVEL_VAR}:ml_inference_requests:rate15m", "20m", [(SVC_MODEL, 1.1)]),
        Value(f"{LEVEL_VAR}:ml_inference_error:ratio_rate15m", "20m", [(SVC_MODEL, 0.091)]),
        Fires("OtelMlHighErrorRatio", "5m", "7m", MODEL_LABELS, "m 1 in svc: 9.091% of inferences fail", "9.091%",
              link("otel-ml-overview", service="svc", model="m")),
    ]),
    Case("errors: half the calls fail, but only 2 calls a minute (guard)", [
        (f"{DUR}_count{{{M}}}", "0+1x30"),
        (f'{DUR}_count{{{M}, error_type="ValueError"}}', "0+1x30"),
    ], [Quiet("OtelMlHighErrorRatio", "20m")]),
    Case("latency: every call takes 0.5-0.75 s: p99 = 0.5 + 0.25 x 0.99 = 0.7475 s", [
        (f'{DUR}_bucket{{{M}, le="0.25"}}', "0x30"),
        (f'{DUR}_bucket{{{M}, le="0.5"}}', "0x30"),
        (f'{DUR}_bucket{{{M}, le="0.75"}}', "0+60x30"),
        (f'{DUR}_bucket{{{M}, le="1.0"}}', "0+60x30"),
        (f'{DUR}_bucket{{{M}, le="+Inf"}}', "0+60x30"),
        (f"{DUR}_count{{{M}}}", "0+60x30"),
    ], [
        Value(f"{LEVEL_MV}:{DUR}:p99_rate5m", "10m", [(MODEL_LABELS, 0.748)]),
        Value(f"{LEVEL_VAR}:{DUR}:p99_rate15m", "20m", [(SVC_MODEL, 0.748)]),
        Fires("OtelMlHighLatencyP99", "10m", "12m", MODEL_LABELS, "m 1 in svc: p99 inference latency 747.5ms",
              "747.5ms", link("otel-ml-overview", service="svc", model="m")),
    ]),
])


# --- slo.rules.yml ------------------------------------------------------------------------------

SLO_RECORDS = [(f"service_name_ml_model_name:ml_inference_{kind}:ratio_rate{w}", 0.2)
               for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d") for kind in ("error", "slow")]
SLO = TestFile("slo.rules.yml", [
    Case("recordings: 20 % of calls fail; of the others 20 % are slower than 0.5 s, every window", [
        (f"{DUR}_count{{{M}}}", "0+80x200"),
        (f'{DUR}_bucket{{{M}, le="0.5"}}', "0+64x200"),
        (f'{DUR}_count{{{M}, error_type="TimeoutError"}}', "0+20x200"),
    ], [Value(name, "190m", [(SVC_MODEL, v)]) for name, v in SLO_RECORDS]),
    Case("availability, fast burn: 2 % errors > 14.4 x 0.1 %; 10 failures after 5 minutes", [
        (f"{DUR}_count{{{M}}}", "0+98x120"),
        (f'{DUR}_count{{{M}, error_type="TimeoutError"}}', "0+2x120"),
    ], [
        Fires("OtelMlAvailabilityBudgetBurnFast", "6m", "8m", SVC_MODEL,
              "m in svc burns its error budget fast (2% errors)", "2%",
              link("otel-ml-overview", service="svc", model="m")),
    ]),
    Case("availability, fast burn: one failure on a quiet night (low-traffic guard)", [
        (f"{DUR}_count{{{M}}}", "0+1x120"),
        (f'{DUR}_count{{{M}, error_type="TimeoutError"}}', "0x30 1x90"),
    ], [Quiet("OtelMlAvailabilityBudgetBurnFast", "40m"), Quiet("OtelMlAvailabilityBudgetBurnSlow", "110m")]),
    Case("availability, slow burn: 0.5 % errors > 3 x 0.1 % over 1d/2h, 5 failures per 5 minutes", [
        (f"{DUR}_count{{{M}}}", "0+995x100"),
        (f'{DUR}_count{{{M}, error_type="TimeoutError"}}', "0+5x100"),
    ], [
        Quiet("OtelMlAvailabilityBudgetBurnFast", "60m"),
        Fires("OtelMlAvailabilityBudgetBurnSlow", "15m", "30m", SVC_MODEL,
              "m in svc is eating its error budget (0.5% errors)", "0.5%",
              link("otel-ml-overview", service="svc", model="m")),
    ], interval="5m"),
    Case("latency, fast burn: 20 % of calls slower than 0.5 s > 14.4 x 1 %", [
        (f"{DUR}_count{{{M}}}", "0+100x120"),
        (f'{DUR}_bucket{{{M}, le="0.5"}}', "0+80x120"),
    ], [
        Fires("OtelMlLatencyBudgetBurnFast", "2m", "4m", SVC_MODEL,
              "m in svc: 20% of inferences slower than 0.5 s", "20%",
              link("otel-ml-overview", service="svc", model="m")),
    ]),
    Case("latency, slow burn: 5 % slower than 0.5 s > 3 x 1 % over 1d/2h", [
        (f"{DUR}_count{{{M}}}", "0+100x100"),
        (f'{DUR}_bucket{{{M}, le="0.5"}}', "0+95x100"),
    ], [
        Quiet("OtelMlLatencyBudgetBurnFast", "60m"),
        Fires("OtelMlLatencyBudgetBurnSlow", "15m", "30m", SVC_MODEL,
              "m in svc: 5% of inferences slower than 0.5 s over days", "5%",
              link("otel-ml-overview", service="svc", model="m")),
    ], interval="5m"),
])


# --- pipeline.rules.yml -------------------------------------------------------------------------

COLLECTOR = 'job="otel-collector", instance="c:8888"'
PIPELINE = TestFile("pipeline.rules.yml", [
    Case("collector: its own telemetry stops being scraped at minute 3", [
        ('up{job="otel-collector", instance="c:8888"}', "1 1 1 0x10"),
        ('up{job="otel-ml", instance="c:8889"}', "1x13"),
    ], [
        Fires("OtelMlCollectorDown", "4m", "6m", {"job": "otel-collector", "instance": "c:8888"},
              "The otel_ml collector is down or not scraped (otel-collector)", "0", link("otel-ml-overview")),
    ]),
    Case("collector: never scraped at all", [('up{job="otel-ml", instance="c:8889"}', "1x5")], [
        Fires("OtelMlCollectorDown", "1m", "3m", {"job": "otel-collector"},
              "The otel_ml collector is down or not scraped (otel-collector)", "1", link("otel-ml-overview")),
    ]),
    Case("collector: the OTLP receiver refuses 2 spans/s (and no metrics or logs); the Jaeger exporter fails 2 "
         "spans/s; every signal's counter exists, as on a real collector", [
        (f'otelcol_receiver_refused_spans{{{COLLECTOR}, receiver="otlp", transport="grpc"}}', "0+120x20"),
        (f'otelcol_receiver_refused_metric_points{{{COLLECTOR}, receiver="otlp", transport="grpc"}}', "0x20"),
        (f'otelcol_receiver_refused_log_records{{{COLLECTOR}, receiver="otlp", transport="grpc"}}', "0x20"),
        (f'otelcol_exporter_send_failed_spans{{{COLLECTOR}, exporter="otlp_grpc/jaeger"}}', "0+120x20"),
        (f'otelcol_exporter_send_failed_log_records{{{COLLECTOR}, exporter="otlp_grpc/jaeger"}}', "0x20"),
        (f'otelcol_exporter_send_failed_metric_points{{{COLLECTOR}, exporter="otlp_grpc/jaeger"}}', "0x20"),
        (f'otelcol_exporter_queue_size{{{COLLECTOR}, exporter="otlp_http/loki", data_type="logs"}}', "900x20"),
        (f'otelcol_exporter_queue_capacity{{{COLLECTOR}, exporter="otlp_http/loki", data_type="logs"}}', "1000x20"),
    ], [
        Fires("OtelMlCollectorRefusingData", "5m", "7m",
              {"job": "otel-collector", "instance": "c:8888", "receiver": "otlp"},
              "The collector refuses telemetry on otlp (2/s)", "2/s", link("otel-ml-overview")),
        Fires("OtelMlCollectorExportFailing", "5m", "7m",
              {"job": "otel-collector", "instance": "c:8888", "exporter": "otlp_grpc/jaeger"},
              "The collector cannot deliver to otlp_grpc/jaeger (2 items/s)", "2/s", link("otel-ml-overview")),
        Fires("OtelMlCollectorQueueFilling", "4m", "6m",
              {"job": "otel-collector", "instance": "c:8888", "exporter": "otlp_http/loki"},
              "The collector's otlp_http/loki queue is 90% full", "90%", link("otel-ml-overview")),
    ]),
    Case("service: reports for 30 minutes, then nothing; another keeps reporting", [
        (f"{DUR}_count{{{M}}}", "0+60x30 _x30"),
        (f'{DUR}_count{{job="other", instance="i2", service_name="other", ml_model_name="m2", '
         f'ml_model_version="1"}}', "0+60x60"),
    ], [
        Fires("OtelMlServiceStoppedReporting", "38m", "43m", {"service_name": "svc"},
              "svc stopped reporting inference metrics", "1", link("otel-ml-overview", service="svc")),
    ]),
    Case("telemetry dropped: 3 invalid confidences a minute", [
        (f'otel_ml_dropped_total{{{REPLICA}, otel_ml_reason="invalid_confidence", otel_ml_signal="metrics"}}',
         "0+3x30"),
    ], [
        Fires("OtelMlTelemetryDropped", "10m", "12m", {"service_name": "svc", "otel_ml_reason": "invalid_confidence"},
              "svc drops otel_ml telemetry (invalid_confidence)", "30",
              link("otel-ml-overview", service="svc")),
    ]),
])


# --- llm.rules.yml -------------------------------------------------------------------------------

LLM = f'{REPLICA}, ml_model_name="m", ml_model_version="1", gen_ai_request_model="llm"'
LLM_LABELS = {"service_name": "svc", "ml_model_name": "m", "gen_ai_request_model": "llm"}
LLM_TESTS = TestFile("llm.rules.yml", [
    Case("first token after 1-2.5 s (p90 = 1 + 1.5 x 0.9 = 2.35 s); then 0.1-0.25 s a token (p90 0.235 s)", [
        (f'gen_ai_server_time_to_first_token_seconds_bucket{{{LLM}, le="0.5"}}', "0x30"),
        (f'gen_ai_server_time_to_first_token_seconds_bucket{{{LLM}, le="1.0"}}', "0x30"),
        (f'gen_ai_server_time_to_first_token_seconds_bucket{{{LLM}, le="2.5"}}', "0+60x30"),
        (f'gen_ai_server_time_to_first_token_seconds_bucket{{{LLM}, le="+Inf"}}', "0+60x30"),
        (f"gen_ai_server_time_to_first_token_seconds_count{{{LLM}}}", "0+60x30"),
        (f'gen_ai_server_time_per_output_token_seconds_bucket{{{LLM}, le="0.05"}}', "0x30"),
        (f'gen_ai_server_time_per_output_token_seconds_bucket{{{LLM}, le="0.1"}}', "0x30"),
        (f'gen_ai_server_time_per_output_token_seconds_bucket{{{LLM}, le="0.25"}}', "0+60x30"),
        (f'gen_ai_server_time_per_output_token_seconds_bucket{{{LLM}, le="+Inf"}}', "0+60x30"),
        (f"gen_ai_server_time_per_output_token_seconds_count{{{LLM}}}", "0+60x30"),
    ], [
        Fires("OtelMlLLMSlowTimeToFirstToken", "10m", "12m", LLM_LABELS,
              "llm in svc: p90 time to first token 2.35s", "2.35s", link("otel-ml-llm", service="svc", model="m")),
        Fires("OtelMlLLMSlowTimePerOutputToken", "10m", "12m", LLM_LABELS,
              "llm in svc: p90 time per output token 235ms", "235ms",
              link("otel-ml-llm", service="svc", model="m")),
    ]),
    Case("generations: 6 of 60 a minute fail", [
        (f"gen_ai_server_request_duration_seconds_count{{{LLM}}}", "0+54x30"),
        (f'gen_ai_server_request_duration_seconds_count{{{LLM}, error_type="TimeoutError"}}', "0+6x30"),
    ], [
        Fires("OtelMlLLMErrors", "5m", "7m", LLM_LABELS, "llm in svc: 10% of generations fail", "10%",
              link("otel-ml-llm", service="svc", model="m")),
    ]),
])


# --- gpu.rules.yml -------------------------------------------------------------------------------

GPU = f'{REPLICA}, hw_id="gpu-0", hw_name="NVIDIA H100"'
GPU_LABELS = {"service_name": "svc", "instance": "i1", "hw_id": "gpu-0", "hw_name": "NVIDIA H100"}
GPU_TESTS = TestFile("gpu.rules.yml", [
    Case("one GPU: 77 of 80 GB used, 98 % busy, 90 °C, an uncorrected error at minute 5", [
        (f"hw_gpu_memory_usage_bytes{{{GPU}}}", "77e9x40"),
        (f"hw_gpu_memory_limit_bytes{{{GPU}}}", "80e9x40"),
        (f'hw_gpu_utilization_ratio{{{GPU}, hw_gpu_task="general"}}', "0.98x40"),
        (f'hw_temperature_celsius{{{GPU}, hw_type="gpu"}}', "90x40"),
        (f'hw_errors_total{{{GPU}, hw_type="gpu", error_type="uncorrected"}}', "0 0 0 0 0 1x35"),
    ], [
        Fires("OtelMlGPUMemoryNearlyFull", "9m", "11m", GPU_LABELS,
              "GPU NVIDIA H100 (gpu-0) of svc memory 96.25% used", "96.25%", link("otel-ml-gpu", service="svc")),
        Fires("OtelMlGPUSaturated", "29m", "31m", GPU_LABELS, "GPU NVIDIA H100 of svc busy 98% of the time", "98%",
              link("otel-ml-gpu", service="svc")),
        Fires("OtelMlGPUHot", "9m", "11m", GPU_LABELS, "GPU NVIDIA H100 of svc at 90 °C", "90 °C",
              link("otel-ml-gpu", service="svc")),
        Fires("OtelMlGPUUncorrectedErrors", "5m", "7m", GPU_LABELS,
              "GPU NVIDIA H100 of svc reports uncorrected errors", "1", link("otel-ml-gpu", service="svc")),
    ]),
])


# --- model.rules.yml ---------------------------------------------------------------------------

def _outcomes(labels: str, right: str, wrong: str) -> list[tuple[str, str]]:
    return [(f'ml_outcomes_total{{{labels}, ml_prediction_class="a", ml_outcome_class="a"}}', right),
            (f'ml_outcomes_total{{{labels}, ml_prediction_class="a", ml_outcome_class="b"}}', wrong),
            (f'ml_outcomes_total{{{labels}, ml_prediction_class="b", ml_outcome_class="b"}}', "0x200")]


REG = f'{REPLICA}, ml_model_name="reg", ml_model_version="1"'
MODEL = TestFile("model.rules.yml", [
    Case("accuracy 0.9 for two hours, then 0.6; a regression model has no accuracy", [
        *_outcomes(M, "0+9x120 1086+6x80", "0+1x120 124+4x80"),
        (f"ml_outcomes_total{{{REG}}}", "0+10x200"),
    ], [
        Value(f"{LEVEL_MV}:ml_outcomes:rate1h", "60m", [(MODEL_LABELS, 0.167)]),
        Value(f"{LEVEL_MV}:ml_outcomes_correct:rate1h", "60m", [(MODEL_LABELS, 0.15)]),
        Value(f"{LEVEL_MV}:ml_accuracy:ratio_rate1h", "60m", [(MODEL_LABELS, 0.9)]),
        Value(f'{LEVEL_MV}:ml_accuracy:ratio_rate1h{{ml_model_name="reg"}}', "60m", []),
        Value(f"{LEVEL_VAR}:ml_outcomes:rate1h", "60m", [(SVC_MODEL, 0.167)]),
        Value(f"{LEVEL_VAR}:ml_outcomes_correct:rate1h", "60m", [(SVC_MODEL, 0.15)]),
        Value(f"{LEVEL_VAR}:ml_accuracy:ratio_rate1h", "60m", [(SVC_MODEL, 0.9)]),
        # rate() over a day that holds one hour of data divides by the day: 600 / 86400 and 540 / 86400
        Value(f"{LEVEL_MV}:ml_outcomes:rate1d", "60m", [(MODEL_LABELS, 0.007)]),
        Value(f"{LEVEL_MV}:ml_outcomes_correct:rate1d", "60m", [(MODEL_LABELS, 0.006)]),
        Value(f"{LEVEL_MV}:ml_accuracy:ratio_rate1d", "60m", [(MODEL_LABELS, 0.9)]),
        Value(f"{LEVEL_MV}:ml_accuracy:ratio_rate1h", "190m", [(MODEL_LABELS, 0.6)]),
        Fires("OtelMlAccuracyDrop", "150m", "190m", MODEL_LABELS, "m 1: accuracy fell to 60%", "60%",
              link("otel-ml-quality-drift", service="svc", model="m")),
    ]),
    Case("all predictions correct: accuracy 1, never a drop", _outcomes(M, "0+10x200", "0x200"), [
        Value(f"{LEVEL_MV}:ml_accuracy:ratio_rate1h", "100m", [(MODEL_LABELS, 1.0)]),
        Quiet("OtelMlAccuracyDrop", "190m"),
    ]),
    Case("confidence 0.9 on average for two hours, then 0.6", [
        (f"ml_prediction_confidence_sum{{{M}}}", "0+54x120 6516+36x59"),
        (f"ml_prediction_confidence_count{{{M}}}", "0+60x180"),
    ], [
        Value(f"{LEVEL_MV}:ml_prediction_confidence:mean_rate30m", "60m", [(MODEL_LABELS, 0.9)]),
        Value(f"{LEVEL_MV}:ml_prediction_confidence:mean_rate1d", "60m", [(MODEL_LABELS, 0.9)]),
        Fires("OtelMlConfidenceDrop", "140m", "165m", MODEL_LABELS, "m 1: mean confidence fell to 0.60", "0.600",
              link("otel-ml-quality-drift", service="svc", model="m")),
    ]),
    Case("F1 0.9 for two hours, then 0.7", [
        (f'ml_quality_score_ratio{{{M}, ml_quality_metric="f1"}}', "0.9x120 0.7x80"),
    ], [
        Fires("OtelMlF1Drop", "140m", "160m", MODEL_LABELS, "m 1: F1 fell to 0.700", "0.700",
              link("otel-ml-quality-drift", service="svc", model="m")),
    ]),
])


# --- data_quality.rules.yml -------------------------------------------------------------------

ISSUES = ("missing", "nan", "inf", "unseen_category", "out_of_range", "type_mismatch")


def _feature(name: str, values: int, **issues: int) -> list[tuple[str, str]]:
    labels = f'{M}, ml_feature_name="{name}"'
    out = [(f"ml_feature_values_total{{{labels}}}", f"0+{values}x40")]
    for issue in ISSUES:
        n = issues.get(issue, 0)
        out.append((f'ml_data_quality_issues_total{{{labels}, ml_data_quality_issue="{issue}"}}',
                    f"0+{n}x40" if n else "0x40"))
    return out


def _feat(name: str) -> dict[str, str]:
    return {**MODEL_LABELS, "ml_feature_name": name}


DATA_QUALITY = TestFile("data_quality.rules.yml", [
    Case("four features, 100 rows a minute each: 10 % missing, 5 % unseen, 10 % out of range, 2 % mistyped", [
        *_feature("age", 90, missing=10),
        *_feature("city", 100, unseen_category=5),
        *_feature("income", 100, out_of_range=10),
        *_feature("score", 98, type_mismatch=2),
        *_feature("clean", 100),
    ], [
        Value("service_name_ml_model_name_ml_model_version_ml_feature_name:ml_feature_rows:rate15m", "20m",
              [(_feat(f), 1.667) for f in ("age", "city", "clean", "income", "score")]),
        Value("service_name_ml_model_name_ml_model_version_ml_feature_name_ml_data_quality_issue:"
              'ml_data_quality_issues:ratio_rate15m{ml_feature_name="age"}', "20m",
              [({**_feat("age"), "ml_data_quality_issue": i}, 0.1 if i == "missing" else 0.0) for i in ISSUES]),
        Fires("OtelMlFeatureMissingValues", "15m", "17m", _feat("age"), "m 1: 10% of age values are missing",
              "10%", link("otel-ml-quality-drift", service="svc", model="m")),
        Fires("OtelMlFeatureUnseenCategories", "15m", "17m", _feat("city"),
              "m 1: 5% of city values are categories never seen in training", "5%",
              link("otel-ml-quality-drift", service="svc", model="m")),
        Fires("OtelMlFeatureOutOfRange", "15m", "17m", _feat("income"),
              "m 1: 10% of income values are outside the training range", "10%",
              link("otel-ml-quality-drift", service="svc", model="m")),
        Fires("OtelMlFeatureTypeMismatch", "15m", "17m", _feat("score"),
              "m 1: 2% of score values are of the wrong type or infinite", "2%",
              link("otel-ml-quality-drift", service="svc", model="m")),
    ]),
    Case("half the values missing, but 6 rows in 15 minutes (guard)", [
        (f'ml_feature_values_total{{{M}, ml_feature_name="age"}}', "0 0 1 1 1 2 2 2 3x30"),
        *[(f'ml_data_quality_issues_total{{{M}, ml_feature_name="age", ml_data_quality_issue="{i}"}}',
           "0 0 1 1 1 2 2 2 3x30" if i == "missing" else "0x38") for i in ISSUES],
    ], [Quiet("OtelMlFeatureMissingValues", "30m")]),
])


# --- canary.rules.yml ----------------------------------------------------------------------------

MAIN = M
CANARY = f'{REPLICA}, ml_model_name="m", ml_model_version="2", ml_model_variant="canary"'
CANARY_LABELS = {"service_name": "svc", "ml_model_name": "m", "ml_model_variant": "canary"}


def _latency(labels: str, fast: int, slow: int) -> list[tuple[str, str]]:
    """Requests a minute under 0.1 s and between 0.1 and 0.25 s."""
    return [(f'{DUR}_bucket{{{labels}, le="0.1"}}', f"0+{fast}x40" if fast else "0x40"),
            (f'{DUR}_bucket{{{labels}, le="0.25"}}', f"0+{fast + slow}x40"),
            (f'{DUR}_bucket{{{labels}, le="+Inf"}}', f"0+{fast + slow}x40")]


CANARY_TESTS = TestFile("canary.rules.yml", [
    Case("canary fails 10 % (main 1 %); its p99 is 0.2485 s (main 0.099 s)", [
        (f"{DUR}_count{{{MAIN}}}", "0+99x40"), (f'{DUR}_count{{{MAIN}, error_type="E"}}', "0+1x40"),
        (f"{DUR}_count{{{CANARY}}}", "0+90x40"), (f'{DUR}_count{{{CANARY}, error_type="E"}}', "0+10x40"),
        *_latency(MAIN, 100, 0), *_latency(CANARY, 0, 100),
    ], [
        Fires("OtelMlCanaryErrorRatioWorse", "10m", "12m", CANARY_LABELS,
              "m variant canary fails 10% of inferences, worse than the main variant", "10%",
              link("otel-ml-ab", service="svc", model="m")),
        Fires("OtelMlCanaryLatencyWorse", "10m", "12m", CANARY_LABELS,
              "m variant canary: p99 248.5ms, slower than the main variant", "248.5ms",
              link("otel-ml-ab", service="svc", model="m")),
    ]),
    Case("canary and main equally good (no alert)", [
        (f"{DUR}_count{{{MAIN}}}", "0+99x40"), (f'{DUR}_count{{{MAIN}, error_type="E"}}', "0+1x40"),
        (f"{DUR}_count{{{CANARY}}}", "0+99x40"), (f'{DUR}_count{{{CANARY}, error_type="E"}}', "0+1x40"),
        *_latency(MAIN, 100, 0), *_latency(CANARY, 100, 0),
    ], [Quiet("OtelMlCanaryErrorRatioWorse", "20m"), Quiet("OtelMlCanaryLatencyWorse", "20m")]),
    Case("canary accuracy 0.7 against the main variant's 0.9", [
        *_outcomes(MAIN, "0+90x60", "0+10x60"), *_outcomes(CANARY, "0+70x60", "0+30x60"),
    ], [
        Fires("OtelMlCanaryAccuracyWorse", "30m", "32m", CANARY_LABELS,
              "m variant canary: accuracy 70%, worse than the main variant", "70%",
              link("otel-ml-ab", service="svc", model="m")),
    ]),
])


# --- labels.rules.yml ----------------------------------------------------------------------------

LABELS = TestFile("labels.rules.yml", [
    Case("8 of 10 predictions expire unlabelled", [
        (f'ml_predictions_unlabelled_total{{{M}, otel_ml_reason="expired"}}', "0+8x100"),
        (f'ml_outcomes_total{{{M}, ml_prediction_class="a", ml_outcome_class="a"}}', "0+2x100"),
    ], [
        Fires("OtelMlLabelBacklog", "35m", "50m", MODEL_LABELS, "m 1: 80% of predictions leave without a label",
              "80%", link("otel-ml-quality-drift", service="svc", model="m")),
    ]),
    Case("the store evicts 5 predictions a minute from minute 3", [
        (f'ml_predictions_unlabelled_total{{{M}, otel_ml_reason="evicted"}}', "0 0 0 5+5x30"),
    ], [
        Fires("OtelMlLabelStoreFull", "17m", "19m", MODEL_LABELS, "m 1: the delayed-label store is full (75 evicted)",
              "75", link("otel-ml-quality-drift", service="svc", model="m")),
    ]),
    Case("2 of 10 labels arrive after their prediction expired", [
        (f'ml_outcomes_unmatched_total{{{M}, otel_ml_reason="expired"}}', "0+2x60"),
        (f'ml_outcomes_total{{{M}, ml_prediction_class="a", ml_outcome_class="a"}}', "0+8x60"),
    ], [
        Fires("OtelMlLabelsArriveTooLate", "30m", "32m", MODEL_LABELS,
              "m 1: 20% of labels arrive after their prediction expired", "20%",
              link("otel-ml-quality-drift", service="svc", model="m")),
    ]),
])

# --- drift.rules.yml: prediction drift (feature drift is tested on real data, drift.test.yml) -----

PRED = f'{M}, ml_feature_name="__prediction__"'
PRED_LABELS = {"ml_model_name": "m", "ml_model_version": "1", "ml_feature_name": "__prediction__"}
DRIFT = "ml_model_name_ml_model_version_ml_feature_name"
DRIFT_BIN = f"{DRIFT}_ml_feature_bin"


def _bin(b: str) -> dict[str, str]:
    return {**PRED_LABELS, "ml_feature_bin": b}

PREDICTION_DRIFT = TestFile("drift.rules.yml", [
    Case("every prediction lands in the first of two equally likely bins: PSI = 0.5 ln 2 + 0.4999 ln 5000", [
        (f'ml_feature_bin_count_total{{{PRED}, ml_feature_bin="0"}}', "0+10x40"),
        (f'ml_feature_bin_count_total{{{PRED}, ml_feature_bin="1"}}', "0x40"),
        (f'ml_feature_reference_proportion_ratio{{{PRED}, ml_feature_bin="0"}}', "0.5x40"),
        (f'ml_feature_reference_proportion_ratio{{{PRED}, ml_feature_bin="1"}}', "0.5x40"),
    ], [
        Value(f"{DRIFT_BIN}:ml_feature_bin_count:increase1h", "10m", [(_bin("0"), 100.0), (_bin("1"), 0.0)]),
        Value(f"{DRIFT}:ml_feature_bin_count:increase1h", "10m", [(PRED_LABELS, 100.0)]),
        Value(f"{DRIFT_BIN}:ml_feature_bin_proportion:1h", "10m", [(_bin("0"), 1.0), (_bin("1"), 0.0)]),
        Value(f"{DRIFT_BIN}:ml_feature_reference_proportion:max", "10m", [(_bin("0"), 0.5), (_bin("1"), 0.5)]),
        Value(f"{DRIFT}:ml_drift_psi:1h", "10m", [(PRED_LABELS, 4.604)]),
        Quiet("OtelMlFeatureDrift", "20m"),
        Fires("OtelMlPredictionDrift", "15m", "17m",
              {"ml_model_name": "m", "ml_model_version": "1", "ml_feature_name": "__prediction__"},
              "m 1: prediction drifted (PSI 4.60)", "4.604",
              link("otel-ml-quality-drift", model="m", version="1")),
    ]),
], out="drift_prediction.test.yml")

FILES = [INFERENCE, SLO, PIPELINE, LLM_TESTS, GPU_TESTS, MODEL, DATA_QUALITY, CANARY_TESTS, LABELS, PREDICTION_DRIFT]


def build() -> dict[str, str]:
    descriptions = _descriptions()
    return {tf.name: render(tf, descriptions) for tf in FILES}


def main() -> int:
    for name, text in build().items():
        (HERE / name).write_text(text)
    print(f"wrote {len(FILES)} test files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
