"""The panels' PromQL parses, and the tricky expressions compute what their panels say.

``promtool check rules`` parses every panel and dropdown query (variables substituted the way
Grafana does). ``promtool test rules`` then evaluates the expressions that rely on PromQL tricks
against series built to exercise them: accuracy from outcome counters (predicted == actual),
issue rates over offered values, HTTP metrics in old, stable and dup semconv modes, and the A/B
arms (the unlabelled main variant, a canary of another version).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.queries import ALL, Query, all_queries, all_variables
from otel_ml._internal import env
from otel_ml._internal.stack.paths import StackPaths

ROOT = Path(__file__).resolve().parents[2]
RATE = "5m"
RANGE = "10m"
EVAL = "10m"
# Every variable a dashboard has, with a value: All where it can be, else one real-looking value.
VALUES: dict[str, Any] = {"service": ALL, "model": ALL, "version": ALL, "request_model": ALL, "gpu": ALL,
                          "feature": "f"}
AB_VALUES: dict[str, Any] = {"service": ALL, "model": "m", "baseline": "1/main", "candidate": "2/canary"}


def _promtool() -> str:
    """The Prometheus 3 promtool `otel-ml stack build` builds, else one on PATH."""
    built = StackPaths(ROOT).promtool
    if built.is_file():
        return str(built)
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get(env.REQUIRE_STACK) == "1":
        pytest.fail(f"no promtool: {built} not built and none on PATH ({env.REQUIRE_STACK}=1)")
    pytest.skip("no promtool (run `otel-ml stack build`)")


def _render(q: Query) -> str:
    values = AB_VALUES if q.dashboard_uid == "otel-ml-ab" else VALUES
    return q.render(values, rate_interval=RATE, range=RANGE)


def _query(uid: str, title: str, ref: str = "A") -> str:
    (q,) = [q for q in all_queries() if (q.dashboard_uid, q.panel_title, q.ref_id) == (uid, title, ref)]
    return _render(q)


def _round(v: float) -> float:
    # promtool compares floats almost exactly; both sides go through PromQL's round(v, 1e-6).
    inverse = 1.0 / 1e-06
    return math.floor(v * inverse + 0.5) / inverse


def _run_tests(tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    for t in tests:
        t.setdefault("interval", "1m")
        for case in t["promql_expr_test"]:
            case["expr"] = f"round({case['expr']}, 0.000001)"
            case.setdefault("eval_time", EVAL)
            for sample in case["exp_samples"]:
                sample["value"] = _round(sample["value"])
    path = tmp_path / "dashboards.test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    out = subprocess.run([_promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def _series(name: str, per_second: float, **labels: str) -> dict[str, str]:
    """A counter growing ``per_second`` from 0, sampled every minute for 20 minutes."""
    body = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": f"0+{per_second * 60:g}x20"}


def _labels(**labels: str) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _variable_exprs() -> list[str]:
    """The PromQL inside each dropdown query: label_values' selector, query_result's expression."""
    out = []
    for uid, variables in all_variables().items():
        values = AB_VALUES if uid == "otel-ml-ab" else VALUES
        for var in variables.values():
            if var.type != "query":
                continue
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", var.query) or re.fullmatch(r"query_result\((.*)\)",
                                                                                        var.query)
            assert m, var.query
            probe = Query(uid, "", f"${var.name}", "", "prometheus", m.group(1), True, "", variables)
            out.append(probe.render({k: v for k, v in values.items() if k != var.name} | {var.name: "x"},
                                    rate_interval=RATE, range=RANGE))
    return out


def test_every_prometheus_query_parses(tmp_path: Path) -> None:
    """promtool accepts every panel and dropdown expression, variables substituted."""
    exprs = [_render(q) for q in all_queries() if q.datasource == "prometheus"] + _variable_exprs()
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    out = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


M = {"service_name": "svc", "ml_model_name": "m", "ml_model_version": "1"}


def test_accuracy_precision_recall_from_outcome_counters(tmp_path: Path) -> None:
    """Correct = predicted == actual, summed over replicas; regression outcomes stay out."""
    a, b = {**M, "service_instance_id": "a"}, {**M, "service_instance_id": "b"}
    counts = {("a", "x", "x"): 3, ("a", "x", "y"): 1, ("a", "y", "x"): 2, ("a", "y", "y"): 4,
              ("b", "x", "x"): 3, ("b", "y", "x"): 2, ("b", "y", "y"): 5}
    series = [_series("ml_outcomes_total", n, **(a if r == "a" else b), ml_prediction_class=p, ml_outcome_class=o)
              for (r, p, o), n in counts.items()]
    series.append(_series("ml_outcomes_total", 10, service_name="svc", service_instance_id="a",
                          ml_model_name="r", ml_model_version="1"))  # a regression model: no classes
    correct = {c: sum(n for (_, p, o), n in counts.items() if p == o == c) for c in "xy"}
    predicted = {c: sum(n for (_, p, _o), n in counts.items() if p == c) for c in "xy"}
    actual = {c: sum(n for (_, _p, o), n in counts.items() if o == c) for c in "xy"}
    model = {"ml_model_name": "m", "ml_model_version": "1"}
    uid, panel = "otel-ml-quality-drift", "Precision and recall by class (outcome counters)"
    _run_tests(tmp_path, [{"input_series": series, "promql_expr_test": [
        {"expr": _query(uid, "Accuracy from outcome counters"),
         "exp_samples": [{"labels": _labels(**model), "value": 15 / 20}]},
        {"expr": _query(uid, "Accuracy over the time range"), "exp_samples": [{"labels": "{}", "value": 15 / 20}]},
        {"expr": _query(uid, panel, "A"), "exp_samples": [
            {"labels": _labels(**model, ml_prediction_class=c), "value": correct[c] / predicted[c]} for c in "xy"]},
        {"expr": _query(uid, panel, "B"), "exp_samples": [
            {"labels": _labels(**model, ml_outcome_class=c), "value": correct[c] / actual[c]} for c in "xy"]},
    ]}])


def test_issue_rates_are_shares_of_the_values_offered(tmp_path: Path) -> None:
    """Offered = binned values + missing/NaN/inf/type mismatches; unseen and out-of-range are binned."""
    f = {**M, "service_instance_id": "a", "ml_feature_name": "f"}
    issues = {"missing": 1, "nan": 0, "inf": 0, "type_mismatch": 1, "unseen_category": 2, "out_of_range": 0}
    series = [_series("ml_feature_values_total", 8, **f)]
    series += [_series("ml_data_quality_issues_total", n, **f, ml_data_quality_issue=i) for i, n in issues.items()]
    model = {"ml_model_name": "m", "ml_model_version": "1"}
    uid = "otel-ml-quality-drift"
    _run_tests(tmp_path, [{"input_series": series, "promql_expr_test": [
        {"expr": _query(uid, "Data-quality issue rate by issue"), "exp_samples": [
            {"labels": _labels(**model, ml_data_quality_issue=i), "value": n / 10} for i, n in issues.items()]},
        {"expr": _query(uid, "Missing-value rate by feature (time range)"),
         "exp_samples": [{"labels": _labels(**model, ml_feature_name="f"), "value": 0.1}]},
    ]}])


def test_http_panels_in_old_stable_and_dup_semconv_modes(tmp_path: Path) -> None:
    """A process on old semconv, one on stable, one on both: each counted once, in stable names."""
    new, old = "http_server_request_duration_seconds_count", "http_server_duration_milliseconds_count"
    series = [
        _series(new, 1, service_name="s1", service_instance_id="1", http_route="/p", http_response_status_code="200"),
        _series(old, 2, service_name="s2", service_instance_id="2", http_target="/p", http_status_code="200"),
        _series(old, 0.5, service_name="s2", service_instance_id="2", http_target="/p", http_status_code="500"),
        _series(new, 3, service_name="s3", service_instance_id="3", http_route="/p", http_response_status_code="200"),
        _series(old, 3, service_name="s3", service_instance_id="3", http_target="/p", http_status_code="200"),
    ]
    uid = "otel-ml-overview"
    _run_tests(tmp_path, [{"input_series": series, "promql_expr_test": [
        {"expr": _query(uid, "HTTP requests by route and status"), "exp_samples": [
            {"labels": _labels(http_route="/p", http_response_status_code="200"), "value": 6},
            {"labels": _labels(http_route="/p", http_response_status_code="500"), "value": 0.5}]},
        {"expr": _query(uid, "HTTP 5xx ratio by route"),
         "exp_samples": [{"labels": _labels(http_route="/p"), "value": 0.5 / 6.5}]},
    ]}])


def test_error_ratio_reads_zero_without_errors(tmp_path: Path) -> None:
    """Error ratios show 0, not "no data", while nothing has failed."""
    series = [_series("ml_inference_duration_seconds_count", 2, **M, service_instance_id="a")]
    _run_tests(tmp_path, [{"input_series": series, "promql_expr_test": [
        {"expr": _query("otel-ml-overview", "Error ratio"), "exp_samples": [{"labels": "{}", "value": 0}]},
    ]}])


def test_ab_arms_separate_versions_and_the_unlabelled_main_variant(tmp_path: Path) -> None:
    """Baseline 1/main (no variant label) against candidate 2/canary, with 2/main beside them."""
    base = {"service_name": "svc", "service_instance_id": "a", "ml_model_name": "m"}
    count = "ml_inference_duration_seconds_count"
    series = [
        _series(count, 0.9, **base, ml_model_version="1"),
        _series(count, 0.1, **base, ml_model_version="1", error_type="ValueError"),
        _series(count, 1.5, **base, ml_model_version="2", ml_model_variant="canary"),
        _series(count, 0.5, **base, ml_model_version="2", ml_model_variant="canary", error_type="ValueError"),
        _series(count, 5, **base, ml_model_version="2"),
        _series(count, 7, **{**base, "ml_model_name": "other"}, ml_model_version="1"),
        {"series": _series("ml_drift_status", 0, **base, ml_model_version="1", ml_feature_name="f")["series"],
         "values": "2x20"},
        {"series": _series("ml_drift_status", 0, **base, ml_model_version="2", ml_model_variant="canary",
                           ml_feature_name="f")["series"], "values": "0x20"},
    ]
    (arms,) = [e for e in _variable_exprs() if "count by (arm)" in e][:1]
    uid = "otel-ml-ab"
    _run_tests(tmp_path, [{"input_series": series, "promql_expr_test": [
        {"expr": arms, "exp_samples": [{"labels": _labels(arm="1/main"), "value": 2},
                                       {"labels": _labels(arm="2/canary"), "value": 2},
                                       {"labels": _labels(arm="2/main"), "value": 1}]},
        {"expr": _query(uid, "Inference rate", "A"), "exp_samples": [{"labels": "{}", "value": 1.0}]},
        {"expr": _query(uid, "Inference rate", "B"), "exp_samples": [{"labels": "{}", "value": 2.0}]},
        {"expr": _query(uid, "Error ratio", "A"), "exp_samples": [{"labels": "{}", "value": 0.1}]},
        {"expr": _query(uid, "Error ratio", "B"), "exp_samples": [{"labels": "{}", "value": 0.25}]},
        {"expr": _query(uid, "Ratios: candidate / baseline", "C"), "exp_samples": [{"labels": "{}", "value": 2.5}]},
        {"expr": _query(uid, "Drift status by feature", "A"),
         "exp_samples": [{"labels": _labels(ml_feature_name="f"), "value": 2}]},
        {"expr": _query(uid, "Drift status by feature", "B"),
         "exp_samples": [{"labels": _labels(ml_feature_name="f"), "value": 0}]},
    ]}])


def test_ab_accuracy_and_prediction_mix_per_arm(tmp_path: Path) -> None:
    """Accuracy and class shares of each arm, and the candidate / baseline ratio per class."""
    base = {"service_name": "svc", "service_instance_id": "a", "ml_model_name": "m"}
    one, two = {**base, "ml_model_version": "1"}, {**base, "ml_model_version": "2", "ml_model_variant": "canary"}
    series = [
        _series("ml_outcomes_total", 3, **one, ml_prediction_class="x", ml_outcome_class="x"),
        _series("ml_outcomes_total", 1, **one, ml_prediction_class="x", ml_outcome_class="y"),
        _series("ml_outcomes_total", 1, **two, ml_prediction_class="y", ml_outcome_class="y"),
        _series("ml_outcomes_total", 1, **two, ml_prediction_class="y", ml_outcome_class="x"),
        _series("ml_predictions_total", 3, **one, ml_prediction_class="x"),
        _series("ml_predictions_total", 1, **one, ml_prediction_class="y"),
        _series("ml_predictions_total", 1, **two, ml_prediction_class="x"),
        _series("ml_predictions_total", 1, **two, ml_prediction_class="y"),
    ]
    uid = "otel-ml-ab"
    _run_tests(tmp_path, [{"input_series": series, "promql_expr_test": [
        {"expr": _query(uid, "Accuracy (outcome counters)", "A"), "exp_samples": [{"labels": "{}", "value": 0.75}]},
        {"expr": _query(uid, "Accuracy (outcome counters)", "B"), "exp_samples": [{"labels": "{}", "value": 0.5}]},
        {"expr": _query(uid, "Prediction mix", "A"), "exp_samples": [
            {"labels": _labels(ml_prediction_class="x"), "value": 0.75},
            {"labels": _labels(ml_prediction_class="y"), "value": 0.25}]},
        {"expr": _query(uid, "Prediction mix: candidate / baseline by class"), "exp_samples": [
            {"labels": _labels(ml_prediction_class="x"), "value": 0.5 / 0.75},
            {"labels": _labels(ml_prediction_class="y"), "value": 0.5 / 0.25}]},
    ]}])
