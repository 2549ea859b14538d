"""Model quality and drift: per-feature drift (in-process and fleet-wide), reference vs current bins,
data quality, accuracy from delayed labels, prediction mix and confidence."""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, bargauge, statushistory, table
from grafana_foundation_sdk.builders import common as gc
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.models import common as mc
from grafana_foundation_sdk.models import dashboard as md

from dashboards.common import (
    BY_MODEL,
    MODEL,
    MODEL_LEGEND,
    PROMETHEUS,
    SERVICE,
    VERSION,
    bucket_heatmap,
    by,
    dashboard,
    datasource_variable,
    drift_status_cells,
    hide_time_and_rename,
    matched,
    names_matcher,
    prom,
    quantile,
    query_variable,
    rate,
    ratio_or_zero,
    refs,
    scope_variables,
    section,
    selector,
    single_stat,
    sum_by,
    threshold_steps,
    transformation,
    ts,
)

UID = "otel-ml-quality-drift"
TITLE = "otel_ml / Model quality and drift"

SCOPE = (SERVICE, MODEL, VERSION)
FEATURE = 'ml_feature_name="$feature"'
BY_FEATURE = (*BY_MODEL, "ml_feature_name")
FEATURE_LEGEND = "{{ml_feature_name}} ({{ml_model_name}} {{ml_model_version}})"

# Fleet-wide drift from alerts/drift.rules.yml: summed over every replica, so not per service
# (the rules aggregate service_name away) - these two follow $model and $version only.
FLEET_PSI = "ml_model_name_ml_model_version_ml_feature_name:ml_drift_psi:1h"
FLEET_JS = "ml_model_name_ml_model_version_ml_feature_name:ml_drift_jensen_shannon:1h"
FLEET_SCOPE = (MODEL, VERSION)

# PSI's default warning / drift thresholds (otel_ml/_internal/drift/policy.py DEFAULT_THRESHOLDS).
PSI_STEPS = threshold_steps((None, "green"), (0.1, "orange"), (0.25, "red"))
JS_STEPS = threshold_steps((None, "green"), (0.13, "orange"), (0.21, "red"))

# Issues that keep a value out of the bins. Unseen categories and out-of-range values are still
# binned (counted in ml_feature_values_total), so the values a feature was offered are
# ml_feature_values_total + these issues, and every issue rate is a share of that.
UNBINNED = 'ml_data_quality_issue=~"missing|nan|inf|type_mismatch"'
MISSING = 'ml_data_quality_issue="missing"'
PSI = 'ml_drift_method="psi"'
QUALITY_CLS = 'ml_quality_metric=~"accuracy|precision|recall|f1|f1_macro|f1_weighted|roc_auc"'
QUALITY_REG = 'ml_quality_metric=~"mae|rmse|mape"'


def _offered(labels: tuple[str, ...], fn: str = "rate", window: str = "$__rate_interval") -> str:
    """Values offered to the features (binned + unbinned), summed by ``labels``."""
    values = sum_by(labels, rate(selector("ml_feature_values_total", *SCOPE), fn, window))
    unbinned = sum_by(labels, rate(selector("ml_data_quality_issues_total", *SCOPE, UNBINNED), fn, window))
    return f"({values} + {unbinned})"


def _missing_share(labels: tuple[str, ...]) -> str:
    """Missing values over offered values during the dashboard's range, by ``labels``."""
    missing = sum_by(labels, rate(selector("ml_data_quality_issues_total", *SCOPE, MISSING), "increase", "$__range"))
    return f"{missing} / {_offered(labels, 'increase', '$__range')}"


def _status_table() -> table.Panel:
    return (table.Panel().title("Drift status by feature (now)")
            .description("Worst status across replicas of the in-process drift check (ml.drift.status): the "
                         "status method's score against its thresholds, over each process's drift window.")
            .datasource(PROMETHEUS).span(8).height(10)
            .targets(refs([prom(f"max by ({by(BY_FEATURE)}) ({selector('ml_drift_status', *SCOPE)})",
                                instant=True, table=True)]))
            .with_transformation(hide_time_and_rename({"Value": "status", "ml_feature_name": "feature",
                                                       "ml_model_name": "model", "ml_model_version": "version"}))
            .override_by_name("status", drift_status_cells())
            .sort_by([gc.TableSortByFieldState().display_name("status").desc(True)]))


def _psi_history() -> statushistory.Panel:
    psi = selector("ml_drift_score_ratio", *SCOPE, PSI)
    return (statushistory.Panel().title("PSI by feature over time")
            .description("Population stability index of each feature (in-process, worst replica). Orange from "
                         "0.1, red from 0.25 (the default PSI thresholds).")
            .datasource(PROMETHEUS).span(16).height(10)
            .targets(refs([prom(f"max by ({by(BY_FEATURE)}) ({psi})", FEATURE_LEGEND)]))
            .thresholds(PSI_STEPS).color_scheme(gd.FieldColor().mode(md.FieldColorModeId.THRESHOLDS))
            .show_value(mc.VisibilityMode.NEVER).row_height(0.9).decimals(3))


def _bins() -> barchart.Panel:
    ref = selector("ml_feature_reference_proportion_ratio", *SCOPE, FEATURE)
    current = rate(selector("ml_feature_bin_count_total", *SCOPE, FEATURE), "increase", "$__range")
    as_type = [transformation("convertFieldType", {"conversions": [
        {"targetField": "ml_feature_bin", "destinationType": kind}]}) for kind in ("number", "string")]
    return (barchart.Panel().title("Reference vs current bin proportions: $feature")
            .description("Share of values per reference bin: the training reference, and every replica's values "
                         "over the dashboard's time range. Select one model and version.")
            .datasource(PROMETHEUS).span(12).height(9)
            .targets(refs([prom(f"max by (ml_feature_bin) ({ref})", instant=True, table=True),
                           prom(f"sum by (ml_feature_bin) ({current}) / scalar(sum({current}))",
                                instant=True, table=True)]))
            .with_transformation(transformation("merge"))
            # Bin labels are indices as text: sort them as numbers, then show them as categories.
            .with_transformation(as_type[0])
            .with_transformation(transformation("sortBy", {"sort": [{"field": "ml_feature_bin"}]}))
            .with_transformation(as_type[1])
            .with_transformation(hide_time_and_rename({"Value #A": "reference", "Value #B": "current",
                                                       "ml_feature_bin": "bin"}))
            .x_field("bin").unit("percentunit").show_value(mc.VisibilityMode.NEVER)
            .legend(gc.VizLegendOptions().show_legend(True).display_mode(mc.LegendDisplayMode.LIST)
                    .placement(mc.LegendPlacement.BOTTOM)))


def _missing_by_feature() -> bargauge.Panel:
    return (bargauge.Panel().title("Missing-value rate by feature (time range)")
            .description("Share of each feature's offered values that were missing, over the dashboard's range.")
            .datasource(PROMETHEUS).span(12).height(8)
            .targets(refs([prom(_missing_share(BY_FEATURE), FEATURE_LEGEND, instant=True)]))
            .unit("percentunit").min(0).max(1)
            .thresholds(threshold_steps((None, "green"), (0.01, "orange"), (0.1, "red")))
            .display_mode(mc.BarGaugeDisplayMode.GRADIENT).orientation(mc.VizOrientation.HORIZONTAL)
            .reduce_options(gc.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def build() -> gd.Dashboard:
    outcomes = rate(selector("ml_outcomes_total", *SCOPE, 'ml_outcome_class!=""'))
    outcomes_range = rate(selector("ml_outcomes_total", *SCOPE, 'ml_outcome_class!=""'), "increase", "$__range")
    by_method = (*BY_MODEL, "ml_drift_method")
    by_issue = (*BY_MODEL, "ml_data_quality_issue")
    by_metric = (*BY_MODEL, "ml_quality_metric")
    by_pred = (*BY_MODEL, "ml_prediction_class")
    by_actual = (*BY_MODEL, "ml_outcome_class")
    score = "ml_quality_score_ratio"
    confidence = selector("ml_prediction_confidence_bucket", *SCOPE)
    predictions = rate(selector("ml_predictions_total", *SCOPE))
    board = dashboard(
        UID, TITLE,
        "Is the model still right? Drift of every feature and of the predictions against the training "
        "reference, data quality, accuracy once labels arrive, prediction mix and confidence.",
        ["drift", "quality"],
        [datasource_variable(),
         *scope_variables(names_matcher("ml_inference_duration_seconds_count", "ml_drift_status")),
         query_variable("feature", "Feature",
                        f"label_values(ml_feature_reference_proportion_ratio{{{by(SCOPE)}}}, ml_feature_name)",
                        multi=False, description="The feature shown in detail (__prediction__: the model's output).")])

    board = section(board, "Drift", [_status_table(), _psi_history()])
    board = section(board, "Fleet drift (all replicas, last hour)", [
        ts("Fleet PSI by feature", "PSI of the fleet's last hour against the reference, from the per-bin counters "
           f"of every replica (recording rule {FLEET_PSI}). Not split by service: the rule sums replicas.", "none",
           [prom(selector(FLEET_PSI, *FLEET_SCOPE), FEATURE_LEGEND)], min_val=0, thresholds=PSI_STEPS),
        ts("Fleet Jensen-Shannon distance by feature", "Jensen-Shannon distance (base 2) of the fleet's last hour "
           f"against the reference ({FLEET_JS}).", "none",
           [prom(selector(FLEET_JS, *FLEET_SCOPE), FEATURE_LEGEND)], min_val=0, thresholds=JS_STEPS),
    ])
    board = section(board, "Feature detail: $feature", [
        _bins(),
        ts("Drift scores: $feature", "Every method's score for this feature (in-process, worst replica).", "none",
           [prom(f"max by ({by(by_method)}) ({selector('ml_drift_score_ratio', *SCOPE, FEATURE)})",
                 "{{ml_drift_method}} " + MODEL_LEGEND)], w=6, h=9, min_val=0),
        ts("Drift test p-values: $feature", "KS and chi² p-values (lowest replica); small means drift.", "none",
           [prom(f"min by ({by(by_method)}) ({selector('ml_drift_p_value_ratio', *SCOPE, FEATURE)})",
                 "{{ml_drift_method}} " + MODEL_LEGEND)], w=6, h=9, min_val=0, max_val=1),
    ])
    issues = rate(selector("ml_data_quality_issues_total", *SCOPE))
    board = section(board, "Data quality", [
        ts("Data-quality issue rate by issue",
           "Share of the feature values offered (all features) that had each issue. Offered values = binned "
           "values (ml_feature_values_total, which include unseen categories and out-of-range values) + the values "
           "that could not be binned (missing, NaN, inf, type mismatch).", "percentunit",
           # `group_left ()`: without the empty list the parenthesised denominator would be read as one.
           [prom(f"{sum_by(by_issue, issues)} / ignoring (ml_data_quality_issue) group_left () "
                 f"{_offered(BY_MODEL)}", "{{ml_data_quality_issue}} " + MODEL_LEGEND)], min_val=0),
        _missing_by_feature(),
    ])
    board = section(board, "Quality from delayed labels", [
        single_stat("Accuracy over the time range",
                    "Correct / all labelled predictions over the dashboard's range, from the ml_outcomes_total "
                    "counters of every replica (classification models).", "percentunit",
                    ratio_or_zero(matched((), outcomes_range), sum_by((), outcomes_range)), w=4, h=8, instant=True,
                    thresholds=threshold_steps((None, "red"), (0.8, "orange"), (0.9, "green"))),
        ts("Accuracy from outcome counters",
           "Fleet accuracy: outcomes whose predicted class equals the actual class / all outcomes, per model and "
           "version. Labels arrive late and in bursts: expect gaps.", "percentunit",
           [prom(ratio_or_zero(matched(BY_MODEL, outcomes), sum_by(BY_MODEL, outcomes)), MODEL_LEGEND)],
           w=10, min_val=0, max_val=1),
        ts("Precision and recall by class (outcome counters)",
           "Precision per predicted class and recall per actual class, from the fleet's outcome counters.",
           "percentunit",
           [prom(ratio_or_zero(matched(by_pred, outcomes), sum_by(by_pred, outcomes)),
                 "precision {{ml_prediction_class}} " + MODEL_LEGEND),
            prom(ratio_or_zero(matched(by_actual, outcomes), sum_by(by_actual, outcomes)),
                 "recall {{ml_outcome_class}} " + MODEL_LEGEND)], w=10, min_val=0, max_val=1),
        ts("Classification quality (in-process window)",
           "Accuracy, F1, ROC AUC and friends computed in each process over its quality window "
           "(ml.quality.score), averaged over replicas.", "percentunit",
           [prom(f"avg by ({by(by_metric)}) ({selector(score, *SCOPE, QUALITY_CLS)})",
                 "{{ml_quality_metric}} " + MODEL_LEGEND)], min_val=0, max_val=1),
        ts("Regression error (in-process window)",
           "MAE, RMSE (units of the target) and MAPE, averaged over replicas.", "none",
           [prom(f"avg by ({by(by_metric)}) ({selector(score, *SCOPE, QUALITY_REG)})",
                 "{{ml_quality_metric}} " + MODEL_LEGEND)], min_val=0),
    ])
    board = section(board, "Predictions", [
        ts("Prediction mix", "Share of predictions per predicted class (ml.predictions).", "percentunit",
           [prom(f"{sum_by(by_pred, predictions)} / ignoring (ml_prediction_class) group_left "
                 f"{sum_by(BY_MODEL, predictions)}", "{{ml_prediction_class}} " + MODEL_LEGEND)],
           w=8, stack_percent=True, min_val=0, max_val=1),
        bucket_heatmap("Confidence distribution", "Predictions per confidence bucket over time. A shift to the "
                       "left is an early sign of drift, before labels arrive.", confidence, "percentunit", "Blues",
                       w=8),
        ts("Mean and p10 confidence", "Mean confidence and its 10th percentile.", "percentunit",
           [prom(f"{sum_by(BY_MODEL, rate(selector('ml_prediction_confidence_sum', *SCOPE)))} / "
                 f"{sum_by(BY_MODEL, rate(selector('ml_prediction_confidence_count', *SCOPE)))}",
                 "mean " + MODEL_LEGEND),
            prom(quantile(0.1, confidence, BY_MODEL), "p10 " + MODEL_LEGEND)], w=8, min_val=0, max_val=1),
    ])
    by_reason = (*BY_MODEL, "otel_ml_reason")
    return section(board, "Label backlog", [
        ts("Predictions waiting for a label",
           "Predictions remembered until their ground truth arrives (ml.outcomes.pending), all replicas.", "short",
           [prom(sum_by(BY_MODEL, selector("ml_outcomes_pending", *SCOPE)), MODEL_LEGEND)], w=8, min_val=0),
        ts("Labels joined and unmatched",
           "Ground truth per second: joined to a remembered prediction (ml.outcomes), or unmatched by reason "
           "(unknown id, or the prediction had expired).", "short",
           [prom(sum_by(BY_MODEL, rate(selector("ml_outcomes_total", *SCOPE))), "joined " + MODEL_LEGEND),
            prom(sum_by(by_reason, rate(selector("ml_outcomes_unmatched_total", *SCOPE))),
                 "unmatched {{otel_ml_reason}} " + MODEL_LEGEND)], w=8, min_val=0),
        ts("Predictions that never got a label",
           "Predictions per second that left the store unlabelled, by reason (expired after the outcome TTL, or "
           "evicted by the size bound): labels that will be missing from accuracy.", "short",
           [prom(sum_by(by_reason, rate(selector("ml_predictions_unlabelled_total", *SCOPE))),
                 "{{otel_ml_reason}} " + MODEL_LEGEND)], w=8, min_val=0),
    ])
