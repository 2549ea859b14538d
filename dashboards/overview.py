"""Service overview: the golden signals per model and version, the HTTP layer, self-telemetry, logs."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as gc
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import logs, loki, timeseries
from grafana_foundation_sdk.models import common as mc

from dashboards.common import (
    BY_MODEL,
    LOKI,
    MODEL,
    MODEL_LEGEND,
    SERVICE,
    VERSION,
    bucket_heatmap,
    dashboard,
    datasource_variable,
    loki_variable,
    names_matcher,
    prom,
    quantile,
    rate,
    ratio_or_zero,
    scope_variables,
    section,
    selector,
    single_stat,
    sum_by,
    threshold_steps,
    ts,
)

UID = "otel-ml-overview"
TITLE = "otel_ml / Service overview"

DURATION = "ml_inference_duration_seconds"
SCOPE = (SERVICE, MODEL, VERSION)

# The FastAPI (ASGI) instrumentation emits one of two HTTP metrics depending on
# OTEL_SEMCONV_STABILITY_OPT_IN: unset (the default of opentelemetry-instrumentation-fastapi 0.66b)
# gives the old `http.server.duration` in ms with `http.target` (the route template) and
# `http.status_code`; "http" gives the stable `http.server.request.duration` in s with `http.route`
# and `http.response.status_code`; "http/dup" gives both. The HTTP panels read the stable series
# and, for processes that have none, the old ones relabelled to the stable names
# (`or on (service_name, service_instance_id)`), so they work in every mode, in a fleet that
# mixes modes, and never count a request twice.
HTTP_NEW = "http_server_request_duration_seconds"
HTTP_OLD = "http_server_duration_milliseconds"
HTTP_ACTIVE = "http_server_active_requests"
PROCESS = "service_name, service_instance_id"


def _old_as_new(expr: str) -> str:
    return ('label_replace(label_replace(' + expr + ', "http_route", "$1", "http_target", "(.*)"), '
            '"http_response_status_code", "$1", "http_status_code", "(.*)")')


def _http_requests(labels: tuple[str, ...], server_errors: bool = False) -> str:
    """HTTP requests per second by ``labels`` (stable label names), optionally 5xx only."""
    new = rate(selector(f"{HTTP_NEW}_count", SERVICE, *(['http_response_status_code=~"5.."'] * server_errors)))
    old = rate(selector(f"{HTTP_OLD}_count", SERVICE, *(['http_status_code=~"5.."'] * server_errors)))
    return sum_by(labels, f"({new} or on ({PROCESS}) {_old_as_new(old)})")


def _http_quantile(q: float) -> str:
    # Buckets in seconds and in milliseconds cannot share one histogram_quantile, so here the
    # two are computed apart and a route's stable quantile wins where both exist.
    new = quantile(q, selector(f"{HTTP_NEW}_bucket", SERVICE), ("http_route",))
    old_rate = _old_as_new(rate(selector(f"{HTTP_OLD}_bucket", SERVICE)))
    old = f"histogram_quantile({q}, {sum_by(('le', 'http_route'), old_rate)}) / 1000"
    return f"({new}) or ({old})"


def _http_error_ratio() -> str:
    return ratio_or_zero(_http_requests(("http_route",), server_errors=True), _http_requests(("http_route",)))


def _loki_scope() -> str:
    # Loki refuses a stream selector that can match the empty string, hence the `.+` guard beside
    # $service (whose All is `.+` for the same reason). Model and version are structured metadata
    # on log records written inside an inference; filtering with `=~".*"` (All) keeps the rest.
    return ('{service_name=~".+", service_name=~"$service"} '
            '| ml_model_name=~"$model" | ml_model_version=~"$version"')


def build() -> gd.Dashboard:
    count = selector(f"{DURATION}_count", *SCOPE)
    errors = selector(f"{DURATION}_count", *SCOPE, 'error_type!=""')
    bucket = selector(f"{DURATION}_bucket", *SCOPE)
    dropped = selector("otel_ml_dropped_total", SERVICE)
    process = ("service_name", "service_instance_id")
    board = dashboard(
        UID, TITLE,
        "Golden signals of every monitored model (rate, errors, latency with exemplars, saturation), the "
        "HTTP routes in front of them, what otel_ml itself dropped, and the services' logs.",
        ["overview"],
        [datasource_variable(), loki_variable(),
         *scope_variables(names_matcher(f"{DURATION}_count", "gen_ai_server_request_duration_seconds_count"))])

    board = section(board, "Golden signals", [
        single_stat("Inference rate", "Inference calls per second (a batch counts once), all selected models.",
                    "ops", sum_by((), rate(count)), w=4),
        single_stat("Error ratio", "Share of inference calls that raised.", "percentunit",
                    ratio_or_zero(sum_by((), rate(errors)), sum_by((), rate(count))), w=4,
                    thresholds=threshold_steps((None, "green"), (0.01, "orange"), (0.05, "red"))),
        single_stat("p99 latency", "99th percentile of inference duration, all selected models.", "s",
                    quantile(0.99, bucket), w=4),
        single_stat("Rows scored", "Rows per second (the sum of batch sizes).", "rowsps",
                    sum_by((), rate(selector("ml_inference_batch_size_sum", *SCOPE))), w=4),
        single_stat("In-flight HTTP requests", "Requests the FastAPI instrumentation sees in progress now.",
                    "short", sum_by((), selector(HTTP_ACTIVE, SERVICE)), w=4),
        # The drop counter has no series until something is dropped: 0, not "no data", until then.
        single_stat("Telemetry dropped", "Items otel_ml dropped per second (queue full, exporter down, caps).",
                    "short", f"{sum_by((), rate(dropped))} or vector(0)", w=4,
                    thresholds=threshold_steps((None, "green"), (0.001, "orange"))),
    ])
    board = section(board, "Traffic and errors", [
        ts("Inference rate by model and version", "Inference calls per second.", "ops",
           [prom(sum_by((*BY_MODEL, "ml_model_variant"), rate(count)), MODEL_LEGEND + " {{ml_model_variant}}")]),
        ts("Error ratio by error type",
           "Share of inference calls that raised, by `error.type` (exception class, capped at 20 per model).",
           "percentunit",
           [prom(f"{sum_by((*BY_MODEL, 'error_type'), rate(errors))} / ignoring (error_type) group_left "
                 f"{sum_by(BY_MODEL, rate(count))}", MODEL_LEGEND + " {{error_type}}")], min_val=0),
    ])
    board = section(board, "Latency", [
        ts("Inference latency p50 / p90 / p99",
           "Quantiles of `ml.inference.duration` from its histogram. Exemplars (dots) link a slow bucket to "
           "the trace that landed in it (Jaeger).", "s",
           [prom(quantile(q, bucket, BY_MODEL), f"p{round(q * 100)} {MODEL_LEGEND}", exemplar=q == 0.99)
            for q in (0.5, 0.9, 0.99)]),
        bucket_heatmap("Latency distribution", "Inference calls per latency bucket over time, all selected "
                       "models.", bucket, "s", "Oranges"),
    ])
    board = section(board, "Saturation", [
        ts("Batch size", "Rows per inference call: mean and p99.", "short",
           [prom(f"{sum_by(BY_MODEL, rate(selector('ml_inference_batch_size_sum', *SCOPE)))} / "
                 f"{sum_by(BY_MODEL, rate(selector('ml_inference_batch_size_count', *SCOPE)))}",
                 "mean " + MODEL_LEGEND),
            prom(quantile(0.99, selector("ml_inference_batch_size_bucket", *SCOPE), BY_MODEL),
                 "p99 " + MODEL_LEGEND)], w=8),
        ts("Inference concurrency",
           "Seconds spent inferring per second, per process: the average number of inferences in flight "
           "(Little's law). Near the number of workers or threads, the service is saturated.", "short",
           [prom(sum_by(process, rate(selector(f"{DURATION}_sum", *SCOPE))),
                 "{{service_name}} {{service_instance_id}}")], w=8, min_val=0),
        ts("In-flight HTTP requests by process", "Requests in progress per process (FastAPI instrumentation).",
           "short", [prom(sum_by(process, selector(HTTP_ACTIVE, SERVICE)), "{{service_name}} {{service_instance_id}}")],
           w=8, min_val=0),
    ])
    board = section(board, "HTTP routes (FastAPI instrumentation)", [
        ts("HTTP requests by route and status",
           "Requests per second. HTTP metrics carry no model labels: they follow $service only.", "reqps",
           [prom(_http_requests(("http_route", "http_response_status_code")),
                 "{{http_route}} {{http_response_status_code}}")], w=8),
        ts("HTTP p99 latency by route", "99th percentile of the server request duration.", "s",
           [prom(_http_quantile(0.99), "{{http_route}}")], w=8),
        ts("HTTP 5xx ratio by route", "Share of responses with a 5xx status.", "percentunit",
           [prom(_http_error_ratio(), "{{http_route}}")], w=8, min_val=0),
    ])
    return section(board, "Telemetry health and logs", [
        ts("Telemetry dropped by reason",
           "What otel_ml could not record or export, per second, by `otel_ml.reason` and signal. Per process: "
           "not split by model.", "short",
           [prom(sum_by(("otel_ml_reason", "otel_ml_signal"), rate(dropped)),
                 "{{otel_ml_reason}} ({{otel_ml_signal}})")], min_val=0),
        _log_volume(),
        _logs(),
    ])


def _log_volume() -> timeseries.Panel:
    return (timeseries.Panel().title("Log lines by severity")
            .description("Log lines per interval by `severity_text`, same scope as the logs below.")
            .datasource(LOKI).span(12).height(8).unit("short").fill_opacity(60).line_width(1)
            .stacking(gc.StackingConfig().mode(mc.StackingMode.NORMAL)).draw_style(mc.GraphDrawStyle.BARS)
            .targets([loki.Dataquery()
                      .expr(f"sum by (severity_text) (count_over_time({_loki_scope()} [$__interval]))")
                      .legend_format("{{severity_text}}").ref_id("A").datasource(LOKI).query_type("range")]))


def _logs() -> logs.Panel:
    return (logs.Panel().title("Logs")
            .description("Log records of the selected services; inside an inference they carry the model's name "
                         "and version. Open a line: its trace_id links to the trace in Jaeger.")
            .datasource(LOKI).span(24).height(12)
            .targets([loki.Dataquery().expr(_loki_scope()).ref_id("A").datasource(LOKI).query_type("range")])
            .show_time(True).wrap_log_message(True).enable_log_details(True).prettify_log_message(False)
            .sort_order(mc.LogsSortOrder.DESCENDING).dedup_strategy(mc.LogsDedupStrategy.NONE))
