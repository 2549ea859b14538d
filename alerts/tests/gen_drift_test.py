"""Generate alerts/tests/drift.test.yml from real data and the in-process drift code.

Breast cancer (scikit-learn, bundled): the reference profile is built from one half; the other
half, with "mean radius" shifted by one standard deviation, is split between two replicas whose
cumulative bin counters become the test's input series. The expected fleet PSI and JS are what
one DriftTracker fed all of the current rows computes, so the test proves that the recording
rules summed across replicas equal the in-process numbers. The alert's thresholds (and so its
expected firing and annotation) come from alerts/gen_drift_rules.py, i.e. from DriftPolicy().

    python alerts/tests/gen_drift_test.py [OUT.yml]
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = ["mean radius", "mean texture", "worst smoothness"]
SHIFTED = "mean radius"
MODEL = {"ml_model_name": "cancer", "ml_model_version": "1"}
RULE = "ml_model_name_ml_model_version_ml_feature_name"


def promql_round(v: float, to_nearest: float = 1e-6) -> float:
    """PromQL ``round(v, to_nearest)`` computed the way Prometheus does (floor(v * 1/t + 0.5) / (1/t)).

    promtool compares sample values exactly; PromQL sums bins in another order than numpy (and
    JS clips at 1e-12), so values agree to ~1e-10 and the test compares them rounded to 1e-6.
    """
    import math

    inv = 1.0 / to_nearest
    return math.floor(v * inv + 0.5) / inv


def _rules_generator() -> Any:
    name = "otel_ml_alerts_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "generate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the file executes
    spec.loader.exec_module(mod)
    return mod


def _feature_drift_description() -> str:
    import yaml

    rules = yaml.safe_load((Path(__file__).parents[1] / "drift.rules.yml").read_text())
    (alert,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "OtelMlFeatureDrift"]
    text: str = alert["annotations"]["description"]
    return text


def _labels(d: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in d.items()) + "}"


def build() -> tuple[str, dict[str, dict[str, float]]]:
    from sklearn.datasets import load_breast_cancer

    from otel_ml._internal.drift import DriftPolicy, DriftTracker, ReferenceProfile

    ds = load_breast_cancer()
    names = [str(n) for n in ds.feature_names]
    cols = [names.index(f) for f in FEATURES]
    X = ds.data[:, cols]
    idx = np.random.default_rng(0).permutation(len(X))
    ref, cur = X[idx[: len(X) // 2]], X[idx[len(X) // 2:]].copy()
    cur[:, FEATURES.index(SHIFTED)] += ref[:, FEATURES.index(SHIFTED)].std()
    profile = ReferenceProfile.from_data(ref, feature_names=FEATURES)
    fleet = DriftTracker(profile, policy=DriftPolicy(sub_windows=1, min_samples=10))
    fleet.update(cur)
    results = fleet.evaluate()
    expected = {n: dict(r.scores) for n, r in results.items()}
    replicas = {"a": cur[::2], "b": cur[1::2]}
    series: list[str] = []
    for inst, rows in replicas.items():
        t = DriftTracker(profile, policy=DriftPolicy(sub_windows=1))
        t.update(rows)
        for fname, counts in t.cumulative_bins().items():
            f = profile.feature(fname)
            for b, (c, q) in enumerate(zip(counts, f.proportions, strict=True)):
                lab = {**MODEL, "ml_feature_name": fname, "ml_feature_bin": str(b), "instance": inst}
                # counter starts at 0 and holds its value: increase over [1h] is exact (no extrapolation)
                series.append(f"      - series: 'ml_feature_bin_count_total{_labels(lab)}'\n"
                              f"        values: '0 {c}+0x40'")
                series.append(f"      - series: 'ml_feature_reference_proportion_ratio{_labels(lab)}'\n"
                              f"        values: '{q!r}+0x41'")
    psi_samples = "\n".join(
        f"          - labels: '{_labels({**MODEL, 'ml_feature_name': n})}'\n"
        f"            value: {promql_round(expected[n]['psi'])!r}" for n in FEATURES)
    js_samples = "\n".join(
        f"          - labels: '{_labels({**MODEL, 'ml_feature_name': n})}'\n"
        f"            value: {promql_round(expected[n]['jensen_shannon'])!r}" for n in FEATURES)
    rule = _rules_generator().drift_thresholds()
    psi_drift = rule["psi_drift"]
    fired = [n for n in FEATURES
             if expected[n]["psi"] > psi_drift and expected[n]["psi"] * results[n].n > rule["n_psi_floor"]]
    # The description's only template is the feature name; the rest is the rule's static text.
    description = _feature_drift_description()
    alerts = "\n".join(
        "          - exp_labels:\n"
        "              severity: warning\n"
        "              priority: P2\n"
        "              team: data\n"
        + "".join(f"              {k}: {v}\n" for k, v in MODEL.items())
        + f"              ml_feature_name: {n}\n"
        f"            exp_annotations:\n"
        f"              summary: 'cancer 1: feature {n} drifted (PSI {expected[n]['psi']:.2f})'\n"
        f"              description: {json.dumps(description.replace('{{ $labels.ml_feature_name }}', n))}\n"
        f"              value: '{expected[n]['psi']:.3f}'\n"
        f"              runbook_url: 'https://github.com/otel-ml/otel-ml/blob/main/alerts/runbooks.md#otelmlfeaturedrift'\n"
        f"              dashboard_url: 'http://localhost:3000/d/otel-ml-quality-drift?var-model=cancer&var-version=1'"
        for n in fired)
    doc = f"""# GENERATED by alerts/tests/gen_drift_test.py from scikit-learn's breast cancer data - do not edit.
# Two replicas' bin counters -> fleet PSI/JS recording rules == in-process DriftTracker values.
rule_files:
  - ../drift.rules.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
{chr(10).join(series)}
    promql_expr_test:
      - expr: 'round({RULE}:ml_drift_psi:1h, 1e-6)'
        eval_time: 10m
        exp_samples:
{psi_samples}
      - expr: 'round({RULE}:ml_drift_jensen_shannon:1h, 1e-6)'
        eval_time: 10m
        exp_samples:
{js_samples}
    alert_rule_test:
      # `for: 15m`: pending, not firing, before 15 minutes of drift ...
      - alertname: OtelMlFeatureDrift
        eval_time: 10m
        exp_alerts: []
      # ... and firing after, for the shifted feature only.
      - alertname: OtelMlFeatureDrift
        eval_time: 20m
        exp_alerts:
{alerts}
"""
    return doc, expected


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("drift.test.yml")
    doc, _ = build()
    out.write_text(doc)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
