"""The committed dashboards: current with their generator, fixed UIDs, and the mixin conventions
(datasources and scope by variable, rate windows, exemplars, links)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dashboards.queries import Query, all_queries, dashboard_files, label_names, metric_names, selectors

ROOT = Path(__file__).resolve().parents[2]
UIDS = {
    "otel-ml-overview": "otel_ml / Service overview",
    "otel-ml-quality-drift": "otel_ml / Model quality and drift",
    "otel-ml-llm": "otel_ml / LLM",
    "otel-ml-gpu": "otel_ml / GPU",
    "otel-ml-ab": "otel_ml / A/B and canary comparison",
}
# Variables each dashboard must offer. The A/B dashboard picks one model and two arms
# (<version>/<variant>) instead of a version filter.
SCOPE_VARIABLES = {"datasource", "service", "model", "version"}
AB_VARIABLES = {"datasource", "service", "model", "baseline", "candidate"}
# Labels the OpenTelemetry SDK adds to every series: filtering on them ties a panel to one SDK.
SDK_LABELS = ("otel_scope_name", "otel_scope_version", "telemetry_sdk_")


def _boards() -> dict[str, dict[str, Any]]:
    return {b["uid"]: b for b in (json.loads(p.read_text()) for p in dashboard_files())}


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board["templating"]["list"]}


def test_committed_json_is_what_the_generator_writes() -> None:
    """dashboards/*.json equal `python dashboards/generate.py` output (fails when stale)."""
    pytest.importorskip("grafana_foundation_sdk", reason="the generator needs grafana-foundation-sdk (Python 3.11+)")
    from dashboards.generate import generate

    expected = generate()
    assert sorted(expected) == dashboard_files(), "a dashboard JSON without a builder, or the reverse"
    stale = [p.name for p, text in expected.items() if p.read_text() != text]
    assert not stale, f"stale: {stale}; run `python dashboards/generate.py`"


def test_json_round_trips_through_the_sdks_typed_models() -> None:
    """Each JSON parses into the SDK's typed dashboard model and encodes back to the same JSON.

    No maintained package ships a JSON schema for Grafana dashboards (the foundation SDK's schemas
    live only in its repository), so the typed models are the schema: a misspelt or unknown key -
    of the dashboard, a panel, its options or a query - is dropped by the round trip and fails here.
    """
    pytest.importorskip("grafana_foundation_sdk", reason="needs grafana-foundation-sdk (Python 3.11+)")
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()  # panel options and queries decode into their plugins' types
    for path in dashboard_files():
        original = json.loads(path.read_text())
        again = json.loads(JSONEncoder(sort_keys=True).encode(Dashboard.from_json(original)))
        assert again == original, path.name


def test_fixed_uids_and_titles() -> None:
    """The five dashboards exist under the UIDs other code links to, one file each, named by UID."""
    boards = _boards()
    assert {uid: b["title"] for uid, b in boards.items()} == UIDS
    assert sorted(p.stem for p in dashboard_files()) == sorted(UIDS)


def test_scope_variables() -> None:
    """$datasource (Prometheus), $service/$model/$version multi-value with All; $loki where logs are."""
    for uid, board in _boards().items():
        variables = _variables(board)
        assert set(AB_VARIABLES if uid == "otel-ml-ab" else SCOPE_VARIABLES) <= set(variables), uid
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        multi = ("service",) if uid == "otel-ml-ab" else ("service", "model", "version")
        for name in multi:
            v = variables[name]
            assert v["type"] == "query" and v["multi"] and v["includeAll"], (uid, name)
            assert v["allValue"] in (".*", ".+"), (uid, name)
            assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (uid, name)
        uses_loki = any(p["datasource"]["type"] == "loki" for p in _panels(board))
        assert uses_loki == ("loki" in variables), uid
        if uses_loki:
            assert variables["loki"]["type"] == "datasource" and variables["loki"]["query"] == "loki"


def test_variables_chain_the_scope() -> None:
    """$model lists models of the chosen services, $version versions of the chosen models."""
    for uid, board in _boards().items():
        variables = _variables(board)
        assert '"$service"' in variables["model"]["query"], uid
        if "version" in variables:
            assert '"$service"' in variables["version"]["query"] and '"$model"' in variables["version"]["query"]


def test_every_panel_and_target_reads_its_datasource_from_a_variable() -> None:
    """No datasource UID is hard-coded: ${datasource} for Prometheus, ${loki} for Loki."""
    want = {"prometheus": "${datasource}", "loki": "${loki}"}
    for uid, board in _boards().items():
        for panel in _panels(board):
            ds = panel["datasource"]
            assert ds["uid"] == want[ds["type"]], (uid, panel["title"])
            assert panel["targets"], (uid, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == ds, (uid, panel["title"], target["refId"])
                assert target["refId"], (uid, panel["title"])


def test_panel_ids_are_unique_and_stable() -> None:
    """Panel ids are 1..n in layout order, so links to a panel survive regeneration."""
    for uid, board in _boards().items():
        assert [p["id"] for p in board["panels"]] == list(range(1, len(board["panels"]) + 1)), uid


# Metrics whose series carry no model attributes, so filtering them by model would hide them.
NO_MODEL_LABELS = re.compile(r"^(http_server_|hw_|otel_ml_dropped_)")
RECORDING_RULE = re.compile(r":")


def _scope_problems(q: Query) -> list[str]:
    problems = []
    for metric, matchers in selectors(q.expr):
        have = set(matchers)
        if RECORDING_RULE.search(metric):
            # The fleet rules sum replicas by model and version: no service_name left to filter.
            need = {'ml_model_name=~"$model"', 'ml_model_version=~"$version"'}
        elif q.dashboard_uid == "otel-ml-ab":
            need = {'service_name=~"$service"', 'ml_model_name="$model"'}
        elif NO_MODEL_LABELS.search(metric):
            need = {'service_name=~"$service"'}
        else:
            need = {'service_name=~"$service"', 'ml_model_name=~"$model"', 'ml_model_version=~"$version"'}
        if not need <= have:
            problems.append(f"{metric}: missing {sorted(need - have)}")
    return problems


def test_every_prometheus_selector_filters_by_the_scope() -> None:
    """Every metric selector filters by $service, and by $model/$version where the metric has them."""
    problems = []
    for q in all_queries():
        if q.datasource != "prometheus":
            continue
        # Every occurrence of a metric is a selector with matchers: none reads a metric unfiltered.
        assert Counter(metric_names(q.expr)) == Counter(m for m, _ in selectors(q.expr)), q.expr
        problems += [f"{q.dashboard_uid} / {q.panel_title}: {p}" for p in _scope_problems(q)]
        if q.dashboard_uid == "otel-ml-ab":
            assert "$baseline" in q.expr or "$candidate" in q.expr, q.panel_title
    assert not problems, "\n".join(problems)


def test_loki_queries_filter_by_service_and_model() -> None:
    """Log queries select the chosen services and keep only the chosen models' inference logs."""
    loki = [q for q in all_queries() if q.datasource == "loki"]
    assert loki
    for q in loki:
        assert 'service_name=~"$service"' in q.expr and 'ml_model_name=~"$model"' in q.expr, q.panel_title


def test_no_hard_coded_sdk_labels() -> None:
    """No query filters or groups by otel_scope_* / telemetry_sdk_* (they differ per SDK version)."""
    for q in all_queries():
        used = label_names(q.expr)
        assert not [lb for lb in used if lb.startswith(SDK_LABELS)], (q.dashboard_uid, q.panel_title)


def test_rate_windows_use_the_rate_interval() -> None:
    """Range selectors use $__rate_interval, or $__range for "over the time range" instant values."""
    for q in all_queries():
        if q.datasource != "prometheus":
            continue
        for window in re.findall(r"\[([^\]]+)\]", q.expr):
            allowed = {"$__rate_interval", "$__range"}
            assert window in allowed, (q.dashboard_uid, q.panel_title, window)
            if window == "$__range":
                assert q.instant, (q.dashboard_uid, q.panel_title)


def test_latency_panels_show_exemplars() -> None:
    """Inference latency, TTFT and request-duration quantiles ask for exemplars (jump to the trace)."""
    wanted = {("otel-ml-overview", "Inference latency p50 / p90 / p99"),
              ("otel-ml-llm", "Time to first token p50 / p90 / p99"),
              ("otel-ml-llm", "Request duration p50 / p90 / p99"), ("otel-ml-ab", "p99 latency")}
    for uid, board in _boards().items():
        for panel in _panels(board):
            if (uid, panel["title"]) in wanted:
                wanted.discard((uid, panel["title"]))
                # One target asks: each asking target would fetch (and draw) the same exemplars again.
                assert [t.get("exemplar", False) for t in panel["targets"]].count(True) == 1, (uid, panel["title"])
    assert not wanted, f"panels not found: {wanted}"


def test_links_to_the_other_dashboards_carry_the_variables() -> None:
    """Each dashboard links to every dashboard tagged otel-ml, keeping time range and variables."""
    for uid, board in _boards().items():
        assert "otel-ml" in board["tags"], uid
        (link,) = board["links"]
        assert link["type"] == "dashboards" and link["tags"] == ["otel-ml"], uid
        assert link["includeVars"] is True and link["keepTime"] is True, uid


def test_panels_fit_the_grid() -> None:
    """No panel overlaps another or leaves the 24-column grid."""
    for uid, board in _boards().items():
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, (uid, panel["title"])
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, (uid, panel["title"])
            cells |= mine


def test_panel_titles_are_unique() -> None:
    """Titles name panels in reports and in the query list: no two alike on one dashboard."""
    for uid, board in _boards().items():
        titles = [p["title"] for p in _panels(board)]
        assert len(titles) == len(set(titles)), uid


def test_panel_count() -> None:
    """Every dashboard has content beyond its rows (counts in the report, not pinned)."""
    for uid, board in _boards().items():
        assert len(_panels(board)) >= 10, uid
