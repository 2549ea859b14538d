"""The collector configs (config.yaml, the secure.yaml and agent-secure.yaml overlays, the fleet's
agent.yaml and gateway.yaml) and collector/manifest.yaml agree, and the built collector accepts every config."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
# Component types whose name is not their module's name minus the kind suffix.
TYPE_TO_MODULE_STEM = {"otlp_grpc": "otlp", "otlp_http": "otlphttp"}
BINARY = REPO / ".stack" / "bin" / "otelcol-otel-ml"
# Every config the manifest's binary must run; secure.yaml and agent-secure.yaml are overlays (merged
# over another).
CONFIGS = ("config.yaml", "secure.yaml", "agent.yaml", "agent-secure.yaml", "gateway.yaml")


def _load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "collector" / name).read_text()))


def merge(base: Any, overlay: Any) -> Any:
    """The collector's merge of repeated --config: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        return {**base, **{k: merge(base[k], v) if k in base else v for k, v in overlay.items()}}
    return overlay


def gateway() -> dict[str, Any]:
    return dict(merge(_load("config.yaml"), _load("gateway.yaml")))


def used_types(config: dict[str, Any]) -> dict[str, set[str]]:
    """Component types (``type`` of ``type/name``) per kind, from definitions and pipelines."""
    used: dict[str, set[str]] = {k: set() for k in KINDS}
    for kind in KINDS:
        for key in config.get(kind) or {}:
            used[kind].add(key.split("/", 1)[0])
    service = config.get("service") or {}
    for key in service.get("extensions") or []:
        used["extensions"].add(key.split("/", 1)[0])
    for pipeline in (service.get("pipelines") or {}).values():
        for kind in ("receivers", "processors", "exporters"):
            for key in pipeline.get(kind) or []:
                used[kind].add(key.split("/", 1)[0])
    return used


def manifest_stems(manifest: dict[str, Any]) -> dict[str, set[str]]:
    """Per kind, each module's last path element minus its kind suffix (otlpreceiver -> otlp)."""
    stems: dict[str, set[str]] = {k: set() for k in KINDS}
    for kind in KINDS:
        suffix = kind[:-1]  # receivers -> receiver
        for entry in manifest.get(kind) or []:
            module = entry["gomod"].split()[0]
            stems[kind].add(module.rsplit("/", 1)[-1].removesuffix(suffix))
    return stems


def drift(configs: dict[str, Any] | list[dict[str, Any]], manifest: dict[str, Any]) -> list[str]:
    """Human-readable differences; empty when every type used by any of ``configs`` has a module
    and every module is used by one of them."""
    problems = []
    used: dict[str, set[str]] = {k: set() for k in KINDS}
    for config in configs if isinstance(configs, list) else [configs]:
        for kind, types in used_types(config).items():
            used[kind] |= types
    stems = manifest_stems(manifest)
    for kind in KINDS:
        wanted = {TYPE_TO_MODULE_STEM.get(t, t.replace("_", "")) for t in used[kind]}
        for stem in sorted(wanted - stems[kind]):
            problems.append(f"{kind}: config uses {stem!r} but the manifest has no module for it")
        for stem in sorted(stems[kind] - wanted):
            problems.append(f"{kind}: manifest builds {stem!r} but no config uses it")
    return problems


def test_configs_and_manifest_list_the_same_components() -> None:
    """Every component type in the configs has a manifest module, and no module goes unused."""
    assert drift([_load(c) for c in CONFIGS], _load("manifest.yaml")) == []


def test_drift_check_notices_a_missing_and_an_unused_module() -> None:
    """The agreement check really fails when config and manifest diverge."""
    config, manifest = _load("config.yaml"), _load("manifest.yaml")
    config["processors"]["filter/errors"] = {}
    manifest["exporters"].append({"gomod": "example.com/x/fileexporter v1.0.0"})
    others = [_load(c) for c in CONFIGS if c != "config.yaml"]
    assert drift([config, *others], manifest) == [
        "processors: config uses 'filter' but the manifest has no module for it",
        "exporters: manifest builds 'file' but no config uses it",
    ]
    # The fleet's components count: without the agent's configs the load-balancing exporter and the
    # queue's file storage are unused.
    agentless = [_load(c) for c in CONFIGS if c not in ("agent.yaml", "agent-secure.yaml")]
    assert drift(agentless, _load("manifest.yaml")) == [
        "exporters: manifest builds 'loadbalancing' but no config uses it",
        "extensions: manifest builds 'filestorage' but no config uses it",
    ]


def test_manifest_pins_one_version_per_module_family() -> None:
    """Core beta, contrib and stable providers are each pinned to a single version."""
    versions: dict[str, set[str]] = {}
    manifest = _load("manifest.yaml")
    for kind in (*KINDS, "providers"):
        for entry in manifest.get(kind) or []:
            module, version = entry["gomod"].split()
            family = "contrib" if "collector-contrib" in module else ("stable" if "/confmap/" in module else "core")
            versions.setdefault(family, set()).add(version)
    assert all(len(v) == 1 for v in versions.values()), versions


def test_metrics_pipeline_skips_tail_sampling_and_all_pipelines_redact() -> None:
    """Tail sampling is for traces only; the redaction step runs on every signal."""
    pipelines = _load("config.yaml")["service"]["pipelines"]
    assert "tail_sampling" in pipelines["traces"]["processors"]
    for name, p in pipelines.items():
        assert p["processors"][0] == "memory_limiter", name
        assert "attributes/redact" in p["processors"], name
        if name != "traces":
            assert "tail_sampling" not in p["processors"], name


def _validate(configs: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_ML_")}
    return subprocess.run(
        [str(BINARY), "validate", *(f"--config={REPO / 'collector' / c}" for c in configs)],
        capture_output=True, text=True, env={**clean, **env}, timeout=60,
    )


TOKEN_FILE = {"OTEL_ML_AUTH_TOKEN_FILE": "/run/secrets/otel-ml-token"}
ZERO = {"OTEL_ML_COLLECTOR_HOST": "0.0.0.0", "OTEL_ML_TRACE_SAMPLE_PERCENT": "100"}
FLEET = {"OTEL_ML_GATEWAY_ENDPOINTS": "[gw-0.gw:4317, gw-1.gw:4317]", "OTEL_ML_GATEWAY_TLS_INSECURE": "false",
         "OTEL_ML_GATEWAY_CA_FILE": "/etc/otel-ml/ca.pem"}


@pytest.mark.skipif(not BINARY.is_file(), reason=f"{BINARY} not built (run `otel-ml stack build`)")
@pytest.mark.parametrize(("configs", "env"), [
    (["config.yaml"], {}),
    (["config.yaml"], ZERO),
    (["config.yaml", "secure.yaml"], TOKEN_FILE),
    (["config.yaml", "secure.yaml"], {"OTEL_ML_AUTH_TOKEN": "from-a-secret"}),
    (["agent.yaml"], {}),
    (["agent.yaml"], {**ZERO, **FLEET}),
    (["agent.yaml", "secure.yaml", "agent-secure.yaml"],
     {**TOKEN_FILE, "OTEL_ML_GATEWAY_TOKEN_FILE": "/run/secrets/gateway-token"}),
    (["config.yaml", "gateway.yaml"], {}),
    (["config.yaml", "gateway.yaml"], {**ZERO, "OTEL_ML_TRACE_SAMPLE_PERCENT": "0"}),
    (["config.yaml", "gateway.yaml", "secure.yaml"], TOKEN_FILE),
], ids=lambda v: "+".join(v) if isinstance(v, list) else ",".join(sorted(v)) or "defaults")
def test_built_collector_validates_the_config(configs: list[str], env: dict[str, str]) -> None:
    """``otelcol-otel-ml validate`` accepts every config (and overlay) with default and deploy env."""
    done = _validate(configs, env)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(not BINARY.is_file(), reason=f"{BINARY} not built (run `otel-ml stack build`)")
def test_secure_overlay_without_a_token_does_not_start_open() -> None:
    """With neither OTEL_ML_AUTH_TOKEN_FILE nor OTEL_ML_AUTH_TOKEN the overlay is refused, rather
    than running the receivers without authentication."""
    done = _validate(["config.yaml", "secure.yaml"], {})
    assert done.returncode != 0
    assert "no bearer token provided" in done.stderr


def test_secure_overlay_holds_no_secret_and_keeps_the_base_extensions() -> None:
    """Token and key material only through ${env:...}; the overlay's extensions list (lists are
    replaced, not merged) is each base config's plus the authenticator - for the agent, whose list
    also names its queue's storage, agent-secure.yaml's is - and both OTLP protocols get TLS and
    auth."""
    secure = _load("secure.yaml")
    auth = secure["extensions"]["bearertokenauth/otlp_in"]
    assert set(auth) == {"filename", "token"}
    assert all(re.fullmatch(r"\$\{env:OTEL_ML_[A-Z_]+:-\}", v) for v in auth.values()), auth
    for base in (_load("config.yaml"), gateway()):
        assert secure["service"]["extensions"] == [*base["service"]["extensions"], "bearertokenauth/otlp_in"]
    # agent-secure.yaml: the agent's list plus both authenticators (receivers, link to the gateways);
    # its token material also only through ${env:...}, and every gateway link has TLS and the token.
    agent_secure = _load("agent-secure.yaml")
    assert agent_secure["service"]["extensions"] == [*_load("agent.yaml")["service"]["extensions"],
                                                     "bearertokenauth/otlp_in", "bearertokenauth/to_gateway"]
    client = agent_secure["extensions"]["bearertokenauth/to_gateway"]
    assert set(client) == {"filename", "token"}
    assert all(re.fullmatch(r"\$\{env:OTEL_ML_[A-Z_]+:-\}", v) for v in client.values()), client
    assert set(agent_secure["exporters"]) == set(_load("agent.yaml")["exporters"])
    for exporter in agent_secure["exporters"].values():
        assert exporter["protocol"]["otlp"] == {"tls": {"insecure": False},
                                                "auth": {"authenticator": "bearertokenauth/to_gateway"}}
    for protocol in ("grpc", "http"):
        settings = secure["receivers"]["otlp"]["protocols"][protocol]
        assert settings["auth"] == {"authenticator": "bearertokenauth/otlp_in"}
        assert settings["tls"]["cert_file"].startswith("${env:OTEL_ML_TLS_CERT_FILE")
        assert settings["tls"]["key_file"].startswith("${env:OTEL_ML_TLS_KEY_FILE")


def test_gateway_processes_like_config_yaml() -> None:
    """gateway.yaml, an overlay on config.yaml, moves listeners and caches decisions but leaves
    the processing alone: same pipelines, same processors apart from tail sampling's decision cache,
    same exporters apart from the Prometheus endpoint."""
    config, merged, overlay = _load("config.yaml"), gateway(), _load("gateway.yaml")
    assert "pipelines" not in overlay["service"]
    assert merged["service"]["pipelines"] == config["service"]["pipelines"]
    assert overlay["processors"] == {"tail_sampling": {"decision_cache": {"sampled_cache_size": 100000}}}
    assert set(overlay["exporters"]) == {"prometheus"} and set(overlay["exporters"]["prometheus"]) == {"endpoint"}
    assert merged["processors"]["tail_sampling"]["policies"] == config["processors"]["tail_sampling"]["policies"]


def test_agent_routes_traces_by_trace_id_to_the_gateways() -> None:
    """Spans go to gateways by trace id (whole traces meet one tail sampler); metrics and logs by
    service; the agent itself samples and redacts nothing (one place for that: the gateways)."""
    agent = _load("agent.yaml")
    pipelines = agent["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["load_balancing/traces"]
    assert agent["exporters"]["load_balancing/traces"]["routing_key"] == "traceID"
    for signal in ("metrics", "logs"):
        assert pipelines[signal]["exporters"] == ["load_balancing/by_service"]
    assert agent["exporters"]["load_balancing/by_service"]["routing_key"] == "service"
    for p in pipelines.values():
        assert p["processors"] == ["memory_limiter"]  # batching happens after the disk queue


def test_agent_queues_on_disk_at_the_load_balancing_level() -> None:
    """Both exporters queue in the file storage (enabled in the service) at the load_balancing level,
    bounded, with retries; the per-gateway otlp exporters neither queue nor retry, so a failed batch
    goes back to the disk queue instead of waiting in memory."""
    agent = _load("agent.yaml")
    storage = agent["extensions"]["file_storage/queue"]
    assert storage["directory"] == "${env:OTEL_ML_AGENT_QUEUE_DIR:-/tmp/otel-ml-agent-queue}"
    assert storage["create_directory"] is True
    assert "file_storage/queue" in agent["service"]["extensions"]
    for exporter in agent["exporters"].values():
        queue = exporter["sending_queue"]
        assert queue["enabled"] is True and queue["storage"] == "file_storage/queue", queue
        assert queue["sizer"] == "requests" and queue["queue_size"].startswith("${env:OTEL_ML_GATEWAY_QUEUE_SIZE")
        assert queue["batch"]["sizer"] == "items" and queue["batch"]["flush_timeout"] == "1s"
        assert exporter["retry_on_failure"]["enabled"] is True
        otlp = exporter["protocol"]["otlp"]
        assert otlp["sending_queue"] == {"enabled": False} and otlp["retry_on_failure"] == {"enabled": False}


@pytest.mark.parametrize("name", ["agent.yaml", "gateway.yaml"])
def test_fleet_listeners_bind_the_configured_host(name: str) -> None:
    """Every listener is ${env:OTEL_ML_COLLECTOR_HOST:-127.0.0.1}:<port from env>, so the default
    is loopback and several collectors fit on one machine (the gateway: merged over config.yaml)."""
    config = _load(name) if name == "agent.yaml" else gateway()
    endpoints = [e["endpoint"] for e in config["extensions"].values() if "endpoint" in e]
    endpoints += [p["endpoint"] for p in config["receivers"]["otlp"]["protocols"].values()]
    endpoints += [e["endpoint"] for e in config["exporters"].values()
                  if e.get("endpoint", "").startswith("${env:OTEL_ML_COLLECTOR_HOST")]
    assert len(endpoints) >= 5
    for endpoint in endpoints:
        assert re.fullmatch(r"\$\{env:OTEL_ML_COLLECTOR_HOST:-127\.0\.0\.1\}:\$\{env:OTEL_ML_[A-Z_]+_PORT:-\d+\}",
                            endpoint), endpoint
    prom = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert prom["host"] == "${env:OTEL_ML_COLLECTOR_HOST:-127.0.0.1}"


def test_deploy_docs_use_the_pinned_collector_and_valid_manifests() -> None:
    """collector/README.md's Docker and Kubernetes examples run the same collector version as the
    manifest and compose.yaml, with the config path the image mounts, and their YAML parses."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "collector" / "README.md").read_text()
    manifest = (root / "collector" / "manifest.yaml").read_text()
    version = re.search(r"otlpreceiver v(\d+\.\d+\.\d+)", manifest)
    assert version is not None
    images = set(re.findall(r"otel/opentelemetry-collector-contrib:([\d.]+)", readme))
    assert images == {version.group(1)}
    assert f"otel/opentelemetry-collector-contrib:{version.group(1)}" in (root / "compose.yaml").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    docs = [d for block in blocks for d in yaml.safe_load_all(block) if "kind" in d]
    kinds = {d["kind"] for d in docs}
    assert kinds == {"Deployment", "Service"}
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--config=/etc/otel-ml/collector/config.yaml"]
    assert {e["name"] for e in container["env"]} <= set(re.findall(r"OTEL_ML_[A-Z_]+", (root / "collector" /
                                                                                    "config.yaml").read_text()))


def test_readme_documents_every_variable_of_the_variants() -> None:
    """Each OTEL_ML_* variable that secure.yaml, agent.yaml and gateway.yaml read is in collector/README.md."""
    readme = (REPO / "collector" / "README.md").read_text()
    for name in ("secure.yaml", "agent.yaml", "agent-secure.yaml", "gateway.yaml"):
        variables = set(re.findall(r"\$\{env:(OTEL_ML_[A-Z_]+)", (REPO / "collector" / name).read_text()))
        assert variables
        missing = {v for v in variables if v not in readme}
        assert missing == set(), name
