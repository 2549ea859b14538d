"""The fleet drift rules in alerts/drift.rules.yml equal the in-process values and defaults.

Regenerates alerts/tests/drift.test.yml (gen_drift_test.py, from real data) and checks the
committed file is current (alerts/drift.rules.yml itself: tests/alerts/test_rules.py); checks the
alert's thresholds are DriftPolicy()'s; runs ``promtool test rules``: two
replicas' bin counters summed by the rules give the PSI and JS that one DriftTracker computes (to
1e-6, promtool compares exactly so both sides are rounded), and OtelMlFeatureDrift fires for the
shifted feature after its ``for``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import scipy.stats as st
import yaml

from otel_ml._internal.drift import DriftPolicy
from otel_ml._internal.stack.paths import StackPaths
from tests.stack.built import built

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "alerts" / "tests" / "gen_drift_test.py"


def _promtool() -> str:
    """The Prometheus 3 promtool `otel-ml stack build` builds, never a system one."""
    return built(StackPaths(ROOT).promtool)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _gen() -> ModuleType:
    return _load(GEN)


def test_committed_promtool_test_is_current() -> None:
    """alerts/tests/drift.test.yml is what its generator produces from real data now."""
    doc, _ = _gen().build()
    assert (ROOT / "alerts" / "tests" / "drift.test.yml").read_text() == doc


def test_alert_thresholds_are_the_drift_policy_defaults() -> None:
    """OtelMlFeatureDrift: PSI > DriftPolicy()'s PSI drift threshold and n*PSI > chi2 quantile at 10 bins."""
    rules = yaml.safe_load((ROOT / "alerts" / "drift.rules.yml").read_text())
    (alert,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "OtelMlFeatureDrift"]
    psi_gt = [float(x) for x in re.findall(r"ml_drift_psi:1h(?:\{[^}]*\})? > ([0-9.e+-]+)", alert["expr"])]
    n_psi = r"ml_feature_bin_count:increase1h(?:\{[^}]*\})? > ([0-9.e+-]+)"
    n_psi_gt = [float(x) for x in re.findall(n_psi, alert["expr"])]
    policy = DriftPolicy()
    assert psi_gt == [policy.thresholds("psi")[1]] == [0.25]
    # the generator prints thresholds to 10 decimals
    assert n_psi_gt == [pytest.approx(st.chi2.ppf(1 - policy.drift_alpha, 10 - 1), abs=1e-9)]
    assert f"fleet PSI above {policy.thresholds('psi')[1]!r} and" in alert["annotations"]["description"]
    assert alert["for"] == "15m" and alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["runbook_url"].endswith("#otelmlfeaturedrift")


def test_fleet_rules_equal_in_process_psi_and_js(tmp_path: Path) -> None:
    """promtool: recording rules over two replicas == DriftTracker PSI/JS on the same data."""
    promtool = _promtool()
    gen = _gen()
    doc, expected = gen.build()
    assert expected["mean radius"]["psi"] > 0.25 > expected["worst smoothness"]["psi"]
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "alerts" / "drift.rules.yml", tmp_path / "drift.rules.yml")  # the test loads only it
    (tmp_path / "tests" / "drift.test.yml").write_text(doc)
    proc = subprocess.run([promtool, "test", "rules", "drift.test.yml"], cwd=tmp_path / "tests",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, scores in expected.items():
        assert f"value: {gen.promql_round(scores['psi'])!r}" in doc, name
