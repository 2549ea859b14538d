"""Prometheus, Alertmanager, Loki and Jaeger configs pass their own tools' checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".stack" / "bin"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=REPO, capture_output=True, text=True, timeout=120)


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian package; `otel-ml stack build` installs it)")
    return path


def test_prometheus_config_is_valid() -> None:
    """promtool accepts stack/prometheus.yml and finds its rule files."""
    done = _run(_need("promtool"), "check", "config", "stack/prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_are_valid() -> None:
    """promtool accepts every rule file."""
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "alerts").glob("*.rules.yml"))
    assert files, "no alerts/*.rules.yml"
    done = _run(_need("promtool"), "check", "rules", *files, "stack/selftest.rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    """promtool test rules passes for every alerts/tests/*.yml."""
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "alerts" / "tests").glob("*.yml"))
    assert files, "no alerts/tests/*.yml"
    done = _run(_need("promtool"), "test", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alertmanager_config_is_valid() -> None:
    """amtool accepts alerts/alertmanager.yml, with a receiver per severity."""
    done = _run(_need("amtool"), "check-config", "alerts/alertmanager.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    for receiver in ("critical", "warning", "info"):
        assert f"name: {receiver}" in (REPO / "alerts/alertmanager.yml").read_text()


@pytest.mark.skipif(not (BIN / "loki").is_file(), reason="Loki not built (run `otel-ml stack build`)")
def test_loki_config_is_valid(tmp_path: Path) -> None:
    """Loki's own -verify-config accepts stack/loki.yaml."""
    done = subprocess.run(
        [str(BIN / "loki"), "-config.file=stack/loki.yaml", "-config.expand-env=true", "-verify-config"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"LOKI_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
