"""Profiles: feature_names selection, prediction kinds, the version-2 file format, the profile CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from otel_ml._internal.drift import DriftTracker, FeatureKind, ReferenceProfile
from otel_ml._internal.errors import CLIError, ProfileError
from otel_ml._internal.selftelemetry import SelfTelemetry

_RNG = np.random.default_rng(0)
_COLS = {"age": _RNG.normal(40, 10, 500), "income": _RNG.lognormal(10, 1, 500),
         "region": _RNG.choice(["eu", "us"], 500), "score": _RNG.random(500)}


@pytest.mark.parametrize("make", [
    lambda: dict(_COLS),
    lambda: pd.DataFrame(_COLS),
], ids=["dict", "dataframe"])
def test_feature_names_select_columns_in_that_order(make: Any) -> None:
    """A DataFrame or dict profiles exactly the named columns, in the given order."""
    p = ReferenceProfile.from_data(make(), feature_names=["region", "age"])
    assert p.feature_names == ["region", "age"]
    assert p.feature("region").kind is FeatureKind.CATEGORICAL
    assert p.feature("age").mean == pytest.approx(float(np.mean(_COLS["age"])))
    assert ReferenceProfile.from_data(make()).feature_names == ["age", "income", "region", "score"]
    with pytest.raises(ProfileError, match=r"unknown column 'salary'; available columns: "
                                           r"\['age', 'income', 'region', 'score'\]"):
        ReferenceProfile.from_data(make(), feature_names=["age", "salary"])


def test_feature_names_name_numpy_columns() -> None:
    """A numpy array's columns take the names in order; a count mismatch names both counts."""
    X = np.column_stack([_COLS["age"], _COLS["income"]])
    p = ReferenceProfile.from_data(X, feature_names=["age", "income"])
    assert p.feature_names == ["age", "income"]
    assert p.feature("income").max == pytest.approx(float(_COLS["income"].max()))
    assert ReferenceProfile.from_data(X).feature_names == ["f0", "f1"]
    with pytest.raises(ProfileError, match="feature_names has 3 names for the 2 columns"):
        ReferenceProfile.from_data(X, feature_names=["a", "b", "c"])


def test_feature_names_must_be_a_list_of_distinct_names() -> None:
    """A bare string is a TypeError, duplicates a ValueError."""
    with pytest.raises(TypeError, match="feature_names"):
        ReferenceProfile.from_data(_COLS, feature_names="age")
    with pytest.raises(ValueError, match=r"duplicates: \['age'\]"):
        ReferenceProfile.from_data(_COLS, feature_names=["age", "age"])


def test_prediction_kind_defaults_to_confidence_for_floats_and_class_otherwise() -> None:
    """Float predictions are "confidence", ints and strings "class"; an explicit kind wins."""
    X = {"a": np.arange(100.0)}
    assert ReferenceProfile.from_data(X, predictions=np.linspace(0, 1, 100)).prediction_kind == "confidence"
    by_int = ReferenceProfile.from_data(X, predictions=np.arange(100) % 3)
    assert by_int.prediction_kind == "class" and by_int.prediction is not None
    assert set(by_int.prediction.categories) == {0, 1, 2}
    assert ReferenceProfile.from_data(X, predictions=["y", "n"] * 50).prediction_kind == "class"
    score = ReferenceProfile.from_data(X, predictions=np.linspace(0, 1, 100), prediction_kind="score")
    assert score.prediction_kind == "score" and score.prediction is not None
    assert score.prediction.kind is FeatureKind.NUMERIC
    value = ReferenceProfile.from_data(X, predictions=np.arange(100) * 3.5, prediction_kind="value")
    assert value.prediction_kind == "value"
    assert ReferenceProfile.from_data(X).prediction_kind is None


def test_integral_float_classes_become_int_labels() -> None:
    """kind "class" with 0.0/1.0 floats profiles the labels 0 and 1 (matching "1" and 1 at serving)."""
    p = ReferenceProfile.from_data({"a": np.arange(100.0)}, predictions=np.array([0.0, 1.0] * 50),
                                   prediction_kind="class")
    assert p.prediction is not None and p.prediction.kind is FeatureKind.CATEGORICAL
    assert sorted(p.prediction.categories) == [0, 1]
    assert all(type(c) is int for c in p.prediction.categories)
    t = DriftTracker(p)
    t.update_predictions(["1", "0"])
    t.update_predictions(np.array([1, 0]))
    assert t.data_quality()["__prediction__"].valid == 4


@pytest.mark.parametrize(("predictions", "kind", "message"), [
    (np.array([1.0, 0.37, 2.0]), "class", r"predictions: prediction_kind='class' needs class labels.*0\.37"),
    (np.array([0.2, 1.5]), "confidence", r"predictions: prediction_kind='confidence' values are probabilities"),
    (np.array([-0.1, 0.5]), "score", r"predictions: prediction_kind='score' values are probabilities"),
    (["a", "b"], "value", r"predictions: prediction_kind='value' needs numbers"),
    (np.zeros((2, 2)), None, r"predictions must be 1-D"),
    (np.array([0.5, 0.5]), "proba", r"prediction_kind must be one of \['confidence', 'score', 'class', 'value'\]"),
])
def test_predictions_that_do_not_fit_their_kind_raise(predictions: Any, kind: Any, message: str) -> None:
    """Non-integral classes, probabilities outside [0, 1], text values, bad shapes and kinds raise ValueError."""
    with pytest.raises(ValueError, match=message):
        ReferenceProfile.from_data({"a": np.arange(2.0)}, predictions=predictions, prediction_kind=kind)


def test_prediction_kind_without_predictions_raises() -> None:
    """A prediction kind describes predictions; without them it is a mistake."""
    with pytest.raises(ValueError, match="prediction_kind='score' given without predictions"):
        ReferenceProfile.from_data({"a": np.arange(5.0)}, prediction_kind="score")


def test_tracker_exposes_the_profiles_prediction_kind() -> None:
    """The tracker takes values of the profile's kind; without a prediction profile it counts a drop."""
    p = ReferenceProfile.from_data({"a": np.arange(100.0)}, predictions=np.linspace(0, 1, 100),
                                   prediction_kind="score")
    registry = SelfTelemetry()
    t = DriftTracker(p, selftelemetry=registry)
    assert t.prediction_kind == "score"
    t.update_predictions(np.array([0.1, 0.2, 0.9]))
    t.update_predictions(0.5)
    assert t.data_quality()["__prediction__"].valid == 4
    bare = DriftTracker(ReferenceProfile.from_data({"a": np.arange(10.0)}), selftelemetry=registry)
    assert bare.prediction_kind is None
    bare.update_predictions([0.5])
    assert registry.count("drift_no_prediction_reference") == 1


def test_version_2_file_round_trips_the_prediction_kind(tmp_path: Path) -> None:
    """Saved profiles are version 2 with prediction.prediction_kind; loading gives the same profile."""
    p = ReferenceProfile.from_data(_COLS, feature_names=["age", "region"], predictions=_COLS["score"],
                                   prediction_kind="score")
    path = tmp_path / "p.json"
    p.save(path)
    doc = json.loads(path.read_text())
    assert doc["version"] == 2 and doc["prediction"]["prediction_kind"] == "score"
    loaded = ReferenceProfile.load(path)
    assert loaded == p and loaded.prediction_kind == "score"


@pytest.mark.parametrize(("predictions", "expected"), [
    (np.linspace(0, 1, 100), "confidence"),
    (np.array(["y", "n"] * 50), "class"),
])
def test_version_1_files_are_still_read(tmp_path: Path, predictions: Any, expected: str) -> None:
    """A version-1 file (no prediction_kind) reads numeric predictions as confidence, others as class."""
    p = ReferenceProfile.from_data({"a": np.arange(100.0)}, predictions=predictions)
    doc = p.to_json()
    doc["version"] = 1
    del doc["prediction"]["prediction_kind"]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(doc))
    loaded = ReferenceProfile.load(path)
    assert loaded.prediction_kind == expected
    assert loaded.prediction == p.prediction


def test_version_2_prediction_kind_is_checked(tmp_path: Path) -> None:
    """A v2 prediction without prediction_kind, or with one that does not fit it, is a ProfileError."""
    doc = ReferenceProfile.from_data({"a": np.arange(100.0)}, predictions=np.linspace(0, 1, 100)).to_json()
    path = tmp_path / "p.json"
    del doc["prediction"]["prediction_kind"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match="missing field 'prediction_kind'"):
        ReferenceProfile.load(path)
    doc["prediction"]["prediction_kind"] = "class"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match="prediction_kind 'class'"):
        ReferenceProfile.load(path)


@pytest.mark.parametrize("where", ["feature", "prediction"])
def test_numbers_past_floats_range_are_a_profile_error(tmp_path: Path, where: str) -> None:
    """JSON integers have no bound: one past float's range (found by fuzzing) is a ProfileError
    naming the feature, not an OverflowError."""
    doc = ReferenceProfile.from_data({"a": np.arange(100.0)}, predictions=np.linspace(0, 1, 100)).to_json()
    target = doc["features"][0] if where == "feature" else doc["prediction"]
    target["max"] = 10 ** 400
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match=f"feature '{target['name']}' has an invalid field"):
        ReferenceProfile.load(path)


@pytest.mark.parametrize("categories", [[{"a": 1}, "eu"], [["eu"]], {"eu": 1}, "eu"])
def test_categories_must_be_a_list_of_labels(tmp_path: Path, categories: Any) -> None:
    """A category that is an object or a list (found by fuzzing: it reached the drift tracker and
    raised there, unhashable) is a ProfileError when the file is loaded."""
    doc = ReferenceProfile.from_data({"region": np.array(["eu", "us"] * 50)}).to_json()
    doc["features"][0]["categories"] = categories
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match="categories must be a list"):
        ReferenceProfile.load(path)


def _cli(tmp_path: Path) -> tuple[argparse.ArgumentParser, Path]:
    from otel_ml._internal.drift import cli

    csv = tmp_path / "train.csv"
    csv.write_text("age,region,label,proba,pred\n" + "".join(
        f"{20 + i % 50},{'eu' if i % 3 else 'us'},{i % 2},{(i % 10) / 10},{(i % 7) * 0.5}\n" for i in range(300)))
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser, csv


def test_profile_cli_records_the_prediction_kind(tmp_path: Path) -> None:
    """--prediction-kind score profiles the column as positive-class scores."""
    parser, csv = _cli(tmp_path)
    out = tmp_path / "p.json"
    args = parser.parse_args(["profile", str(csv), "-o", str(out), "--target", "label", "--prediction", "proba",
                              "--prediction-kind", "score", "--kinds", "pred=categorical"])
    assert args.handler(args) == 0
    p = ReferenceProfile.load(out)
    assert p.prediction_kind == "score" and p.feature_names == ["age", "region", "pred"]
    assert p.feature("pred").kind is FeatureKind.CATEGORICAL
    with pytest.raises(SystemExit):
        parser.parse_args(["profile", str(csv), "-o", str(out), "--prediction-kind", "probability"])


@pytest.mark.parametrize(("extra", "message"), [
    (["--prediction", "nope"], r"--prediction: column 'nope' is not in .*train.csv \(columns: "),
    (["--target", "nope"], r"--target: column 'nope' is not in .*train.csv"),
    (["--kinds", "nope=numeric"], r"--kinds nope=numeric: column 'nope' is not a feature column of .*train.csv"),
    (["--kinds", "age=weird"], r"--kinds age=weird: unknown kind 'weird' for column 'age' of .*train.csv"),
    (["--kinds", "age"], r"--kinds expects COL=KIND"),
    (["--prediction", "pred", "--prediction-kind", "confidence"],
     r"--prediction: column 'pred' of .*train.csv: predictions: prediction_kind='confidence' values are "
     r"probabilities"),
    (["--prediction", "proba", "--prediction-kind", "class"],
     r"--prediction: column 'proba' of .*train.csv: predictions: prediction_kind='class' needs class labels"),
    (["--prediction-kind", "score"], r"--prediction-kind needs --prediction"),
    (["--kinds", "region=numeric"], r"train.csv: feature 'region' is declared numeric"),
])
def test_profile_cli_errors_name_the_file_and_column(tmp_path: Path, extra: list[str], message: str) -> None:
    """Bad --prediction/--target/--kinds/--prediction-kind give one CLIError naming file and column."""
    parser, csv = _cli(tmp_path)
    args = parser.parse_args(["profile", str(csv), "-o", str(tmp_path / "p.json"), *extra])
    with pytest.raises(CLIError, match=message):
        args.handler(args)


def test_profile_cli_shows_a_progress_bar_feature_by_feature(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`otel-ml profile --progress always`: a bar on stderr that reaches every feature; the profile is
    the same as without it."""
    from otel_ml.cli import main

    rng = np.random.default_rng(0)
    data = tmp_path / "big.csv"
    rows = rng.normal(size=(2000, 6))
    data.write_text("a,b,c,d,e,f\n" + "\n".join(",".join(f"{v:.5f}" for v in r) for r in rows) + "\n")
    assert main(["profile", str(data), "-o", str(tmp_path / "p1.json"), "--progress", "always"]) == 0
    err = capsys.readouterr().err
    assert "profiling 6 features x 2000 rows" in err and "6/6" in err
    assert main(["profile", str(data), "-o", str(tmp_path / "p2.json"), "--progress", "never"]) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "p1.json").read_text() == (tmp_path / "p2.json").read_text()
