"""The one config of otel_ml's monitoring mixin: selectors, thresholds, SLOs, links.

``alerts/generate.py`` turns it into ``alerts/*.rules.yml``; the dashboards' generator reads the
same selectors and links. Change a number here, run ``python alerts/generate.py``, commit both:
``tests/alerts/test_rules.py`` fails while the YAML is stale. Drift thresholds are not set here
but read from the SDK's own defaults (``otel_ml.DriftPolicy()``), so the fleet alert and the
in-process ``ml.drift.status`` can never disagree on what "drift" means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- where the data is ------------------------------------------------------------------------
# Narrow every otel_ml expression to your services, e.g. 'deployment_environment_name="prod"'.
# Empty: every series. Put inside {...} of each selector, so no braces here.
SELECTOR = ""
COLLECTOR_JOB = "otel-collector"  # Prometheus job scraping the collector's own telemetry (:8888)
EXPORTER_JOB = "otel-ml"  # Prometheus job scraping the collector's prometheus exporter (:8889)

# Aggregation levels (label lists) the rules record at.
SERVICE_MODEL = ("service_name", "ml_model_name")
MODEL_VERSION = ("service_name", "ml_model_name", "ml_model_version", "ml_model_variant")
MODEL_VARIANT = ("service_name", "ml_model_name", "ml_model_variant")
FEATURE = ("service_name", "ml_model_name", "ml_model_version", "ml_feature_name")

# --- routing and links --------------------------------------------------------------------------
TEAM_PLATFORM = "ml-platform"  # pipeline, SLOs, LLM, GPU, model quality (alerts/alertmanager.yml)
TEAM_DATA = "data"  # drift and data quality: the owners of upstream data
RUNBOOK_BASE = "https://github.com/otel-ml/otel-ml/blob/main/alerts/runbooks.md"
GRAFANA_URL = "http://localhost:3000"  # compose.yaml's Grafana; set yours
DASHBOARDS = {
    "overview": "otel-ml-overview",
    "quality": "otel-ml-quality-drift",
    "llm": "otel-ml-llm",
    "gpu": "otel-ml-gpu",
    "ab": "otel-ml-ab",
}


@dataclass(frozen=True)
class BurnWindow:
    """Multi-window burn-rate condition: both windows above ``factor`` x the error budget."""

    long: str
    short: str
    factor: float


@dataclass(frozen=True)
class SLO:
    """Availability: requests without ``error.type``; latency: successful requests under a bound.

    ``latency_threshold_s`` must be one of the ``ml.inference.duration`` bucket boundaries
    (default buckets include 0.5 s). The low-traffic guard: an alert also needs at least
    ``min_bad_page`` (page) / ``min_bad_ticket`` (ticket) bad requests in its long window, so one
    failed request at night on a quiet model does not page anyone.
    """

    availability_target: float = 0.999
    latency_target: float = 0.99  # "p99 < 500 ms": 99 % of successful requests under the bound
    latency_threshold_s: float = 0.5
    page: tuple[BurnWindow, ...] = (BurnWindow("1h", "5m", 14.4), BurnWindow("6h", "30m", 6.0))
    ticket: tuple[BurnWindow, ...] = (BurnWindow("1d", "2h", 3.0), BurnWindow("3d", "6h", 1.0))
    min_bad_page: int = 10
    min_bad_ticket: int = 5


@dataclass(frozen=True)
class Thresholds:
    # golden signals
    error_ratio: float = 0.05  # warning above 5 % errors over 5 m
    min_requests_per_s: float = 0.05  # below this a model is too quiet for ratio alerts
    # LLM (GenAI semantic conventions)
    ttft_p90_s: float = 1.0
    tpot_p90_s: float = 0.1  # 10 tokens/s after the first
    llm_error_ratio: float = 0.05
    # GPU (hardware semantic conventions)
    gpu_memory_ratio: float = 0.95
    gpu_utilization_ratio: float = 0.95
    gpu_temperature_celsius: float = 85.0
    # model quality
    confidence_drop: float = 0.1  # mean confidence, 30 m vs the last day
    min_predictions: int = 100
    accuracy_drop: float = 0.05  # accuracy, 1 h vs the last day
    f1_drop: float = 0.05
    min_outcomes: int = 50
    # data quality, shares of the rows offered to a feature over 15 m
    missing_rate: float = 0.05
    unseen_category_rate: float = 0.01
    out_of_range_rate: float = 0.05
    type_mismatch_rate: float = 0.01
    min_rows: int = 100
    # canary / A-B: a variant against the model's main variant over 15 m
    canary_error_factor: float = 2.0
    canary_error_margin: float = 0.01
    canary_latency_factor: float = 1.5
    canary_accuracy_drop: float = 0.05
    canary_min_requests_per_s: float = 0.1  # a rate, so compressed-time demos keep its meaning
    # delayed labels
    unlabelled_share: float = 0.5  # most predictions leave the store without a label
    late_label_share: float = 0.1  # labels that arrive after the predictions' TTL


@dataclass(frozen=True)
class Config:
    slo: SLO = field(default_factory=SLO)
    thresholds: Thresholds = field(default_factory=Thresholds)


CONFIG = Config()
