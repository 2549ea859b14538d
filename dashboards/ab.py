"""A/B and canary comparison: one model, two arms side by side and as candidate / baseline ratios.

An arm is a (version, variant) pair written ``<version>/<variant>``, e.g. ``3/main`` against
``4/canary``, so the same dashboard compares two versions, two variants of one version, or both.
The main variant carries no ``ml_model_variant`` label, which a label matcher cannot name, so the
queries first write it as ``main``, join version and variant into an ``arm`` label, and keep the
series whose arm equals the variable (``and on (arm)`` a one-series vector built from it).
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models import dashboard as md

from dashboards.common import (
    PROMETHEUS,
    SERVICE,
    dashboard,
    datasource_variable,
    drift_status_cells,
    hide_time_and_rename,
    matched,
    prom,
    query_variable,
    rate,
    refs,
    section,
    selector,
    single_stat,
    sum_by,
    threshold_steps,
    transformation,
    ts,
)

UID = "otel-ml-ab"
TITLE = "otel_ml / A/B and canary comparison"

MODEL_ONE = 'ml_model_name="$model"'
SCOPE = (SERVICE, MODEL_ONE)
SIDES = (("baseline", "$baseline"), ("candidate", "$candidate"))
DURATION = "ml_inference_duration_seconds"


def with_arm(vector: str) -> str:
    """``vector`` with an ``arm`` label "<version>/<variant>" (variant "main" where it has none)."""
    return (f'label_join(label_replace({vector}, "ml_model_variant", "main", "ml_model_variant", ""), '
            f'"arm", "/", "ml_model_version", "ml_model_variant")')


def arm(vector: str, side: str) -> str:
    """The series of ``vector`` that belong to the arm named by the variable ``side``."""
    return f'({with_arm(vector)} and on (arm) label_replace(vector(1), "arm", "{side}", "", ""))'


def _rate(side: str, metric: str, *matchers: str, fn: str = "rate", window: str = "$__rate_interval") -> str:
    return arm(rate(selector(metric, *SCOPE, *matchers), fn, window), side)


def requests(side: str) -> str:
    return sum_by((), _rate(side, f"{DURATION}_count"))


def error_ratio(side: str) -> str:
    errors = sum_by((), _rate(side, f"{DURATION}_count", 'error_type!=""'))
    return f"({errors} or {requests(side)} * 0) / {requests(side)}"


def latency(q: float, side: str) -> str:
    return f"histogram_quantile({q}, {sum_by(('le',), _rate(side, f'{DURATION}_bucket'))})"


def accuracy(side: str, fn: str = "rate", window: str = "$__rate_interval") -> str:
    outcomes = _rate(side, "ml_outcomes_total", 'ml_outcome_class!=""', fn=fn, window=window)
    return f"({matched((), outcomes)} or sum({outcomes}) * 0) / sum({outcomes})"


def confidence(side: str) -> str:
    return (f"{sum_by((), _rate(side, 'ml_prediction_confidence_sum'))} / "
            f"{sum_by((), _rate(side, 'ml_prediction_confidence_count'))}")


def mix(side: str) -> str:
    return (f"{sum_by(('ml_prediction_class',), _rate(side, 'ml_predictions_total'))} / ignoring "
            f"(ml_prediction_class) group_left {sum_by((), _rate(side, 'ml_predictions_total'))}")


def side_by_side(title: str, description: str, unit: str, expr: Callable[[str], str], legend: str = "", *,
                 min_val: float | None = None, max_val: float | None = None) -> timeseries.Panel:
    """One panel, one query per arm, named after the arm."""
    return ts(title, description, unit,
              [prom(expr(var), f"{name} {var}" + (f" {legend}" if legend else "")) for name, var in SIDES],
              min_val=min_val, max_val=max_val)


def ratio(expr: Callable[[str], str]) -> str:
    """Candidate over baseline: both sides aggregate to the same labels (none, or the class)."""
    return f"({expr('$candidate')}) / ({expr('$baseline')})"


def difference(expr: Callable[[str], str]) -> str:
    return f"({expr('$candidate')}) - ({expr('$baseline')})"


def _arm_variable(name: str, label: str, sort: md.VariableSort) -> gd.QueryVariable:
    present = f"last_over_time({selector(f'{DURATION}_count', *SCOPE)}[$__range])"
    return (query_variable(name, label, f"query_result(count by (arm) ({with_arm(present)}))",
                           multi=False, regex='/arm="([^"]+)"/',
                           description="<version>/<variant> of the model (variant \"main\" when unset).")
            .sort(sort))


def _drift_table() -> table.Panel:
    return (table.Panel().title("Drift status by feature")
            .description("Worst in-process drift status per feature in each arm (0 ok, 1 warning, 2 drift).")
            .datasource(PROMETHEUS).span(12).height(8)
            .targets(refs([prom(f"max by (ml_feature_name) ({arm(selector('ml_drift_status', *SCOPE), var)})",
                                instant=True, table=True) for _, var in SIDES]))
            .with_transformation(transformation("merge"))
            .with_transformation(hide_time_and_rename({"Value #A": "baseline", "Value #B": "candidate",
                                                       "ml_feature_name": "feature"}))
            .override_by_name("baseline", drift_status_cells())
            .override_by_name("candidate", drift_status_cells()))


def build() -> gd.Dashboard:
    board = dashboard(
        UID, TITLE,
        "Two arms of one model - versions, variants (canary, A/B) or both - side by side and as "
        "candidate / baseline ratios: errors, latency, accuracy, confidence, drift and prediction mix.",
        ["ab", "canary"],
        [datasource_variable(),
         query_variable("service", "Service", f"label_values({DURATION}_count, service_name)", all_value=".+"),
         query_variable("model", "Model", f"label_values({DURATION}_count{{{SERVICE}}}, ml_model_name)", multi=False),
         # Opposite orders, so that by default the baseline is the lowest version and the candidate the highest.
         _arm_variable("baseline", "Baseline", md.VariableSort.NATURAL_ASC),
         _arm_variable("candidate", "Candidate", md.VariableSort.NATURAL_DESC)])

    one = threshold_steps((None, "transparent"), (1, "text"))
    board = section(board, "Candidate against baseline", [
        single_stat("p99 latency ratio", "Candidate p99 / baseline p99 (1 = same).", "none",
                    ratio(lambda s: latency(0.99, s)), decimals=2,
                    thresholds=threshold_steps((None, "green"), (1.1, "orange"), (1.5, "red"))),
        single_stat("Error ratio difference", "Candidate error ratio - baseline error ratio.", "percentunit",
                    difference(error_ratio), decimals=2,
                    thresholds=threshold_steps((None, "green"), (0.005, "orange"), (0.02, "red"))),
        single_stat("Accuracy difference (time range)",
                    "Candidate accuracy - baseline accuracy from the outcome counters over the dashboard's range.",
                    "percentunit", difference(lambda s: accuracy(s, "increase", "$__range")), decimals=2,
                    instant=True, thresholds=threshold_steps((None, "red"), (-0.02, "orange"), (0, "green"))),
        single_stat("Mean confidence difference", "Candidate mean confidence - baseline mean confidence.",
                    "percentunit", difference(confidence), decimals=2,
                    thresholds=threshold_steps((None, "orange"), (-0.02, "green"))),
    ])
    board = section(board, "Side by side", [
        side_by_side("Inference rate", "Inference calls per second per arm.", "ops", requests, min_val=0),
        side_by_side("Error ratio", "Share of inference calls that raised.", "percentunit", error_ratio, min_val=0),
        side_by_side("p50 latency", "Median inference duration.", "s", lambda s: latency(0.5, s), min_val=0),
        ts("p99 latency", "99th percentile of inference duration; exemplars link to traces.", "s",
           [prom(latency(0.99, var), f"{name} {var}", exemplar=name == "baseline") for name, var in SIDES],
           min_val=0),
        side_by_side("Accuracy (outcome counters)", "Correct / all labelled predictions per arm.", "percentunit",
                     accuracy, min_val=0, max_val=1),
        side_by_side("Mean confidence", "Mean prediction confidence per arm.", "percentunit", confidence,
                     min_val=0, max_val=1),
        side_by_side("Prediction mix", "Share of predictions per class and arm.", "percentunit", mix,
                     "{{ml_prediction_class}}", min_val=0, max_val=1),
        _drift_table(),
    ])
    return section(board, "Candidate / baseline", [
        ts("Ratios: candidate / baseline", "Above 1: the candidate is higher (slower, more errors, more "
           "confident). An error ratio of 0 in the baseline makes its ratio infinite.", "none",
           [prom(ratio(lambda s: latency(0.5, s)), "p50 latency"),
            prom(ratio(lambda s: latency(0.99, s)), "p99 latency"),
            prom(ratio(error_ratio), "error ratio"), prom(ratio(confidence), "mean confidence")], thresholds=one),
        ts("Prediction mix: candidate / baseline by class", "Share of each class in the candidate over its share in "
           "the baseline: a class far from 1 is predicted more (or less) often by the candidate.", "none",
           [prom(ratio(mix), "{{ml_prediction_class}}")], thresholds=one),
    ])
