"""Status methods: their size-aware floors hold their false-alarm rate, and they catch real shifts.

The floors are checked by simulation against the no-drift distribution of each score, computed
here with scipy/numpy on multinomial or continuous draws, not with the tracker.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon
from sklearn.datasets import load_breast_cancer

from otel_ml._internal.drift import DriftPolicy, DriftStatus, FeatureKind, ReferenceProfile
from otel_ml._internal.drift import methods as m
from otel_ml._internal.drift.features import FeatureProfile


def _js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / mid), 0.0).sum(axis=1)
        right = np.where(q > 0, q * np.log(q / mid), 0.0).sum(axis=1)
    return np.sqrt(np.maximum(left + right, 0.0) / (2 * np.log(2)))


def _flat_profile(k: int, count: int) -> FeatureProfile:
    return FeatureProfile("f", FeatureKind.CATEGORICAL, count, 0.0, tuple([1 / k] * k),
                          categories=tuple(range(k - 1)))


@pytest.mark.parametrize(("n", "n_ref"), [(500, 10**6), (2000, 100_000)])
def test_js_floor_is_the_no_drift_quantile(n: int, n_ref: int) -> None:
    """Simulated multinomial windows exceed the JS floor at alpha = 1e-2 and 1e-3 at about that rate."""
    k, sims = 10, 60_000
    rng = np.random.default_rng(7)
    q = np.full(k, 1 / k)
    cur = rng.multinomial(n, q, size=sims) / n
    ref = rng.multinomial(n_ref, q, size=sims) / n_ref
    js = _js_rows(cur, ref)
    assert js[:5] == pytest.approx([jensenshannon(c, r, base=2) for c, r in zip(cur[:5], ref[:5], strict=True)])
    f = _flat_profile(k, n_ref)
    for alpha in (1e-2, 1e-3):
        rate = float(np.mean(js >= m.significance_floor("jensen_shannon", f, n, 0, alpha)))
        assert 0.7 * alpha < rate < 1.6 * alpha, (alpha, rate)


def test_psi_floor_is_the_chi2_quantile_over_n_eff() -> None:
    """PSI's floor is chi2.ppf(1 - alpha, k - 1) / n_eff with k the bins holding reference mass."""
    f = FeatureProfile("f", FeatureKind.NUMERIC, 1000, 0.0, (0.0, 0.25, 0.25, 0.25, 0.25, 0.0),
                       edges=(0.0, 1.0, 2.0, 3.0, 4.0), std=1.0, sample=[0.0, 1.0])
    n_eff = 400 * 1000 / 1400
    assert m.significance_floor("psi", f, 400, 0, 1e-4) == pytest.approx(st.chi2.ppf(1 - 1e-4, 3) / n_eff)
    assert m.significance_floor("jensen_shannon", f, 400, 0, 1e-4) == pytest.approx(
        math.sqrt(st.chi2.ppf(1 - 1e-4, 3) / (8 * n_eff * math.log(2))))


def test_ks_floor_is_where_the_p_value_crosses_alpha() -> None:
    """KS status DRIFT exactly when scipy's asymptotic KS p-value is below drift_alpha."""
    rng = np.random.default_rng(1)
    ref = rng.normal(size=1500)
    profile = ReferenceProfile.from_data({"x": ref})
    policy = DriftPolicy(status_method="ks", methods=(), sub_windows=1)
    seen = set()
    for shift in np.linspace(0.0, 0.6, 25):
        cur = rng.normal(size=400) + shift
        r = profile.compare({"x": cur}, policy=policy)["x"]
        p = st.ks_2samp(ref, cur, method="asymp").pvalue
        assert r.status_method == "ks"
        assert (r.status is DriftStatus.DRIFT) == (p < 1e-4), (shift, p, r)
        assert (r.status is DriftStatus.OK) == (p >= 1e-3), (shift, p, r)
        seen.add(r.status)
    assert seen == {DriftStatus.OK, DriftStatus.WARNING, DriftStatus.DRIFT}


@pytest.mark.parametrize("draw", [
    lambda rng, n: rng.normal(size=n),
    lambda rng, n: rng.exponential(size=n),
    lambda rng, n: rng.poisson(2.0, size=n).astype(float),
], ids=["normal", "exponential", "poisson"])
def test_wasserstein_floor_is_conservative_but_close(draw: Any) -> None:
    """No-drift normed W1 (scipy) stays below the floor at alpha = 1e-2 in >= 99 % of windows, within 1.5x."""
    rng = np.random.default_rng(11)
    n, n_ref, sims = 500, 2000, 800
    ratios = []
    for _ in range(sims):
        ref = np.sort(draw(rng, n_ref))
        cur = draw(rng, n)
        scale = max(float(ref.std()), m.WASSERSTEIN_STD_FLOOR)
        w = st.wasserstein_distance(ref, cur) / scale
        floor = m.wasserstein_null_quantile(ref, scale, 1e-2) / math.sqrt(n * n_ref / (n + n_ref))
        ratios.append(w / floor)
    q99 = float(np.quantile(ratios, 0.99))
    assert 1 / 1.5 < q99 <= 1.0, q99


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, ReferenceProfile]:
    ds = load_breast_cancer()
    return ds.data, ReferenceProfile.from_data(ds.data, feature_names=[str(n) for n in ds.feature_names])


@pytest.mark.parametrize("method", ["jensen_shannon", "wasserstein", "ks"])
def test_each_status_method_is_quiet_on_small_windows_and_fires_on_a_shift(cancer: Any, method: str) -> None:
    """Windows of 150 resampled reference rows: <1% WARNING, <0.5% DRIFT; a 1-sd shift: >95% DRIFT."""
    X, profile = cancer
    rng = np.random.default_rng(0)
    policy = DriftPolicy(status_method=method, methods=(), sub_windows=1)
    statuses: list[DriftStatus] = []
    for _ in range(30):
        statuses += [r.status for r in profile.compare(X[rng.integers(0, len(X), 150)], policy=policy).values()]
    assert sum(s is not DriftStatus.OK for s in statuses) / len(statuses) < 0.01
    assert sum(s is DriftStatus.DRIFT for s in statuses) / len(statuses) < 0.005
    fired = []
    for _ in range(10):
        res = profile.compare(X[rng.integers(0, len(X), 150)] + X.std(axis=0), policy=policy)
        assert {r.status_method for r in res.values()} == {method}
        fired += [r.status is DriftStatus.DRIFT for r in res.values()]
    assert sum(fired) / len(fired) > 0.95


def test_thresholds_are_the_larger_of_the_policys_and_the_floor() -> None:
    """Large windows use the policy's thresholds; small ones the floor; the result reports both used."""
    rng = np.random.default_rng(2)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=100_000)})
    policy = DriftPolicy(status_method="jensen_shannon", warning=0.05, drift=0.08)
    big = profile.compare({"x": rng.normal(size=50_000)}, policy=policy)["x"]
    assert (big.warning_threshold, big.drift_threshold) == (0.05, 0.08)
    small = profile.compare({"x": rng.normal(size=200)}, policy=policy)["x"]
    n_eff = 200 * 100_000 / 100_200
    assert small.drift_threshold == pytest.approx(math.sqrt(st.chi2.ppf(1 - 1e-4, 9) / (8 * n_eff * math.log(2))))
    assert small.warning_threshold == pytest.approx(math.sqrt(st.chi2.ppf(1 - 1e-3, 9) / (8 * n_eff * math.log(2))))
    assert small.status_score == small.scores["jensen_shannon"]


def test_psi_decides_where_the_status_method_does_not_apply() -> None:
    """KS status: numeric features use KS, categorical and boolean ones PSI with PSI's defaults."""
    rng = np.random.default_rng(4)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=5000), "c": rng.choice(["a", "b", "c"], 5000),
                                          "b": rng.random(5000) < 0.3})
    res = profile.compare({"x": rng.normal(size=20_000), "c": rng.choice(["a", "b", "c"], 20_000),
                           "b": rng.random(20_000) < 0.3}, policy=DriftPolicy(status_method="ks", drift=0.2))
    assert res["x"].status_method == "ks" and res["x"].drift_threshold == 0.2
    for name in ("c", "b"):
        r = res[name]
        assert r.status_method == "psi" and "ks_statistic" not in r.scores
        assert (r.warning_threshold, r.drift_threshold) == (0.1, 0.25)
        assert r.status_score == r.scores["psi"]


def test_a_mostly_missing_feature_falls_back_to_psi_for_a_sample_method() -> None:
    """When the window sample holds fewer than min_samples values of a feature, PSI decides for it."""
    rng = np.random.default_rng(5)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
    x = rng.normal(size=50_000)
    y = np.full(50_000, np.nan)
    y[:1000] = rng.normal(size=1000)  # 1000 valid values, ~40 of them in a 2000-row sample
    res = profile.compare({"x": x, "y": y}, policy=DriftPolicy(status_method="wasserstein"))
    assert res["x"].status_method == "wasserstein" and res["x"].sample_n == 2000
    assert res["y"].n == 1000 and res["y"].sample_n < 100
    assert res["y"].status_method == "psi"
