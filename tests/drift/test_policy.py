"""DriftPolicy: documented defaults, validation naming the field, how trackers apply it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from otel_ml._internal.drift import DriftPolicy, DriftStatus, DriftTracker, ReferenceProfile


def test_defaults_are_the_documented_ones() -> None:
    """DriftPolicy() is PSI 0.1/0.25 at alpha 1e-3/1e-4, 100 samples, 300 s in 5 sub-windows, 2000 values."""
    p = DriftPolicy()
    assert (p.methods, p.status_method, p.warning, p.drift) == (None, "psi", None, None)
    assert (p.warning_alpha, p.drift_alpha, p.min_samples) == (1e-3, 1e-4, 100)
    assert (p.window_s, p.sub_windows, p.sample_size) == (300.0, 5, 2000)
    assert p.thresholds() == (0.1, 0.25)
    assert DriftPolicy(status_method="jensen_shannon").thresholds() == (0.13, 0.21)
    assert DriftPolicy(status_method="wasserstein").thresholds() == (0.05, 0.1)
    assert DriftPolicy(status_method="ks").thresholds() == (0.0, 0.0)


def test_given_thresholds_apply_to_the_status_method_only() -> None:
    """warning/drift are in the status method's units; PSI standing in keeps its defaults."""
    p = DriftPolicy(status_method="ks", warning=0.05, drift=0.08)
    assert p.thresholds() == (0.05, 0.08)
    assert p.thresholds("psi") == (0.1, 0.25)
    assert DriftPolicy(warning=0.2).thresholds() == (0.2, 0.25)


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"sub_windows": 0}, ValueError, r"DriftPolicy.sub_windows must be an int >= 1, got 0"),
    ({"sub_windows": 2.0}, TypeError, r"DriftPolicy.sub_windows must be an int"),
    ({"min_samples": 0}, ValueError, r"DriftPolicy.min_samples must be an int >= 1, got 0"),
    ({"min_samples": True}, TypeError, r"DriftPolicy.min_samples"),
    ({"sample_size": 5}, ValueError, r"DriftPolicy.sample_size must be an int >= 10, got 5"),
    ({"window_s": 0}, ValueError, r"DriftPolicy.window_s must be a positive number"),
    ({"window_s": 5e-324}, ValueError, r"DriftPolicy.window_s must be at least"),
    ({"window_s": math.inf}, ValueError, r"DriftPolicy.window_s"),
    ({"window_s": "300"}, TypeError, r"DriftPolicy.window_s must be a number"),
    ({"methods": "psi"}, TypeError, r"DriftPolicy.methods must be a tuple"),
    ({"methods": (1,)}, TypeError, r"DriftPolicy.methods must hold method names"),
    ({"methods": ("psi", "nope")}, ValueError,
     r"unknown drift method 'nope'; known methods: \['chi2', 'jensen_shannon', 'ks', 'psi', 'wasserstein'\]"),
    ({"status_method": "chi2"}, ValueError,
     r"DriftPolicy.status_method must be one of \['psi', 'jensen_shannon', 'wasserstein', 'ks'\], got 'chi2'"),
    ({"status_method": None}, TypeError, r"DriftPolicy.status_method must be a str"),
    ({"warning": -0.1}, ValueError, r"DriftPolicy.warning must be a finite number >= 0"),
    ({"drift": math.nan}, ValueError, r"DriftPolicy.drift must be a finite number >= 0"),
    ({"warning": "0.1"}, TypeError, r"DriftPolicy.warning must be a number or None"),
    ({"warning": 0.3}, ValueError, r"DriftPolicy.warning must be <= DriftPolicy.drift for psi, got 0.3 > 0.25"),
    ({"status_method": "ks", "drift": 2.0}, ValueError, r"DriftPolicy.drift must be <= 1 for ks"),
    ({"warning_alpha": 0.0}, ValueError, r"DriftPolicy.warning_alpha must be in \(0, 1\)"),
    ({"drift_alpha": "1e-4"}, TypeError, r"DriftPolicy.drift_alpha must be a number"),
    ({"warning_alpha": 1e-5}, ValueError, r"DriftPolicy.warning_alpha must be >= DriftPolicy.drift_alpha"),
])
def test_invalid_fields_raise_naming_the_field(kwargs: dict[str, Any], exc: type[Exception], message: str) -> None:
    """Wrong types raise TypeError, bad values ValueError, the message naming the field."""
    with pytest.raises(exc, match=message):
        DriftPolicy(**kwargs)


def test_policy_is_frozen_and_hashable() -> None:
    """A policy cannot change after trackers got it; a methods list is kept as a tuple."""
    p = DriftPolicy(methods=["psi", "ks"])  # type: ignore[arg-type]
    assert p.methods == ("psi", "ks")
    assert hash(p) == hash(DriftPolicy(methods=("psi", "ks")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.min_samples = 1  # type: ignore[misc]


def test_tracker_runs_the_listed_methods_that_apply_plus_the_status_method() -> None:
    """methods=("psi", "chi2") with status wasserstein: numeric gets psi+wasserstein, categorical psi+chi2."""
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], 3000)})
    t = DriftTracker(profile, policy=DriftPolicy(methods=("psi", "chi2"), status_method="wasserstein",
                                                 sub_windows=1))
    t.update({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    res = t.evaluate()
    assert set(res["x"].scores) == {"psi", "wasserstein"}
    assert res["x"].status_method == "wasserstein"
    assert set(res["c"].scores) == {"psi", "chi2_statistic", "chi2_p_value"}
    assert res["c"].status_method == "psi"


def test_window_and_min_samples_come_from_the_policy() -> None:
    """window_s/sub_windows slide the window; min_samples sets INSUFFICIENT_DATA."""
    now = [0.0]
    profile = ReferenceProfile.from_data({"x": np.arange(1000.0)})
    t = DriftTracker(profile, policy=DriftPolicy(window_s=10, sub_windows=2, min_samples=30),
                     clock=lambda: now[0])
    t.update(np.arange(40.0).reshape(-1, 1))
    assert t.evaluate()["x"].status is not DriftStatus.INSUFFICIENT_DATA
    now[0] = 6.0
    t.update(np.arange(20.0).reshape(-1, 1))
    assert t.evaluate()["x"].n == 60
    now[0] = 10.0  # the first 5-second sub-window has left the 10-second window
    r = t.evaluate()["x"]
    assert r.n == 20 and r.status is DriftStatus.INSUFFICIENT_DATA
