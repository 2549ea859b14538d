"""dashboards.queries: the query list other tests run against a real Prometheus and Loki."""

from __future__ import annotations

import re

import pytest

from dashboards.queries import ALL, Query, all_queries, all_variables, metric_names

VALUES = {"service": ALL, "model": ALL, "version": ALL, "request_model": ALL, "gpu": ALL, "feature": "f"}
AB_VALUES = {"service": ALL, "model": "m", "baseline": "1/main", "candidate": "2/canary"}


def _one(uid: str, title: str, ref: str = "A") -> Query:
    (q,) = [q for q in all_queries() if (q.dashboard_uid, q.panel_title, q.ref_id) == (uid, title, ref)]
    return q


def test_lists_every_target_of_every_dashboard() -> None:
    """One Query per panel target, Prometheus and Loki, all five dashboards."""
    queries = all_queries()
    assert {q.dashboard_uid for q in queries} == set(all_variables())
    assert {q.datasource for q in queries} == {"prometheus", "loki"}
    assert len({(q.dashboard_uid, q.panel_title, q.ref_id) for q in queries}) == len(queries)


def test_every_query_renders_without_template_variables_left() -> None:
    """With a value for each dashboard variable, no $variable remains (label_replace's $1 stays)."""
    for q in all_queries():
        out = q.render(AB_VALUES if q.dashboard_uid == "otel-ml-ab" else VALUES)
        left = set(re.findall(r"\$\{?(\w+)", out)) - {"1"}
        assert not left, (q.dashboard_uid, q.panel_title, left)


def test_multi_value_variables_become_escaped_regexes() -> None:
    """Several values -> (a|b) with regex metacharacters escaped; All -> the allValue."""
    q = _one("otel-ml-overview", "Inference rate")
    out = q.render({"service": ["fraud-api", "a.b"], "model": ["fraud"], "version": ALL})
    assert 'service_name=~"(fraud-api|a\\\\.b)"' in out
    assert 'ml_model_name=~"fraud"' in out and 'ml_model_version=~".*"' in out
    assert "[1m]" in out
    assert 'service_name=~".+"' in q.render({"service": ALL, "model": ALL, "version": ALL})


def test_single_value_variables_are_substituted_as_is() -> None:
    """$feature, the A/B model and arms are plain values; builtins follow the keyword arguments."""
    q = _one("otel-ml-ab", "Inference rate")
    out = q.render(AB_VALUES, rate_interval="2m")
    assert 'ml_model_name="m"' in out and '"arm", "1/main"' in out and "[2m]" in out
    bins = _one("otel-ml-quality-drift", "Reference vs current bin proportions: $feature", "B")
    assert 'ml_feature_name="f"' in bins.render(VALUES, range="6h") and "[6h]" in bins.render(VALUES, range="6h")
    with pytest.raises(ValueError, match="one value"):
        q.render({**AB_VALUES, "model": ["a", "b"]})


def test_missing_variable_is_named() -> None:
    """Forgetting a variable fails with its name, not with a query Prometheus rejects later."""
    with pytest.raises(KeyError, match=r"\$version"):
        _one("otel-ml-overview", "Inference rate").render({"service": ALL, "model": ALL})


def test_metric_names_of_a_query() -> None:
    """Query.metrics lists what the expression reads; Loki queries read no metrics."""
    assert _one("otel-ml-overview", "Inference rate").metrics == {"ml_inference_duration_seconds_count"}
    assert all(not q.metrics for q in all_queries() if q.datasource == "loki")
    assert metric_names('sum by (le) (rate(a_bucket{x="y"}[5m])) / on (b) group_left c') == ["a_bucket", "c"]
    with pytest.raises(ValueError, match="unknown PromQL function"):
        metric_names("rat(a[5m])")
