"""The fleet PSI/JS recording rules in alerts/drift.rules.yml equal the in-process values.

Regenerates alerts/tests/drift.test.yml from real data (gen_drift_test.py), checks the committed
file is current, and runs ``promtool test rules`` on it: two replicas' bin counters summed by the
rules give the PSI and JS that one DriftTracker computes (to 1e-6, promtool compares exactly so
both sides are rounded), and OtelMlFeatureDrift fires for the shifted feature after its ``for``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "alerts" / "tests" / "gen_drift_test.py"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("OTEL_ML_REQUIRE_STACK"):
            pytest.fail("promtool not found and OTEL_ML_REQUIRE_STACK is set")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def _gen():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_drift_test", GEN)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_promtool_test_is_current() -> None:
    """alerts/tests/drift.test.yml is what the generator produces from the current code."""
    doc, _ = _gen().build()
    assert (ROOT / "alerts" / "tests" / "drift.test.yml").read_text() == doc


def test_fleet_rules_equal_in_process_psi_and_js(tmp_path: Path) -> None:
    """promtool: recording rules over two replicas == DriftTracker PSI/JS on the same data."""
    promtool = _promtool()
    gen = _gen()
    doc, expected = gen.build()
    assert expected["mean radius"]["psi"] > 0.25 > expected["worst smoothness"]["psi"]
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "alerts" / "drift.rules.yml", tmp_path / "drift.rules.yml")
    (tmp_path / "tests" / "drift.test.yml").write_text(doc)
    proc = subprocess.run([promtool, "test", "rules", "drift.test.yml"], cwd=tmp_path / "tests",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, scores in expected.items():
        assert f"value: {gen.promql_round(scores['psi'])!r}" in doc, name
