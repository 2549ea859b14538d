"""collector/config.yaml and collector/manifest.yaml agree, and the built collector accepts the config."""

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


def _load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "collector" / name).read_text()))


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


def drift(config: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Human-readable differences; empty when every used type has a module and vice versa."""
    problems = []
    used, stems = used_types(config), manifest_stems(manifest)
    for kind in KINDS:
        wanted = {TYPE_TO_MODULE_STEM.get(t, t.replace("_", "")) for t in used[kind]}
        for stem in sorted(wanted - stems[kind]):
            problems.append(f"{kind}: config uses {stem!r} but the manifest has no module for it")
        for stem in sorted(stems[kind] - wanted):
            problems.append(f"{kind}: manifest builds {stem!r} but config.yaml never uses it")
    return problems


def test_config_and_manifest_list_the_same_components() -> None:
    """Every component type in config.yaml has a manifest module, and no module goes unused."""
    assert drift(_load("config.yaml"), _load("manifest.yaml")) == []


def test_drift_check_notices_a_missing_and_an_unused_module() -> None:
    """The agreement check really fails when config and manifest diverge."""
    config, manifest = _load("config.yaml"), _load("manifest.yaml")
    config["processors"]["filter/errors"] = {}
    manifest["extensions"] = [e for e in manifest["extensions"] if "pprof" not in e["gomod"]]
    config["service"]["extensions"].remove("pprof")
    config["extensions"].pop("pprof")
    manifest["exporters"].append({"gomod": "example.com/x/fileexporter v1.0.0"})
    assert drift(config, manifest) == [
        "processors: config uses 'filter' but the manifest has no module for it",
        "exporters: manifest builds 'file' but config.yaml never uses it",
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


@pytest.mark.skipif(not BINARY.is_file(), reason=f"{BINARY} not built (run `otel-ml stack build`)")
@pytest.mark.parametrize("env", [{}, {"OTEL_ML_COLLECTOR_HOST": "0.0.0.0", "OTEL_ML_TRACE_SAMPLE_PERCENT": "100"}])
def test_built_collector_validates_the_config(env: dict[str, str]) -> None:
    """``otelcol-otel-ml validate`` accepts collector/config.yaml with default and compose env."""
    done = subprocess.run(
        [str(BINARY), "validate", f"--config={REPO / 'collector/config.yaml'}"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
    )
    assert done.returncode == 0, done.stderr


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
    docs = [d for block in blocks for d in yaml.safe_load_all(block)]
    kinds = {d["kind"] for d in docs}
    assert kinds == {"Deployment", "Service"}
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--config=/etc/otel-ml/collector/config.yaml"]
    assert {e["name"] for e in container["env"]} <= set(re.findall(r"OTEL_ML_[A-Z_]+", (root / "collector" /
                                                                                    "config.yaml").read_text()))
