"""What the stack runs: each component's command line, health check and user-facing URL.

Ports are fixed by the committed config files (collector/config.yaml, stack/*.yaml); the
health URLs here must agree with them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from otel_ml._internal import env
from otel_ml._internal.stack import alerting, rules
from otel_ml._internal.stack.paths import StackPaths

HOST = "127.0.0.1"

# The local stack is for development and the e2e tests, where every trace should be kept and
# kept quickly; collector/config.yaml's own defaults (10 %, 10 s) are for real deployments.
# Values already in the environment win.
COLLECTOR_ENV_DEFAULTS = {
    env.TRACE_SAMPLE_PERCENT: "100",
    env.TAIL_DECISION_WAIT: "2s",
}


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    health_url: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    # Data directory created before start (Prometheus/Alertmanager/Loki refuse a missing parent).
    data_dir: Path | None = None

    @property
    def executable(self) -> str:
        return self.argv[0]


def collector_binary(paths: StackPaths) -> Path:
    return paths.bin / "otelcol-otel-ml"


def components(paths: StackPaths) -> list[Component]:
    """All components, in start order: backends first, so the collector's exporters find them."""
    root, data = paths.root, paths.data
    collector_env = {k: os.environ.get(k, v) for k, v in COLLECTOR_ENV_DEFAULTS.items()}
    return [
        Component(
            "loki",
            (str(paths.bin / "loki"), f"-config.file={root / 'stack/loki.yaml'}", "-config.expand-env=true"),
            health_url=f"http://{HOST}:3100/ready",
            url=f"http://{HOST}:3100",
            env={"LOKI_DATA_DIR": str(data / "loki"), "LOKI_LISTEN_HOST": HOST},
            data_dir=data / "loki",
        ),
        Component(
            "jaeger",
            (str(paths.bin / "jaeger"), f"--config={root / 'stack/jaeger.yaml'}"),
            health_url=f"http://{HOST}:16686/api/services",
            url=f"http://{HOST}:16686",
            env={"JAEGER_LISTEN_HOST": HOST},
        ),
        Component(
            "alertmanager",
            (
                str(paths.bin / "alertmanager"),
                # The copy with local secret files (alerting.prepare writes it before start).
                f"--config.file={alerting.config_file(paths)}",
                f"--storage.path={data / 'alertmanager'}",
                f"--web.listen-address={HOST}:9093",
                f"--web.external-url=http://{HOST}:9093",
                # Empty address: no gossip cluster, so nothing listens beyond the web port.
                "--cluster.listen-address=",
            ),
            health_url=f"http://{HOST}:9093/-/ready",
            url=f"http://{HOST}:9093",
            data_dir=data / "alertmanager",
        ),
        Component(
            "prometheus",
            (
                str(paths.bin / "prometheus"),
                # The copy with absolute (possibly time-scaled) rule paths (rules.prepare writes it).
                f"--config.file={rules.config_file(paths)}",
                f"--storage.tsdb.path={data / 'prometheus'}",
                "--storage.tsdb.retention.time=2d",
                f"--web.listen-address={HOST}:9090",
                f"--web.external-url=http://{HOST}:9090",
                "--web.enable-lifecycle",
                # Still a feature flag in 3.x: without it exemplars from the scrape are dropped.
                "--enable-feature=exemplar-storage",
            ),
            health_url=f"http://{HOST}:9090/-/ready",
            url=f"http://{HOST}:9090",
            data_dir=data / "prometheus",
        ),
        Component(
            "collector",
            (str(collector_binary(paths)), f"--config={root / 'collector/config.yaml'}"),
            health_url=f"http://{HOST}:13133/",
            url=f"grpc://{HOST}:4317 http://{HOST}:4318",
            env=collector_env,
        ),
    ]
