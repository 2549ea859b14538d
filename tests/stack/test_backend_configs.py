"""Prometheus, Alertmanager, Loki and Jaeger configs pass their own tools' checks.

promtool and amtool are the ones `otel-ml stack build` builds (Prometheus 3, Alertmanager 0.34),
never a system copy: their checks are what the configs must pass.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from otel_ml._internal.stack import alerting
from otel_ml._internal.stack.paths import StackPaths
from tests.stack.built import built

REPO = Path(__file__).resolve().parents[2]
PATHS = StackPaths(REPO)
BIN = PATHS.bin


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=REPO, capture_output=True, text=True, timeout=120)


def test_prometheus_config_is_valid() -> None:
    """promtool accepts stack/prometheus.yml and finds its rule files."""
    done = _run(built(PATHS.promtool), "check", "config", "stack/prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_are_valid() -> None:
    """promtool accepts every rule file."""
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "alerts").glob("*.rules.yml"))
    assert files, "no alerts/*.rules.yml"
    done = _run(built(PATHS.promtool), "check", "rules", *files, "stack/selftest.rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass() -> None:
    """promtool test rules passes for every alerts/tests/*.yml."""
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "alerts" / "tests").glob("*.yml"))
    assert files, "no alerts/tests/*.yml"
    done = _run(built(PATHS.promtool), "test", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alertmanager_config_is_valid() -> None:
    """amtool accepts alerts/alertmanager.yml and its templates."""
    done = _run(built(PATHS.amtool), "check-config", "alerts/alertmanager.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    # amtool parses the templates (a syntax error fails here); test_alert_routing renders them.
    assert " - 1 templates\n  SUCCESS" in done.stdout, done.stdout


def test_local_alertmanager_config_is_valid(tmp_path: Path) -> None:
    """The copy `otel-ml stack up` runs (secret files moved to a local folder) passes amtool too."""
    text = alerting.localize(alerting.source(PATHS).read_text(), tmp_path / "secrets")
    (tmp_path / "alertmanager.yml").write_text(text)
    (tmp_path / "templates").symlink_to(REPO / "alerts" / "templates")
    done = _run(built(PATHS.amtool), "check-config", str(tmp_path / "alertmanager.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert alerting.PRODUCTION_SECRETS not in text


def test_alertmanager_secrets_only_come_from_files() -> None:
    """No inline secret: every token, webhook URL and password is a *_file under the secrets folder."""
    text = alerting.source(PATHS).read_text()
    inline = re.findall(r"^\s*-?\s*(bot_token|api_url|url|auth_password|smtp_auth_password|telegram_bot_token|"
                        r"slack_api_url):", text, re.M)
    assert inline == []
    files = re.findall(r"_file:\s*(\S+)", text)
    assert files and all(f.startswith(alerting.PRODUCTION_SECRETS) for f in files), files
    assert set(alerting.secret_names(text)) == set(alerting.STAND_INS)


@pytest.mark.skipif(not (BIN / "loki").is_file(), reason="Loki not built (run `otel-ml stack build`)")
def test_loki_config_is_valid(tmp_path: Path) -> None:
    """Loki's own -verify-config accepts stack/loki.yaml."""
    done = subprocess.run(
        [str(BIN / "loki"), "-config.file=stack/loki.yaml", "-config.expand-env=true", "-verify-config"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"LOKI_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
