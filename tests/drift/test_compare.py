"""ReferenceProfile.compare: one batch, the streaming tracker's exact rule, scipy's numbers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from otel_ml._internal.drift import DriftPolicy, DriftResult, DriftStatus, DriftTracker, ReferenceProfile
from tests.drift.scipy_reference import assert_numeric_scores_match_scipy

EPS = 1e-4  # PSI clipping, as documented in methods.py


def _split(X: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(len(X))
    return X[idx[: len(X) // 2]], X[idx[len(X) // 2:]]


def _same(a: dict[str, DriftResult], b: dict[str, DriftResult]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        ra, rb = a[name], b[name]
        assert (ra.n, ra.sample_n, ra.status, ra.status_method) == (rb.n, rb.sample_n, rb.status, rb.status_method)
        assert ra.scores.keys() == rb.scores.keys()
        for k in ra.scores:
            assert ra.scores[k] == pytest.approx(rb.scores[k], rel=1e-12, abs=1e-15), (name, k)
        assert (ra.warning_threshold, ra.drift_threshold) == pytest.approx((rb.warning_threshold, rb.drift_threshold))


@pytest.mark.parametrize("status_method", ["psi", "jensen_shannon", "wasserstein", "ks"])
def test_compare_equals_a_streaming_tracker_fed_the_same_rows(status_method: str) -> None:
    """A DataFrame batch gives the same scores and status as a tracker fed its rows one by one."""
    ds = load_breast_cancer()
    names = [str(n) for n in ds.feature_names]
    ref, cur = _split(ds.data)
    cur = cur + np.where(np.arange(cur.shape[1]) % 3 == 0, 0.4, 0.0) * ref.std(axis=0)  # a third drift
    rng = np.random.default_rng(1)
    profile = ReferenceProfile.from_data(ref, feature_names=names, predictions=rng.random(len(ref)))
    preds = rng.random(len(cur)) ** 0.7
    policy = DriftPolicy(status_method=status_method)
    batch = profile.compare(pd.DataFrame(cur, columns=names), preds, policy=policy)
    stream = DriftTracker(profile, policy=policy, clock=lambda: 12.0)
    for row, p in zip(cur, preds, strict=True):
        stream.update(dict(zip(names, row.tolist(), strict=True)))
        stream.update_predictions(float(p))
    _same(batch, stream.evaluate())
    assert {r.status for r in batch.values()} >= {DriftStatus.OK, DriftStatus.DRIFT}


def test_one_row_arrays_count_like_the_batch_they_came_from() -> None:
    """An online service hands the tracker one (1, n) array and one prediction per request (the
    per-row path): the same scores, statuses and data-quality counts as the whole batch at once,
    with NaN, inf and out-of-range values among the rows."""
    ds = load_breast_cancer()
    ref, cur = _split(ds.data)
    cur = cur + 0.3 * ref.std(axis=0) * (np.arange(cur.shape[1]) % 4 == 0)
    cur[3, 0], cur[7, 1], cur[11, 2], cur[13, 3] = np.nan, np.inf, -np.inf, 1e9
    rng = np.random.default_rng(4)
    profile = ReferenceProfile.from_data(ref, predictions=rng.random(len(ref)))
    preds = rng.random(len(cur)) ** 0.6
    preds[5] = np.nan
    at_once = DriftTracker(profile, clock=lambda: 5.0)
    at_once.update(cur)
    at_once.update_predictions(preds)
    per_row = DriftTracker(profile, clock=lambda: 5.0)
    for i in range(len(cur)):
        per_row.update(cur[i:i + 1])
        per_row.update_predictions(preds[i:i + 1])
    _same(at_once.evaluate(), per_row.evaluate())
    assert at_once.data_quality() == per_row.data_quality()
    issues = per_row.data_quality()
    assert (issues["f0"].issues["nan"], issues["f1"].issues["inf"], issues["f2"].issues["inf"]) == (1, 1, 1)
    assert issues["f3"].issues["out_of_range"] >= 1


def test_compare_equals_a_streaming_tracker_on_a_batch_larger_than_the_sample() -> None:
    """20 000 rows (more than sample_size): compare == a 5-sub-window tracker fed the batch at once."""
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(20_000, 4))
    cur = rng.normal(size=(20_000, 4)) + np.array([0.0, 0.05, 0.1, 0.3])
    profile = ReferenceProfile.from_data(ref)
    batch = profile.compare(cur)
    stream = DriftTracker(profile, clock=lambda: 3.0)
    stream.update(cur)
    _same(batch, stream.evaluate())
    assert all(r.sample_n == 2000 for r in batch.values())
    assert profile.compare(cur, policy=DriftPolicy(sample_size=500))["f0"].sample_n == 500


def test_input_types_give_the_same_result() -> None:
    """DataFrame, dict of columns, 2-D numpy array and list of row dicts are the same batch."""
    rng = np.random.default_rng(3)
    ref = {"a": rng.normal(size=3000), "b": rng.exponential(size=3000)}
    profile = ReferenceProfile.from_data(ref)
    cur = np.column_stack([rng.normal(size=1500) + 0.2, rng.exponential(size=1500)])
    as_numpy = profile.compare(cur)
    _same(as_numpy, profile.compare(pd.DataFrame(cur, columns=["a", "b"])))
    _same(as_numpy, profile.compare({"a": cur[:, 0], "b": cur[:, 1].tolist()}))
    _same(as_numpy, profile.compare([{"a": float(x), "b": float(y)} for x, y in cur]))





@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine, load_diabetes])
def test_compare_scores_match_scipy_on_sklearn_data(loader: Any) -> None:
    """compare's PSI, JS, Wasserstein and KS on a DataFrame half equal scipy/numpy on the same split."""
    ds = loader()
    X = np.asarray(ds.data, dtype=np.float64)
    names = [str(n) for n in ds.feature_names]
    ref, cur = _split(X)
    profile = ReferenceProfile.from_data(ref, feature_names=names, sample_size=100_000)
    policy = DriftPolicy(min_samples=20)
    batch = pd.DataFrame(cur, columns=names)
    assert_numeric_scores_match_scipy(profile.compare(batch, policy=policy), profile, ref, cur, names)
    shifted = cur * 1.2 + 0.5 * ref.std(axis=0)
    assert_numeric_scores_match_scipy(profile.compare(shifted, policy=policy), profile, ref, shifted, names)


def test_compare_chi2_matches_scipy_on_river_phishing() -> None:
    """compare's chi², PSI and JS on list-of-row-dict batches equal scipy on the category counts."""
    from river import datasets

    rows = [x for x, _ in datasets.Phishing()]
    cols = ["is_popular", "long_url", "age_of_domain", "ip_in_url", "popup_window"]
    half = len(rows) // 2
    ref = {c: [str(r[c]) for r in rows[:half]] for c in cols}
    profile = ReferenceProfile.from_data(ref, feature_kinds=dict.fromkeys(cols, "categorical"))
    cur_rows = [{c: str(r[c]) for c in cols} for r in rows[half:]]
    for i, r in enumerate(cur_rows):
        if i % 3:
            r["is_popular"] = "1.0"
    res = profile.compare(cur_rows, policy=DriftPolicy(min_samples=20))
    for c in cols:
        f = profile.feature(c)
        cc = Counter(r[c] for r in cur_rows)
        counts = np.array([cc.get(k, 0) for k in f.categories] + [0])
        p, q = counts / counts.sum(), np.asarray(f.proportions)
        pc, qc = np.maximum(p, EPS), np.maximum(q, EPS)
        r = res[c]
        assert r.scores["psi"] == pytest.approx(float(np.sum((pc - qc) * np.log(pc / qc))), abs=1e-12)
        assert r.scores["jensen_shannon"] == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-12)
        table = np.vstack([f.reference_counts, counts])
        chi = st.chi2_contingency(table[:, table.sum(axis=0) > 0])
        assert r.scores["chi2_statistic"] == pytest.approx(float(chi.statistic), abs=1e-9)
        assert r.scores["chi2_p_value"] == pytest.approx(float(chi.pvalue), abs=1e-12)
    assert res["is_popular"].status is DriftStatus.DRIFT


def test_missing_columns_count_as_missing() -> None:
    """A DataFrame or dict without a profiled column: that feature has no values, the others are judged."""
    rng = np.random.default_rng(4)
    profile = ReferenceProfile.from_data({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    for data in (pd.DataFrame({"a": rng.normal(size=500)}), {"a": rng.normal(size=500), "extra": ["x"] * 500}):
        res = profile.compare(data)
        assert res["a"].n == 500 and res["a"].status is DriftStatus.OK
        assert res["b"].n == 0 and res["b"].status is DriftStatus.INSUFFICIENT_DATA
    none_known = profile.compare({"zz": [1.0, 2.0]})
    assert {r.n for r in none_known.values()} == {0}


def test_predictions_are_compared_only_when_given() -> None:
    """__prediction__ is in the result with predictions, absent without; n counts the predictions."""
    rng = np.random.default_rng(5)
    profile = ReferenceProfile.from_data({"a": rng.normal(size=2000)}, predictions=rng.choice(["y", "n"], 2000))
    assert "__prediction__" not in profile.compare({"a": rng.normal(size=300)})
    res = profile.compare({"a": rng.normal(size=300)}, ["y"] * 300)
    assert res["__prediction__"].n == 300 and res["__prediction__"].status is DriftStatus.DRIFT


@pytest.mark.parametrize(("data", "kwargs", "exc", "message"), [
    ("not data", {}, TypeError, r"data must be a pandas DataFrame, a dict of columns"),
    (42, {}, TypeError, r"not int"),
    ([1.0, 2.0], {}, TypeError, r"data\[0\] is a float"),
    ({"a": 1.0}, {}, TypeError, r"data\['a'\] must be a column"),
    ({"a": [1.0, 2.0], "b": [1.0]}, {}, ValueError, r"different lengths"),
    (np.zeros(5), {}, ValueError, r"must be 2-D"),
    (np.zeros((5, 3)), {}, ValueError, r"data has 3 columns, the profile has 2 features"),
    (np.zeros((5, 2)), {"predictions": [0.5] * 5}, ValueError, r"predictions given, but this profile has no "
                                                               r"prediction distribution"),
    (np.zeros((5, 2)), {"policy": {"sample_size": 10}}, TypeError, r"policy must be a DriftPolicy"),
])
def test_bad_arguments_raise_at_once_naming_them(data: Any, kwargs: dict[str, Any], exc: type[Exception],
                                                 message: str) -> None:
    """Non-data, wrong shapes, predictions without a reference and a bad policy raise at once."""
    profile = ReferenceProfile.from_data({"a": np.arange(100.0), "b": np.arange(100.0)})
    with pytest.raises(exc, match=message):
        profile.compare(data, **kwargs)


def test_prediction_count_must_match_rows() -> None:
    """predictions of another length than the data, or not 1-D, raise ValueError naming predictions."""
    profile = ReferenceProfile.from_data({"a": np.arange(100.0)}, predictions=np.linspace(0, 1, 100))
    with pytest.raises(ValueError, match="predictions has 3 values for 5 rows"):
        profile.compare({"a": np.arange(5.0)}, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="predictions must be 1-D"):
        profile.compare({"a": np.arange(5.0)}, np.zeros((5, 2)))
