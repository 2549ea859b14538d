"""Grafana provisioning: datasources with stable UIDs wired for the jumps, a dashboard provider
reading the generated JSON, and compose.yaml mounting both where Grafana looks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dashboards.queries import dashboard_files

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "stack" / "grafana" / "provisioning"


def _datasources() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "otel-ml.yaml").read_text())
    assert doc["apiVersion"] == 1
    return {d["uid"]: d for d in doc["datasources"]}


def _by_type(kind: str) -> dict[str, Any]:
    (ds,) = [d for d in _datasources().values() if d["type"] == kind]
    return ds


def _grafana() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["grafana"])


def test_datasources_have_stable_uids_and_one_default() -> None:
    """Prometheus, Loki, Jaeger and Alertmanager, each once, Prometheus the default."""
    sources = _datasources()
    assert {d["type"] for d in sources.values()} == {"prometheus", "loki", "jaeger", "alertmanager"}
    assert all(uid.startswith("otel-ml-") for uid in sources)
    assert [d["type"] for d in sources.values() if d.get("isDefault")] == ["prometheus"]


def test_exemplars_jump_to_jaeger() -> None:
    """A Prometheus exemplar's trace_id label opens the trace in the Jaeger datasource."""
    (dest,) = _by_type("prometheus")["jsonData"]["exemplarTraceIdDestinations"]
    assert dest["name"] == "trace_id" and dest["datasourceUid"] == _by_type("jaeger")["uid"]


def test_log_lines_jump_to_their_trace() -> None:
    """Loki's derived field reads the trace_id structured metadata and opens it in Jaeger."""
    (field,) = _by_type("loki")["jsonData"]["derivedFields"]
    assert field["matcherType"] == "label" and field["matcherRegex"] == "trace_id"
    assert field["datasourceUid"] == _by_type("jaeger")["uid"]
    assert field["url"] == "$${__value.raw}"  # $$: Grafana would expand ${...} in provisioning files


def test_spans_jump_to_their_logs() -> None:
    """Jaeger's trace-to-logs asks Loki for the trace id in structured metadata."""
    cfg = _by_type("jaeger")["jsonData"]["tracesToLogsV2"]
    assert cfg["datasourceUid"] == _by_type("loki")["uid"]
    assert cfg["filterByTraceID"] is True and cfg["customQuery"] is True
    assert cfg["query"] == '{service_name=~".+"} | trace_id="$${__trace.traceId}"'


def test_dashboard_provider_reads_the_mounted_json() -> None:
    """The provider's path is where compose.yaml mounts dashboards/, which holds the JSON."""
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "otel-ml.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    assert "foldersFromFilesStructure" not in provider["options"]  # it and `folder` exclude each other
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in _grafana()["volumes"])
    assert mounts["./dashboards"] == provider["options"]["path"]
    assert dashboard_files()


def test_compose_grafana_loads_this_provisioning() -> None:
    """GF_PATHS_PROVISIONING is where stack/grafana/provisioning is mounted, read-only."""
    grafana = _grafana()
    assert grafana["image"].startswith("grafana/grafana:")
    mounts = {v.split(":")[0]: v.split(":")[1:] for v in grafana["volumes"]}
    target, mode = mounts["./stack/grafana/provisioning"]
    assert target == grafana["environment"]["GF_PATHS_PROVISIONING"] and mode == "ro"
    assert mounts["./dashboards"][1] == "ro"


def test_dashboards_use_provisioned_datasource_types() -> None:
    """Every datasource variable and panel names a type the provisioning defines."""
    types = {d["type"] for d in _datasources().values()}
    for path in dashboard_files():
        board = json.loads(path.read_text())
        for var in board["templating"]["list"]:
            if var["type"] == "datasource":
                assert var["query"] in types, (path.name, var["name"])
        for panel in board["panels"]:
            if "datasource" in panel:
                assert panel["datasource"]["type"] in types, (path.name, panel["title"])
