"""otel_ml's Prometheus rules: generated and current, valid and unit-tested under the Prometheus 3
promtool, every alert tested on both sides of its ``for:`` (and those tests able to fail), routed
and documented."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from otel_ml._internal.stack.paths import StackPaths
from tests.stack.built import built

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
TESTS = ALERTS / "tests"
RULE_FILES = sorted(ALERTS.glob("*.rules.yml"))
TEST_FILES = sorted(TESTS.glob("*.test.yml"))


def _load(path: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _promtool() -> str:
    return built(StackPaths(ROOT).promtool)


def _rules() -> list[dict[str, Any]]:
    return [r for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


def _tests() -> list[dict[str, Any]]:
    return [t for f in TEST_FILES for t in yaml.safe_load(f.read_text())["tests"]]


def test_generated_files_are_current() -> None:
    """alerts/*.rules.yml and alerts/tests/*.test.yml are what their generators write now."""
    proc = subprocess.run([sys.executable, str(ALERTS / "generate.py"), "--check"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    built = _load(TESTS / "build.py", "otel_ml_alert_tests_build").build()
    for name, text in built.items():
        assert (TESTS / name).read_text() == text, f"{name} is stale: run python alerts/tests/build.py"


def test_rules_are_valid_for_prometheus_3() -> None:
    """promtool check rules passes on every rule file."""
    proc = subprocess.run([_promtool(), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rule_unit_tests_pass() -> None:
    """promtool test rules passes on every test file."""
    proc = subprocess.run([_promtool(), "test", "rules", *[f.name for f in TEST_FILES]], cwd=TESTS,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_is_tested_on_both_sides_of_for() -> None:
    """Each alert has a test where it fires and one at an earlier time of the same series where it does not."""
    by_alert: dict[str, list[tuple[int, bool]]] = {}
    for t in _tests():
        for a in t.get("alert_rule_test", []):
            minutes = _minutes(a["eval_time"])
            by_alert.setdefault(a["alertname"], []).append((minutes, bool(a["exp_alerts"])))
    missing = []
    for alert in _alerts():
        checks = by_alert.get(alert["alert"], [])
        fired = [m for m, fires in checks if fires]
        if not fired or not any(not fires and m < max(fired) for m, fires in checks):
            missing.append(alert["alert"])
    assert missing == []


def _minutes(text: str) -> int:
    units = {"m": 1, "h": 60, "d": 1440}
    return int(text[:-1]) * units[text[-1]]


def test_every_recording_rule_value_is_tested() -> None:
    """Each recording rule's name appears in a promql_expr_test with expected samples."""
    exprs = " ".join(e["expr"] for t in _tests() for e in t.get("promql_expr_test", []))
    untested = [r["record"] for r in _rules() if "record" in r and r["record"] not in exprs]
    assert untested == []


def _fails_when(mutate: Any, tmp_path: Path, name: str) -> bool:
    """Run the test files that mention ``name`` on a copy of the rules with one alert mutated."""
    work = tmp_path / name
    (work / "tests").mkdir(parents=True)
    for f in RULE_FILES:
        doc = yaml.safe_load(f.read_text())
        for g in doc["groups"]:
            for r in g["rules"]:
                if r.get("alert") == name:
                    mutate(r)
        (work / f.name).write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    files = [f for f in TEST_FILES if f"alertname: {name}\n" in f.read_text()]
    for f in files:
        shutil.copy(f, work / "tests" / f.name)
    proc = subprocess.run([_promtool(), "test", "rules", *[f.name for f in files]], cwd=work / "tests",
                          capture_output=True, text=True, timeout=120)
    return proc.returncode != 0


def _survivors(mutate: Any, tmp_path: Path) -> list[str]:
    """Alerts whose tests still pass after ``mutate`` (promtool runs in parallel: it is single-threaded)."""
    _promtool()
    names = [a["alert"] for a in _alerts()]
    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = list(pool.map(lambda n: _fails_when(mutate, tmp_path, n), names))
    return [n for n, f in zip(names, failed, strict=True) if not f]


def test_each_alert_test_fails_when_the_alert_never_fires(tmp_path: Path) -> None:
    """Replacing an alert's expression with one that is never true makes its tests fail: they can fail."""
    assert _survivors(lambda r: r.update(expr="vector(0) > 1"), tmp_path) == []


def test_each_alert_test_fails_without_its_for(tmp_path: Path) -> None:
    """With ``for: 0s`` every alert fires at its 'before' check: the tests do pin the for: boundary."""
    assert _survivors(lambda r: r.update({"for": "0s"}), tmp_path) == []


def test_alert_names_labels_and_annotations() -> None:
    """At least 20 OtelMl* alerts, each with severity/priority/team and every annotation; level:metric:op records."""
    alerts = _alerts()
    assert len(alerts) >= 20
    severity = {"P0": "critical", "P1": "warning", "P2": "warning", "P3": "info"}
    for a in alerts:
        assert re.fullmatch(r"OtelMl[A-Z][A-Za-z0-9]+", a["alert"]), a["alert"]
        labels = a["labels"]
        assert labels["severity"] == severity[labels["priority"]], a["alert"]
        assert labels["team"] in ("ml-platform", "data"), a["alert"]
        assert set(a["annotations"]) == {"summary", "description", "value", "runbook_url", "dashboard_url"}
        assert a["annotations"]["dashboard_url"].startswith("http"), a["alert"]
    assert len({a["alert"] for a in alerts}) == len(alerts)
    for r in _rules():
        if "record" in r:
            assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", r["record"]), r["record"]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower-cased, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_every_runbook_url_points_at_a_section() -> None:
    """Each alert's runbook_url is alerts/runbooks.md#<anchor> and the anchor exists."""
    text = (ALERTS / "runbooks.md").read_text()
    anchors = _anchors(text)
    for a in _alerts():
        url = a["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path.endswith("/alerts/runbooks.md"), url
        assert anchor in anchors, f"{a['alert']}: no section #{anchor} in alerts/runbooks.md"
    for section in ("meaning", "first queries", "likely causes", "how to silence"):
        assert text.lower().count(f"**{section}") >= len(_alerts()), f"every runbook needs **{section}**"


def test_thresholds_come_from_the_config() -> None:
    """A threshold changed in alerts/config.py changes the generated rule (one config, no copies)."""
    cfg = _load(ALERTS / "config.py", "config")
    gen = _load(ALERTS / "generate.py", "otel_ml_alerts_generate")
    error_ratio = cfg.CONFIG.thresholds.error_ratio
    (rule,) = [a for a in gen.alerts() if a.alert == "OtelMlHighErrorRatio"]
    assert f"> {gen.num(error_ratio)}\n" in rule.expr
    slo = cfg.CONFIG.slo
    (burn,) = [a for a in gen.alerts() if a.alert == "OtelMlAvailabilityBudgetBurnFast"]
    assert f"> {gen.num(slo.page[0].factor * (1 - slo.availability_target))}\n" in burn.expr


def test_dashboard_links_point_at_existing_dashboards() -> None:
    """Every dashboard_url names a dashboard UID the dashboards generator produces."""
    import json

    uids = {json.loads(p.read_text())["uid"] for p in (ROOT / "dashboards").glob("*.json")}
    for a in _alerts():
        uid = a["annotations"]["dashboard_url"].split("/d/")[1].split("?")[0]
        assert uid in uids, f"{a['alert']}: no dashboard {uid}"
