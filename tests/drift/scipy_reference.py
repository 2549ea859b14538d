"""Drift scores recomputed independently with numpy and scipy, for tests to compare against."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon

from otel_ml._internal.drift import DriftResult, ReferenceProfile
from otel_ml._internal.drift.features import numeric_bin_index

EPS = 1e-4  # PSI's documented clipping


def assert_numeric_scores_match_scipy(res: dict[str, DriftResult], profile: ReferenceProfile, ref: np.ndarray,
                                      cur: np.ndarray, names: list[str]) -> None:
    """PSI, JS, normed Wasserstein and KS of every named feature equal scipy's on the full arrays."""
    for i, name in enumerate(names):
        f = profile.feature(name)
        r = res[name]
        q = np.bincount(numeric_bin_index(f.edges_array, ref[:, i]), minlength=f.n_bins) / len(ref)
        counts = np.bincount(numeric_bin_index(f.edges_array, cur[:, i]), minlength=f.n_bins)
        p = counts / counts.sum()
        assert np.allclose(q, f.proportions, atol=1e-15)
        pc, qc = np.maximum(p, EPS), np.maximum(q, EPS)
        assert r.n == len(cur) and r.sample_n == len(cur)
        assert r.scores["psi"] == pytest.approx(float(np.sum((pc - qc) * np.log(pc / qc))), abs=1e-12)
        assert r.scores["jensen_shannon"] == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-12)
        w = st.wasserstein_distance(ref[:, i], cur[:, i]) / max(float(ref[:, i].std()), 1e-3)
        assert r.scores["wasserstein"] == pytest.approx(w, abs=1e-9)
        ks = st.ks_2samp(ref[:, i], cur[:, i], method="asymp")
        assert r.scores["ks_statistic"] == pytest.approx(float(ks.statistic), abs=1e-12)
        assert r.scores["ks_p_value"] == pytest.approx(float(ks.pvalue), abs=1e-12)
        # scipy's default (exact below 10k values) is close to the asymptotic p-value
        assert r.scores["ks_p_value"] == pytest.approx(float(st.ks_2samp(ref[:, i], cur[:, i]).pvalue), abs=0.05)
