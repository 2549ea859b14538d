"""Size-aware status, data-quality counting, windows, profile files, CLI, fuzzing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from sklearn.datasets import load_breast_cancer

from otel_ml._internal.drift import DriftPolicy, DriftStatus, DriftTracker, ReferenceProfile
from otel_ml._internal.errors import CLIError, ProfileError
from otel_ml._internal.selftelemetry import SelfTelemetry


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, list[str], ReferenceProfile]:
    ds = load_breast_cancer()
    names = [str(n) for n in ds.feature_names]
    return ds.data, names, ReferenceProfile.from_data(ds.data, feature_names=names)


def test_small_windows_have_few_false_alarms_and_drift_fires(cancer: Any) -> None:
    """n=150 windows resampled from the reference: <1% WARNING, <0.5% DRIFT; a 1-sd shift is DRIFT."""
    X, _, profile = cancer
    rng = np.random.default_rng(0)
    statuses: list[DriftStatus] = []
    naive_alarms = 0
    for _ in range(60):
        t = DriftTracker(profile, policy=DriftPolicy(sub_windows=1, min_samples=100))
        t.update(X[rng.integers(0, len(X), 150)])
        res = t.evaluate()
        statuses += [r.status for r in res.values()]
        naive_alarms += sum(r.scores["psi"] >= 0.1 for r in res.values())
    n = len(statuses)
    warn = sum(s is not DriftStatus.OK for s in statuses) / n
    drift = sum(s is DriftStatus.DRIFT for s in statuses) / n
    assert warn < 0.01 and drift < 0.005, (warn, drift)
    assert naive_alarms / n > 0.05  # why a fixed 0.1 cut-off is wrong for small windows
    fired = []
    for _ in range(20):
        t = DriftTracker(profile, policy=DriftPolicy(sub_windows=1, min_samples=100))
        t.update(X[rng.integers(0, len(X), 150)] + X.std(axis=0))
        fired += [r.status is DriftStatus.DRIFT for r in t.evaluate().values()]
    assert sum(fired) / len(fired) > 0.95


def test_below_min_samples_is_insufficient_data(cancer: Any) -> None:
    """50 valid values with min_samples=100: every feature is INSUFFICIENT_DATA, no scores."""
    X, _, profile = cancer
    t = DriftTracker(profile, policy=DriftPolicy(min_samples=100))
    t.update(X[:50])
    res = t.evaluate()
    assert {r.status for r in res.values()} == {DriftStatus.INSUFFICIENT_DATA}
    assert all(r.n == 50 and not r.scores for r in res.values())


def test_data_quality_counts_each_issue() -> None:
    """missing, NaN, inf, unseen, out-of-range and type mismatch are counted, never raised."""
    profile = ReferenceProfile.from_data({"x": np.linspace(0, 1, 100), "c": ["a", "b"] * 50})
    t = DriftTracker(profile)
    rows: list[dict[str, Any]] = [
        {"x": None, "c": None}, {"x": math.nan, "c": math.nan}, {"x": math.inf, "c": "zz"},
        {"x": -5.0, "c": "a"}, {"x": "oops", "c": ["unhashable"]}, {"x": 0.5, "c": "b"}, {},
    ]
    for r in rows:
        t.update(r)
    t.update({"x": np.array([np.nan, np.inf, 7.0, 0.2]), "c": np.array(["a", None, "q", "b"], dtype=object)})
    q = t.data_quality()
    assert q["x"].issues == {"missing": 2, "nan": 2, "inf": 2, "unseen_category": 0, "out_of_range": 2,
                             "type_mismatch": 1}
    assert q["c"].issues == {"missing": 3, "nan": 1, "inf": 0, "unseen_category": 2, "out_of_range": 0,
                             "type_mismatch": 1}
    assert q["x"].rows == 11 and q["x"].valid == 4
    assert q["x"].rate("missing") == pytest.approx(2 / 11)


def test_sliding_window_forgets_old_sub_windows() -> None:
    """Rows older than the window leave it; cumulative bin counts keep them."""
    now = [0.0]
    profile = ReferenceProfile.from_data({"x": np.arange(1000.0)})
    t = DriftTracker(profile, policy=DriftPolicy(window_s=100, sub_windows=5, min_samples=1), clock=lambda: now[0])
    t.update(np.arange(500.0).reshape(-1, 1))
    now[0] = 50.0
    t.update({"x": 3.0})
    assert t.evaluate()["x"].n == 501
    now[0] = 110.0
    assert t.evaluate()["x"].n == 1
    now[0] = 200.0
    assert t.evaluate()["x"].n == 0
    assert sum(t.cumulative_bins()["x"]) == 501


def test_profile_round_trip_and_errors(tmp_path: Path, cancer: Any) -> None:
    """save/load round-trips; corrupt, unknown version and missing fields raise ProfileError."""
    _X, _names, profile = cancer
    path = tmp_path / "p.json"
    profile.save(path)
    loaded = ReferenceProfile.load(path)
    assert loaded == profile
    assert np.array_equal(loaded.features[0].sample_array, profile.features[0].sample_array)
    doc = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(ProfileError, match="corrupt"):
        ReferenceProfile.load(path)
    path.write_text(json.dumps({**doc, "version": 99}))
    with pytest.raises(ProfileError, match="version 99"):
        ReferenceProfile.load(path)
    bad = json.loads(json.dumps(doc))
    del bad["features"][0]["edges"]
    path.write_text(json.dumps(bad))
    with pytest.raises(ProfileError, match="edges"):
        ReferenceProfile.load(path)
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ProfileError, match="not an otel_ml"):
        ReferenceProfile.load(path)


def test_constructor_misuse_raises_at_once(cancer: Any) -> None:
    """Bad profile data, kinds, bins, profiles and policies raise when built, naming the argument."""
    X, names, profile = cancer
    with pytest.raises(TypeError):
        ReferenceProfile.from_data("not data")
    with pytest.raises(ValueError, match="feature_names"):
        ReferenceProfile.from_data(X, feature_names=["a"])
    with pytest.raises(ValueError, match="unknown kind"):
        ReferenceProfile.from_data({"a": [1, 2]}, feature_kinds={"a": "weird"})
    with pytest.raises(ValueError, match="bins"):
        ReferenceProfile.from_data(X, feature_names=names, bins=1)
    with pytest.raises(TypeError, match="profile"):
        DriftTracker({"not": "a profile"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="policy"):
        DriftTracker(profile, policy={"window_s": 10})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="selftelemetry"):
        DriftTracker(profile, selftelemetry=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window_s"):
        DriftPolicy(window_s=0)
    with pytest.raises(ValueError, match="unknown drift method"):
        DriftPolicy(methods=("psi", "nope"))


def test_registry_errors_are_helpful() -> None:
    """The method registry names the kind a method does not apply to, and the known methods."""
    from otel_ml._internal.drift import FeatureKind, methods

    with pytest.raises(KeyError, match="does not apply to categorical"):
        methods.get("ks", FeatureKind.CATEGORICAL)
    with pytest.raises(KeyError, match="unknown drift method"):
        methods.get("magic", FeatureKind.NUMERIC)


_values = hs.one_of(hs.none(), hs.floats(allow_nan=True, allow_infinity=True), hs.integers(-10**30, 10**30),
                    hs.text(max_size=5), hs.booleans(), hs.lists(hs.integers(), max_size=2),
                    hs.binary(max_size=3), hs.just(object()))


@settings(max_examples=300, deadline=None)
@given(data=hs.one_of(
    hs.dictionaries(hs.sampled_from(["x", "c", "b", "zz"]), _values, max_size=4),
    hs.lists(_values, max_size=5),
    hs.tuples(_values, _values, _values),
    _values,
    hs.lists(hs.lists(hs.floats(), max_size=4), max_size=4).map(lambda v: np.array(v, dtype=object)),
    hs.integers(0, 4).map(lambda n: np.full((n, 3), np.nan)),
    hs.just(np.empty((0, 3))),
    hs.just({"x": np.array([1.0, 2.0]), "c": np.array(["a"])}),
))
def test_update_never_raises_on_bad_input(data: Any) -> None:
    """Fuzzed rows and batches never raise nor hit an internal error; rejected calls are counted."""
    profile = ReferenceProfile.from_data({"x": np.linspace(0, 1, 50), "c": ["a", "b"] * 25,
                                          "b": [True, False] * 25}, predictions=np.linspace(0, 1, 50))
    registry = SelfTelemetry()
    t = DriftTracker(profile, selftelemetry=registry)
    t.update(data)
    t.update_predictions(data)
    t.evaluate()
    q = t.data_quality()
    accounted = sum(sum(f.issues.values()) + f.valid for f in q.values())
    assert accounted > 0 or registry.count() > 0 or _empty(data)
    assert registry.count("drift_update_error") == 0, registry.snapshot()


def test_unusable_calls_are_counted_in_the_trackers_registry() -> None:
    """Wrong-length rows and predictions without a reference count in the tracker's own registry."""
    profile = ReferenceProfile.from_data({"x": np.linspace(0, 1, 50), "y": np.linspace(0, 2, 50)})
    mine, other = SelfTelemetry(), SelfTelemetry()
    t = DriftTracker(profile, selftelemetry=mine)
    DriftTracker(profile, selftelemetry=other)
    t.update([1.0, 2.0, 3.0])
    t.update(np.zeros((4, 3)))
    t.update_predictions([0.5])
    t.update(object())
    assert mine.count("drift_wrong_length") == 5
    assert mine.count("drift_no_prediction_reference") == 1
    assert mine.count("drift_unsupported_input") == 1
    assert mine.snapshot()[("drift_wrong_length", "drift")] == 5
    assert other.count() == 0


def _empty(data: Any) -> bool:
    try:
        return len(data) == 0 or (isinstance(data, np.ndarray) and data.size == 0)
    except TypeError:
        return False


def test_profile_cli(tmp_path: Path) -> None:
    """`otel-ml profile` writes a loadable profile; bad input is a CLIError."""
    import argparse

    from otel_ml._internal.drift import cli

    csv = tmp_path / "train.csv"
    csv.write_text("age,region,label,score\n" + "".join(f"{20 + i % 50},{'eu' if i % 3 else 'us'},{i % 2},"
                                                     f"{(i % 10) / 10}\n" for i in range(300)))
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    out = tmp_path / "p.json"
    args = parser.parse_args(["profile", str(csv), "-o", str(out), "--kinds", "age=numeric",
                              "--target", "label", "--prediction", "score"])
    assert args.handler(args) == 0
    p = ReferenceProfile.load(out)
    assert p.feature_names == ["age", "region"] and p.prediction is not None
    for bad, msg in ((tmp_path / "missing.csv", "no such file"),):
        with pytest.raises(CLIError, match=msg):
            args.handler(parser.parse_args(["profile", str(bad), "-o", str(out)]))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CLIError, match="empty"):
        args.handler(parser.parse_args(["profile", str(empty), "-o", str(out)]))
    with pytest.raises(CLIError, match="--target"):
        args.handler(parser.parse_args(["profile", str(csv), "-o", str(out), "--target", "nope"]))
