"""The stack's Prometheus config copy: shipped rules by default, time-scaled ones on request."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from otel_ml._internal import env
from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack import rules
from otel_ml._internal.stack.paths import StackPaths

ROOT = Path(__file__).resolve().parents[2]


def _paths(tmp_path: Path) -> StackPaths:
    """The checkout's configs, but a private .stack (a subclass would be overkill: link the sources)."""
    for name in ("alerts", "stack", "collector"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return StackPaths(tmp_path)


def test_default_loads_the_shipped_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a time scale the copy's rule_files are alerts/*.rules.yml and the self-test rules, absolute."""
    monkeypatch.delenv(env.RULES_TIME_SCALE, raising=False)
    paths = _paths(tmp_path)
    assert rules.prepare(paths) is True
    assert rules.prepare(paths) is False  # unchanged: nothing to reload
    doc = yaml.safe_load(rules.config_file(paths).read_text())
    assert doc["rule_files"] == [str(tmp_path / "alerts" / "*.rules.yml"),
                                 str((ROOT / "stack" / "selftest.rules.yml").resolve())]
    assert doc["scrape_configs"] == yaml.safe_load((ROOT / "stack" / "prometheus.yml").read_text())["scrape_configs"]


def test_scaled_rules_keep_expressions_and_shrink_durations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 1/30 an hour window becomes 120 s and a 15 m for: 30 s; thresholds and names stay; promtool accepts it."""
    monkeypatch.setenv(env.RULES_TIME_SCALE, "0.0333333333")
    paths = _paths(tmp_path)
    rules.prepare(paths)
    scaled = tmp_path / ".stack" / "prometheus" / "rules"
    shipped = yaml.safe_load((ROOT / "alerts" / "model.rules.yml").read_text())
    fast = yaml.safe_load((scaled / "model.rules.yml").read_text())
    (acc, fast_acc) = (next(r for g in d["groups"] for r in g["rules"] if r.get("alert") == "OtelMlAccuracyDrop")
                       for d in (shipped, fast))
    assert acc["for"] == "30m" and fast_acc["for"] == "60s"
    assert "[1h]" in acc["expr"] and "[120s]" in fast_acc["expr"] and "[1h]" not in fast_acc["expr"]
    assert acc["expr"].replace("[1h]", "[120s]") == fast_acc["expr"]
    assert rules.prepare(paths) is False  # same scale, same rules: no reload
    monkeypatch.setenv(env.RULES_TIME_SCALE, "0.05")
    assert rules.prepare(paths) is True  # other rule files, same config text: reload
    promtool = StackPaths(ROOT).promtool
    if promtool.is_file():
        done = subprocess.run([str(promtool), "check", "config", str(rules.config_file(paths))],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    elif os.environ.get(env.REQUIRE_STACK) == "1":
        pytest.fail(f"{promtool} not built")


@pytest.mark.parametrize("bad", ["fast", "0", "1.5", "-1"])
def test_bad_time_scale_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    """A time scale that is not a number in (0, 1] stops `stack up` with the variable named."""
    monkeypatch.setenv(env.RULES_TIME_SCALE, bad)
    with pytest.raises(CLIError, match=env.RULES_TIME_SCALE):
        rules.prepare(_paths(tmp_path))
