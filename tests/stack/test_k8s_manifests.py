"""collector/k8s/: OpenTelemetry Operator resources for the agent/gateway layout, checked offline.

* they are what collector/k8s/render.py makes of the collector configs (no hand-edited drift);
* each OpenTelemetryCollector validates against the operator's v1beta1 CRD schema (vendored in
  collector/k8s/schema/, source and version inside), closed against unknown fields the way the API
  server prunes them; each plain object against Kubernetes' own field lists (k8s-objects.json);
* the embedded collector configs pass the built collector's ``validate`` with the pods' env;
* the pieces fit: the agents' resolver names the headless Service, whose selector matches the
  labels the operator puts on gateway pods, and the resolver's ServiceAccount may list EndpointSlices.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema  # a dev dependency (pyproject.toml): a missing install fails, never skips
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "collector" / "k8s"
BINARY = REPO / ".stack" / "bin" / "otelcol-otel-ml"
MANIFESTS = ("agent.yaml", "gateway.yaml")


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("otel_ml_k8s_render", K8S / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _all_docs() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in MANIFESTS:
        for doc in _docs(name):
            yield name, doc


def _closed(schema: Any) -> Any:
    """Objects with declared properties reject others, unless the CRD preserves unknown fields
    (spec.config's components): what the API server's pruning and strict validation do."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


CRD_SCHEMA = _closed(json.loads((K8S / "schema" / "opentelemetrycollector-v1beta1.json").read_text()))
K8S_SCHEMAS = json.loads((K8S / "schema" / "k8s-objects.json").read_text())


def validation_errors(doc: dict[str, Any]) -> list[str]:
    if doc.get("kind") == "OpenTelemetryCollector":
        assert doc.get("apiVersion") == "opentelemetry.io/v1beta1"
        schema = {k: v for k, v in CRD_SCHEMA.items() if k != "_source"}
    else:
        assert doc.get("kind") in K8S_SCHEMAS["kinds"], f"no schema vendored for kind {doc.get('kind')}"
        schema = {**K8S_SCHEMAS["kinds"][doc["kind"]], "definitions": K8S_SCHEMAS["definitions"]}
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_manifests_are_rendered_from_the_collector_configs() -> None:
    rendered = _render_module().render()
    for name in MANIFESTS:
        assert (K8S / name).read_text() == rendered[name], \
            f"collector/k8s/{name} is stale: run `.venv/bin/python collector/k8s/render.py`"


@pytest.mark.parametrize(("name", "doc"), list(_all_docs()),
                         ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in _all_docs()])
def test_every_object_validates_against_its_schema(name: str, doc: dict[str, Any]) -> None:
    assert validation_errors(doc) == []


def test_schemas_reject_what_the_api_server_would() -> None:
    """The validation can fail: an unknown field, a wrong enum, a wrong type, a misspelt Service field."""
    gateway, service = _docs("gateway.yaml")
    bad_spec = copy.deepcopy(gateway)
    bad_spec["spec"]["replica"] = 2
    wrong_mode = copy.deepcopy(gateway)
    wrong_mode["spec"]["mode"] = "replicaset"
    wrong_type = copy.deepcopy(gateway)
    wrong_type["spec"]["ports"][0]["port"] = "four-three-one-seven"
    bad_service = copy.deepcopy(service)
    bad_service["spec"]["selectr"] = bad_service["spec"].pop("selector")
    for doc in (bad_spec, wrong_mode, wrong_type, bad_service):
        assert validation_errors(doc), doc["spec"]


def _pod_env(collector: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in collector["spec"].get("env") or []}


@pytest.mark.skipif(not BINARY.is_file(), reason=f"{BINARY} not built (run `otel-ml stack build`)")
@pytest.mark.parametrize("name", MANIFESTS)
def test_embedded_configs_pass_the_collectors_validate(name: str, tmp_path: Path) -> None:
    (collector,) = [d for d in _docs(name) if d["kind"] == "OpenTelemetryCollector"]
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump(collector["spec"]["config"]))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_ML_")}
    done = subprocess.run([str(BINARY), "validate", f"--config={config}"], capture_output=True, text=True,
                          env={**clean, **_pod_env(collector)}, timeout=60)
    assert done.returncode == 0, done.stderr


def test_agents_resolve_gateways_through_the_headless_service() -> None:
    agent, account, role, binding = _docs("agent.yaml")
    gateway, service = _docs("gateway.yaml")
    assert (agent["spec"]["mode"], gateway["spec"]["mode"]) == ("daemonset", "deployment")
    # Every load-balancing exporter follows the headless Service (namespace-qualified).
    resolvers = [e["resolver"] for e in agent["spec"]["config"]["exporters"].values()]
    lb_service = f"{service['metadata']['name']}.{service['metadata']['namespace']}"
    assert resolvers and all(r == {"k8s": {"service": lb_service, "ports": [4317]}} for r in resolvers)
    assert service["spec"]["clusterIP"] == "None"
    # The operator labels gateway pods with the CR's labels and app.kubernetes.io/component.
    pod_labels = {**gateway["metadata"]["labels"], "app.kubernetes.io/component": "opentelemetry-collector"}
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    # The agent's k8s resolver needs get/list/watch on EndpointSlices, through its ServiceAccount.
    assert agent["spec"]["serviceAccount"] == account["metadata"]["name"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    assert {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"]} in role["rules"]


def test_k8s_runs_the_pinned_collector_on_all_interfaces() -> None:
    """Same image version as the ocb manifest; pods listen on 0.0.0.0 (the configs' default is loopback)."""
    version = re.search(r"otlpreceiver v(\d+\.\d+\.\d+)", (REPO / "collector" / "manifest.yaml").read_text())
    assert version is not None
    for name in MANIFESTS:
        (collector,) = [d for d in _docs(name) if d["kind"] == "OpenTelemetryCollector"]
        assert collector["spec"]["image"] == f"otel/opentelemetry-collector-contrib:{version.group(1)}"
        assert _pod_env(collector)["OTEL_ML_COLLECTOR_HOST"] == "0.0.0.0"


def test_the_agents_queue_directory_is_a_mounted_volume() -> None:
    """The agent's persistent queue lives on a volume mounted where OTEL_ML_AGENT_QUEUE_DIR points,
    not in the container's own filesystem (gone with the container, and the image's user cannot
    create /var/lib/...)."""
    (collector,) = [d for d in _docs("agent.yaml") if d["kind"] == "OpenTelemetryCollector"]
    spec = collector["spec"]
    queue_dir = _pod_env(collector)["OTEL_ML_AGENT_QUEUE_DIR"]
    (mount,) = [m for m in spec["volumeMounts"] if m["mountPath"] == queue_dir]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume or "hostPath" in volume, volume
    assert "file_storage/queue" in spec["config"]["service"]["extensions"]
