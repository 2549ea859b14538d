"""compose.yaml runs the same components from official images, mounting files that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from otel_ml._internal.stack import alerting, build

REPO = Path(__file__).resolve().parents[2]
SERVICES = {"otel-collector", "prometheus", "alertmanager", "loki", "jaeger", "grafana"}
IMAGES = {
    "otel-collector": "otel/opentelemetry-collector-contrib:",
    "prometheus": "prom/prometheus:",
    "alertmanager": "prom/alertmanager:",
    "loki": "grafana/loki:3",
    "jaeger": "jaegertracing/jaeger:2",
    "grafana": "grafana/grafana:",
}


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "compose.yaml").read_text()))


def test_services_use_the_official_images() -> None:
    """Every backend is a service, from its project's own image (Jaeger v2, Loki 3)."""
    services = _compose()["services"]
    assert set(services) == SERVICES
    for name, prefix in IMAGES.items():
        assert services[name]["image"].startswith(prefix), (name, services[name]["image"])


def test_every_mounted_host_path_exists() -> None:
    """Bind mounts point at files or folders committed in the repo."""
    compose = _compose()
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source in named:
                continue
            assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_binds_switch_to_all_interfaces() -> None:
    """Inside compose the listeners bind 0.0.0.0 (the local stack's default is 127.0.0.1)."""
    services = _compose()["services"]
    assert services["otel-collector"]["environment"]["OTEL_ML_COLLECTOR_HOST"] == "0.0.0.0"
    assert services["jaeger"]["environment"]["JAEGER_LISTEN_HOST"] == "0.0.0.0"
    assert services["loki"]["environment"]["LOKI_LISTEN_HOST"] == "0.0.0.0"
    assert "--web.listen-address=0.0.0.0:9090" in services["prometheus"]["command"]
    for name in SERVICES - {"otel-collector"}:
        assert services[name]["network_mode"] == "service:otel-collector", name


def test_prometheus_and_alertmanager_images_are_the_versions_the_stack_builds() -> None:
    """compose.yaml runs the Prometheus and Alertmanager releases `otel-ml stack build` builds."""
    services = _compose()["services"]
    assert services["prometheus"]["image"] == f"prom/prometheus:v{build.prometheus_release(build.PROMETHEUS_VERSION)}"
    assert services["alertmanager"]["image"] == f"prom/alertmanager:{build.ALERTMANAGER_VERSION}"


def test_alertmanager_reads_the_secret_files_where_its_config_expects_them() -> None:
    """stack/secrets is mounted where alerts/alertmanager.yml reads secrets; Prometheus does not get it."""
    services = _compose()["services"]
    mounts = {name: [v.split(":")[:2] for v in services[name].get("volumes") or []]
              for name in ("alertmanager", "prometheus")}
    assert ["./stack/secrets", alerting.PRODUCTION_SECRETS.rstrip("/")] in mounts["alertmanager"]
    assert all(source.rstrip("/") not in ("./stack", "./stack/secrets") for source, _ in mounts["prometheus"])
