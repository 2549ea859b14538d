"""LLM serving: tokens in and out, time to first token, time per output token, request duration and
errors, by requested model (``gen_ai.request.model``) and by monitored model."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as md

from dashboards.common import (
    MODEL,
    SERVICE,
    VERSION,
    bucket_heatmap,
    dashboard,
    datasource_variable,
    names_matcher,
    prom,
    quantile,
    query_variable,
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

UID = "otel-ml-llm"
TITLE = "otel_ml / LLM"

DURATION = "gen_ai_server_request_duration_seconds"
TTFT = "gen_ai_server_time_to_first_token_seconds"
TPOT = "gen_ai_server_time_per_output_token_seconds"
TOKENS = "gen_ai_client_token_usage"

REQUEST_MODEL = 'gen_ai_request_model=~"$request_model"'
SCOPE = (SERVICE, MODEL, VERSION, REQUEST_MODEL)
BY = ("ml_model_name", "gen_ai_request_model")
LEGEND = "{{ml_model_name}} · {{gen_ai_request_model}}"


def _quantiles(title: str, description: str, metric: str, qs: tuple[float, ...], exemplars: bool) -> timeseries.Panel:
    return ts(title, description, "s",
              [prom(quantile(q, selector(f"{metric}_bucket", *SCOPE), BY), f"p{round(q * 100)} " + LEGEND,
                    exemplar=exemplars and q == qs[-1]) for q in qs], w=8)


def build() -> gd.Dashboard:
    count = selector(f"{DURATION}_count", *SCOPE)
    errors = selector(f"{DURATION}_count", *SCOPE, 'error_type!=""')
    tokens = selector(f"{TOKENS}_sum", *SCOPE)
    token_buckets = selector(f"{TOKENS}_bucket", *SCOPE)
    output = 'gen_ai_token_type="output"'
    source = names_matcher(f"{DURATION}_count")
    board = dashboard(
        UID, TITLE,
        "Generative models served through otel_ml: token throughput and usage, time to first token, "
        "time per output token, request duration and errors (GenAI semantic-convention metrics).",
        ["llm", "genai"],
        [datasource_variable(), *scope_variables(source),
         query_variable("request_model", "Requested model",
                        f"label_values({{{source}, {SERVICE}, {MODEL}, {VERSION}}}, gen_ai_request_model)",
                        description="gen_ai.request.model: the model name the client asked for.")])

    board = section(board, "Now", [
        single_stat("Requests", "Generation requests per second.", "reqps", sum_by((), rate(count))),
        single_stat("Error ratio", "Share of generation requests that failed.", "percentunit",
                    ratio_or_zero(sum_by((), rate(errors)), sum_by((), rate(count))),
                    thresholds=threshold_steps((None, "green"), (0.01, "orange"), (0.05, "red"))),
        single_stat("Time to first token p90", "90th percentile of the time to the first token.", "s",
                    quantile(0.9, selector(f"{TTFT}_bucket", *SCOPE))),
        single_stat("Output tokens", "Output tokens generated per second.", "short",
                    sum_by((), rate(selector(f"{TOKENS}_sum", *SCOPE, output)))),
    ])
    board = section(board, "Tokens", [
        ts("Tokens per second, input and output",
           "Tokens per second by `gen_ai.token.type` (from the token-usage histogram's sum).", "short",
           [prom(sum_by((*BY, "gen_ai_token_type"), rate(tokens)), LEGEND + " {{gen_ai_token_type}}")],
           w=8, min_val=0),
        ts("Tokens per request (p50 / p99)", "Token usage per request, by token type.", "short",
           [prom(quantile(q, token_buckets, (*BY, "gen_ai_token_type")),
                 f"p{round(q * 100)} " + LEGEND + " {{gen_ai_token_type}}") for q in (0.5, 0.99)], w=8, min_val=0),
        bucket_heatmap("Output tokens per request", "Distribution of output tokens per request over time "
                       "(semantic-convention buckets, powers of 4).", selector(f"{TOKENS}_bucket", *SCOPE, output),
                       "short", "Purples", w=8),
    ])
    board = section(board, "Latency", [
        _quantiles("Time to first token p50 / p90 / p99", "Recorded for successful responses only (semantic "
                   "conventions). Exemplars link to the trace.", TTFT, (0.5, 0.9, 0.99), exemplars=True),
        _quantiles("Time per output token p50 / p99", "Time per output token after the first one (successful "
                   "responses).", TPOT, (0.5, 0.99), exemplars=False),
        _quantiles("Request duration p50 / p90 / p99", "Server request duration, time to the last token.",
                   DURATION, (0.5, 0.9, 0.99), exemplars=True),
    ])
    return section(board, "Traffic and errors", [
        ts("Requests by operation and provider",
           "Requests per second by `gen_ai.operation.name` and `gen_ai.provider.name`.", "reqps",
           [prom(sum_by((*BY, "gen_ai_operation_name", "gen_ai_provider_name"), rate(count)),
                 LEGEND + " {{gen_ai_operation_name}} {{gen_ai_provider_name}}")], min_val=0),
        ts("Errors by error type", "Failed requests per second by `error.type`, and the error ratio.", "reqps",
           [prom(sum_by((*BY, "error_type"), rate(errors)), LEGEND + " {{error_type}}"),
            prom(ratio_or_zero(sum_by(BY, rate(errors)), sum_by(BY, rate(count))), "error ratio " + LEGEND)],
           min_val=0).override_by_regexp("^error ratio .*", [
               md.DynamicConfigValue(id_val="unit", value="percentunit"),
               md.DynamicConfigValue(id_val="custom.axisPlacement", value="right")]),
    ])
