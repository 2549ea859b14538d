"""Drift scores on real data equal scipy/numpy computed directly on the same windows and bins.

Tolerances: PSI, JS, chi² and KS agree to 1e-12 (absolute) - same formulas on the same counts;
Wasserstein to 1e-9 (different summation order). The tracker's reservoir is made large enough
to hold the whole current window and the profile sample the whole reference, so the samples
compared are exactly the data.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from otel_ml._internal.drift import DriftPolicy, DriftStatus, DriftTracker, ReferenceProfile
from otel_ml._internal.drift import methods as m
from tests.drift.scipy_reference import assert_numeric_scores_match_scipy

EPS = m.PSI_EPSILON


def _split(X: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(len(X))
    half = len(X) // 2
    return X[idx[:half]], X[idx[half:]]


def _tracker(profile: ReferenceProfile) -> DriftTracker:
    return DriftTracker(profile, policy=DriftPolicy(sub_windows=1, sample_size=100_000, min_samples=20))


def _check_numeric(profile: ReferenceProfile, ref: np.ndarray, cur: np.ndarray, names: list[str]) -> None:
    t = _tracker(profile)
    t.update(cur)
    assert_numeric_scores_match_scipy(t.evaluate(), profile, ref, cur, names)


@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine, load_diabetes])
def test_numeric_scores_match_scipy_on_sklearn_data(loader: object) -> None:
    """Every numeric score equals the scipy/numpy computation on the same split, shifted or not."""
    ds = loader()  # type: ignore[operator]
    X = np.asarray(ds.data, dtype=np.float64)
    names = [str(n) for n in ds.feature_names]
    ref, cur = _split(X)
    profile = ReferenceProfile.from_data(ref, feature_names=names, sample_size=100_000)
    _check_numeric(profile, ref, cur, names)
    shifted = cur * 1.2 + 0.5 * ref.std(axis=0)
    _check_numeric(profile, ref, shifted, names)


def test_shifted_split_drifts_and_unshifted_does_not() -> None:
    """On breast cancer, a 1-sd shift is DRIFT for every feature; the other half of the data is not."""
    ds = load_breast_cancer()
    ref, cur = _split(ds.data)
    names = list(ds.feature_names)
    profile = ReferenceProfile.from_data(ref, feature_names=names)
    t = _tracker(profile)
    t.update(cur)
    same = t.evaluate()
    assert sum(r.status is DriftStatus.DRIFT for r in same.values()) == 0
    t2 = _tracker(profile)
    t2.update(cur + ref.std(axis=0))
    assert all(r.status is DriftStatus.DRIFT for r in t2.evaluate().values())


def _phishing() -> tuple[list[dict[str, object]], list[bool]]:
    from river import datasets

    rows, ys = zip(*datasets.Phishing(), strict=True)
    return list(rows), list(ys)


def test_categorical_chi2_matches_scipy_on_river_phishing() -> None:
    """chi² equals scipy.stats.chi2_contingency on the same table; PSI/JS match on category counts."""
    rows, _ = _phishing()
    cols = ["is_popular", "long_url", "age_of_domain", "ip_in_url", "popup_window"]
    data = {c: [str(r[c]) for r in rows] for c in cols}
    half = len(rows) // 2
    ref = {c: v[:half] for c, v in data.items()}
    profile = ReferenceProfile.from_data(ref, feature_kinds=dict.fromkeys(cols, "categorical"))
    for shift in (False, True):
        cur = {c: list(v[half:]) for c, v in data.items()}
        if shift:
            cur["is_popular"] = ["1.0" if i % 3 else x for i, x in enumerate(cur["is_popular"])]
        t = _tracker(profile)
        t.update({c: np.asarray(v, dtype=object) for c, v in cur.items()})
        res = t.evaluate()
        for c in cols:
            f = profile.feature(c)
            cc = Counter(cur[c])
            counts = np.array([cc.get(k, 0) for k in f.categories] + [0])
            q = np.asarray(f.proportions)
            p = counts / counts.sum()
            r = res[c]
            pc, qc = np.maximum(p, EPS), np.maximum(q, EPS)
            assert r.scores["psi"] == pytest.approx(float(np.sum((pc - qc) * np.log(pc / qc))), abs=1e-12)
            assert r.scores["jensen_shannon"] == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-12)
            table = np.vstack([f.reference_counts, counts])
            table = table[:, table.sum(axis=0) > 0]
            chi = st.chi2_contingency(table)
            assert r.scores["chi2_statistic"] == pytest.approx(float(chi.statistic), abs=1e-9)
            assert r.scores["chi2_p_value"] == pytest.approx(float(chi.pvalue), abs=1e-12)
        if shift:
            assert res["is_popular"].status is DriftStatus.DRIFT


def test_unseen_category_pools_into_other_without_p_zero_artefact() -> None:
    """One new `region` among 300 rows: counted as unseen, chi² p stays well above 0 and matches scipy."""
    rng = np.random.default_rng(0)
    ref = rng.choice(["eu", "us", "apac"], size=3000, p=[0.5, 0.3, 0.2])
    profile = ReferenceProfile.from_data({"region": ref})
    cur = [*list(rng.choice(["eu", "us", "apac"], size=299, p=[0.5, 0.3, 0.2])), "mars"]
    t = _tracker(profile)
    for v in cur:
        t.update({"region": v})
    r = t.evaluate()["region"]
    q = t.data_quality()["region"]
    assert q.issues["unseen_category"] == 1
    assert q.rate("unseen_category") == pytest.approx(1 / 300)
    f = profile.feature("region")
    counts = [Counter(cur)[c] for c in f.categories] + [1]
    table = np.vstack([f.reference_counts, counts])
    chi = st.chi2_contingency(table)
    assert r.scores["chi2_p_value"] == pytest.approx(float(chi.pvalue), abs=1e-12)
    assert r.scores["chi2_p_value"] > 1e-4
    # a goodness-of-fit test against the reference proportion 0 would be infinite:
    with np.errstate(divide="ignore"):
        assert st.chisquare(counts, np.asarray(f.proportions) * 300 + 0.0).statistic == np.inf


def test_prediction_drift_on_scores_and_classes() -> None:
    """Scores profile as numeric, classes as categorical; both under ``__prediction__``."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 2))
    scores = rng.beta(2, 5, size=2000)
    p_num = ReferenceProfile.from_data(X, feature_names=["a", "b"], predictions=scores, prediction_kind="score")
    t = _tracker(p_num)
    assert t.prediction_kind == "score"
    t.update_predictions(rng.beta(5, 2, size=500))
    r = t.evaluate()["__prediction__"]
    assert r.status is DriftStatus.DRIFT and "ks_p_value" in r.scores
    p_cls = ReferenceProfile.from_data(X, feature_names=["a", "b"], predictions=rng.choice(["x", "y"], 2000))
    t = _tracker(p_cls)
    assert t.prediction_kind == "class"
    t.update_predictions(["x"] * 500)
    r = t.evaluate()["__prediction__"]
    assert r.status is DriftStatus.DRIFT and "chi2_p_value" in r.scores
