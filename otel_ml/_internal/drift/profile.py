"""The reference profile: what features and predictions looked like in training, in a few KB of JSON.

:meth:`ReferenceProfile.from_data` profiles every feature (see
:mod:`otel_ml._internal.drift.features` for what a feature keeps) and, optionally, the
prediction distribution under ``__prediction__``. Prediction drift compares like with like, so
the profile records what its prediction distribution holds (``prediction_kind``):

* ``"confidence"``: the top-class probability (numeric, in [0, 1]);
* ``"score"``: the positive-class probability (numeric, in [0, 1]);
* ``"class"``: predicted labels (categorical);
* ``"value"``: a regression output (numeric).

When ``prediction_kind`` is not given, a float array means ``"confidence"`` and anything else
``"class"`` - what the monitor fed drift with before the kind was recorded.

:meth:`ReferenceProfile.compare` evaluates one batch with a :class:`DriftTracker` on a fixed
clock and a single sub-window, so a batch comparison and the streaming tracker apply exactly the
same methods, bins, thresholds and status rule.

Saved as versioned JSON (``"format": "otel_ml.reference_profile", "version": 2``); version 2
adds ``prediction_kind`` to the prediction. Version 1 files are still read: their numeric
prediction is ``"confidence"``, a categorical one ``"class"``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from otel_ml._internal import names
from otel_ml._internal.drift.features import (
    DEFAULT_BINS,
    PREDICTION_FEATURE,
    PREDICTION_KINDS,
    FeatureKind,
    FeatureProfile,
    PredictionKind,
    build_feature,
    infer_kind,
    is_missing,
)
from otel_ml._internal.drift.policy import DriftPolicy
from otel_ml._internal.drift.result import DriftResult
from otel_ml._internal.drift.tracker import DriftTracker
from otel_ml._internal.errors import ProfileError
from otel_ml._internal.selftelemetry import SelfTelemetry

FORMAT = "otel_ml.reference_profile"
VERSION = 2
READABLE_VERSIONS = (1, 2)

_NUMERIC_PREDICTIONS = ("confidence", "score", "value")


def _check_feature_names(feature_names: Any) -> list[str] | None:
    if feature_names is None:
        return None
    if isinstance(feature_names, (str, bytes)) or not isinstance(feature_names, Sequence):
        raise TypeError(f"feature_names must be a sequence of column names, not {type(feature_names).__name__}")
    out = [str(n) for n in feature_names]
    if not out:
        raise ValueError("feature_names is empty")
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise ValueError(f"feature_names has duplicates: {dupes}")
    return out


def _is_dataframe(data: Any) -> bool:
    return (hasattr(data, "columns") and hasattr(data, "__getitem__") and hasattr(data, "__len__")
            and not isinstance(data, (Mapping, np.ndarray)))


def _frame_column(col: Any) -> Any:
    if str(col.dtype) in ("category", "string", "str") or col.dtype.kind == "O":
        return np.asarray(col.astype(object).where(col.notna(), None), dtype=object)
    return col.to_numpy()


def _select(available: Sequence[str], feature_names: list[str] | None) -> list[str]:
    if feature_names is None:
        return list(available)
    present = set(available)
    for n in feature_names:
        if n not in present:
            raise ProfileError(f"feature_names names unknown column {n!r}; available columns: {list(available)}")
    return feature_names


def _columns(data: Any, feature_names: Sequence[str] | None) -> dict[str, Any]:
    """Reference data as name -> 1-D column, from numpy 2-D, pandas DataFrame or a dict.

    ``feature_names`` names a numpy array's columns and selects (in that order) a DataFrame's or
    a dict's; without it every column is profiled.
    """
    wanted = _check_feature_names(feature_names)
    if isinstance(data, Mapping):
        by_name = {str(k): v for k, v in data.items()}
        cols = {n: by_name[n] for n in _select(list(by_name), wanted)}
    elif isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise ValueError(f"numpy reference data must be 2-D, got {data.ndim}-D")
        if wanted is None:
            wanted = [f"f{i}" for i in range(data.shape[1])]
        if len(wanted) != data.shape[1]:
            raise ProfileError(f"feature_names has {len(wanted)} names for the {data.shape[1]} columns "
                               "of the numpy array")
        cols = {n: data[:, i] for i, n in enumerate(wanted)}
    elif _is_dataframe(data):
        by_label = {str(c): c for c in data.columns}
        cols = {n: _frame_column(data[by_label[n]]) for n in _select(list(by_label), wanted)}
    else:
        raise TypeError(
            "reference data must be a 2-D numpy array (with feature_names=), a pandas DataFrame, "
            f"or a dict of columns, not {type(data).__name__}")
    if not cols:
        raise ValueError("reference data has no columns")
    lengths: set[int] = set()
    for n, v in cols.items():
        try:
            lengths.add(len(v))
        except TypeError:
            raise TypeError(f"reference column {n!r} must be a sequence of values, "
                            f"not {type(v).__name__}") from None
    if len(lengths) != 1:
        raise ValueError(f"reference columns have different lengths: {sorted(lengths)}")
    return cols


def _predictions_array(predictions: Any) -> npt.NDArray[Any]:
    """``predictions`` as a 1-D array; ValueError naming ``predictions`` otherwise."""
    try:
        arr = np.asarray(predictions)
    except ValueError as exc:
        raise ValueError(f"predictions cannot be read as a 1-D array: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"predictions must be 1-D (one prediction per row), got shape {arr.shape}")
    return arr


def _prediction_values(predictions: Any, kind: str | None) -> tuple[Any, PredictionKind, FeatureKind]:
    """(values to profile, prediction kind, feature kind); ValueError naming ``predictions``."""
    arr = _predictions_array(predictions)
    if kind is None:
        kind = "confidence" if arr.dtype.kind == "f" else "class"
    elif kind not in PREDICTION_KINDS:
        raise ValueError(f"prediction_kind must be one of {list(PREDICTION_KINDS)}, got {kind!r}")
    pkind = cast(PredictionKind, kind)
    if pkind == "class":
        present = [v for v in arr.tolist() if not is_missing(v)]
        floats = [v for v in present if isinstance(v, float)]
        if any(not (math.isfinite(v) and v.is_integer()) for v in floats):
            bad = next(v for v in floats if not (math.isfinite(v) and v.is_integer()))
            raise ValueError(f"predictions: prediction_kind='class' needs class labels, got the non-integral "
                             f"value {bad!r}; pass prediction_kind='confidence', 'score' or 'value' for "
                             "probabilities or regression outputs")
        # Integral floats become ints, so that the labels 1, "1" and 1.0 fall in one category.
        labels = np.empty(arr.size, dtype=object)
        labels[:] = [None if is_missing(v) else int(v) if isinstance(v, float) else v for v in arr.tolist()]
        return labels, pkind, FeatureKind.CATEGORICAL
    if arr.dtype.kind not in "iuf":
        try:
            arr = np.array([math.nan if is_missing(v) else float(v) for v in arr.tolist()], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"predictions: prediction_kind={pkind!r} needs numbers, got {arr.dtype} "
                             "values; pass prediction_kind='class' for labels") from None
    num = arr.astype(np.float64)
    if pkind in ("confidence", "score"):
        given = num[~np.isnan(num)]
        if given.size and (given.min() < 0.0 or given.max() > 1.0):
            raise ValueError(f"predictions: prediction_kind={pkind!r} values are probabilities in [0, 1], "
                             f"got values in [{given.min()!r}, {given.max()!r}]; pass "
                             "prediction_kind='value' for other numbers")
    return num, pkind, FeatureKind.NUMERIC


def _kind_matches(pkind: str, fkind: FeatureKind) -> bool:
    return (fkind is FeatureKind.NUMERIC) == (pkind in _NUMERIC_PREDICTIONS)


def _fixed_clock() -> float:
    return 0.0


@dataclass(frozen=True)
class ReferenceProfile:
    """Per-feature reference distributions (and optionally the prediction distribution).

    ``prediction_kind`` says what ``prediction`` holds; left None with a prediction it is
    inferred from the prediction's kind (numeric: ``"confidence"``, else ``"class"``).
    """

    features: tuple[FeatureProfile, ...]
    prediction: FeatureProfile | None = None
    bins: int = DEFAULT_BINS
    top_k: int = 20
    prediction_kind: PredictionKind | None = None

    def __post_init__(self) -> None:
        seen = [f.name for f in self.features]
        if len(set(seen)) != len(seen):
            raise ValueError("duplicate feature names in profile")
        if self.prediction is None:
            if self.prediction_kind is not None:
                raise ValueError(f"prediction_kind {self.prediction_kind!r} given without a prediction profile")
            return
        if self.prediction_kind is None:
            inferred = "confidence" if self.prediction.kind is FeatureKind.NUMERIC else "class"
            object.__setattr__(self, "prediction_kind", inferred)
        elif self.prediction_kind not in PREDICTION_KINDS:
            raise ValueError(f"prediction_kind must be one of {list(PREDICTION_KINDS)}, got {self.prediction_kind!r}")
        elif not _kind_matches(self.prediction_kind, self.prediction.kind):
            raise ValueError(f"prediction_kind {self.prediction_kind!r} does not fit a "
                             f"{self.prediction.kind.value} prediction profile")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureProfile:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @classmethod
    def from_data(
        cls,
        data: Any,
        *,
        feature_names: Sequence[str] | None = None,
        feature_kinds: Mapping[str, FeatureKind | str] | None = None,
        bins: int = DEFAULT_BINS,
        top_k: int = 20,
        sample_size: int = 2000,
        predictions: Any = None,
        prediction_kind: PredictionKind | None = None,
        seed: int = 0,
        on_feature: Callable[[str], None] | None = None,
    ) -> ReferenceProfile:
        """Profile ``data``: a 2-D numpy array, a pandas DataFrame, or a dict of columns.

        ``feature_names`` names a numpy array's columns (default ``f0``, ``f1``, ...) and selects,
        in that order, the columns of a DataFrame or dict (default: all of them); an unknown name
        raises :class:`ProfileError` listing the available columns.

        ``predictions``: the reference predictions, one per row, profiled as ``__prediction__``;
        ``prediction_kind`` says what they are (see the module docstring; None: a float array is
        ``"confidence"``, anything else ``"class"``). ``ValueError`` naming ``predictions`` when
        the values do not fit the kind. ``on_feature`` is called with each feature's name once it is
        profiled (progress on large data).
        """
        if not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an int >= 2, got {bins!r}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        if not isinstance(sample_size, int) or sample_size < 10:
            raise ValueError(f"sample_size must be an int >= 10, got {sample_size!r}")
        if prediction_kind is not None and predictions is None:
            raise ValueError(f"prediction_kind={prediction_kind!r} given without predictions")
        cols = _columns(data, feature_names)
        kinds: dict[str, FeatureKind] = {}
        for k, v in (feature_kinds or {}).items():
            if k not in cols:
                raise ValueError(f"feature_kinds names unknown feature {k!r}; features: {sorted(cols)}")
            try:
                kinds[k] = FeatureKind(v)
            except ValueError:
                raise ValueError(f"unknown kind {v!r} for {k!r}; use one of "
                                 f"{[x.value for x in FeatureKind]}") from None
        pred_values = None
        pkind: PredictionKind | None = None
        if predictions is not None:
            pred_values, pkind, pfkind = _prediction_values(predictions, prediction_kind)
        rng = np.random.default_rng(seed)
        built = []
        for n, col in cols.items():
            built.append(build_feature(n, col, kinds.get(n) or infer_kind(col), bins=bins, top_k=top_k,
                                       sample_size=sample_size, rng=rng))
            if on_feature is not None:
                on_feature(n)
        feats = tuple(built)
        pred = None
        if pred_values is not None:
            try:
                pred = build_feature(PREDICTION_FEATURE, pred_values, pfkind, bins=bins, top_k=top_k,
                                     sample_size=sample_size, rng=rng)
            except ValueError as exc:
                raise ValueError(f"predictions: {exc}") from None
        return cls(features=feats, prediction=pred, bins=bins, top_k=top_k, prediction_kind=pkind)

    # --- batch comparison ------------------------------------------------------------------

    def compare(self, data: Any, predictions: Any = None, *,
                policy: DriftPolicy | None = None) -> dict[str, DriftResult]:
        """Drift of one batch against this profile, by the streaming tracker's exact rule.

        ``data``: a pandas DataFrame, a dict of columns, a 2-D numpy array with this profile's
        feature order, or a list of row dicts. Profiled columns absent from a DataFrame or dict
        count as missing. ``predictions``: one per row, of this profile's ``prediction_kind``.
        Returns one result per feature, plus ``__prediction__`` when ``predictions`` is given.
        The whole batch is one window: ``policy``'s window and sub-windows do not apply, its
        ``sample_size`` does.
        """
        if policy is None:
            policy = DriftPolicy()
        elif not isinstance(policy, DriftPolicy):
            raise TypeError(f"policy must be a DriftPolicy, not {type(policy).__name__}")
        batch, n_rows = self._batch(data)
        pred = None
        if predictions is not None:
            if self.prediction is None:
                raise ValueError("predictions given, but this profile has no prediction distribution "
                                 "(build it with from_data(..., predictions=...))")
            pred = _predictions_array(predictions)
            if pred.shape[0] != n_rows:
                raise ValueError(f"predictions has {pred.shape[0]} values for {n_rows} rows of data")
        tracker = DriftTracker(self, policy=replace(policy, sub_windows=1), clock=_fixed_clock,
                               selftelemetry=SelfTelemetry())
        if n_rows:
            tracker.update(batch)
        if pred is not None and pred.size:
            tracker.update_predictions(pred)
        results = tracker.evaluate()
        if pred is None:
            results.pop(PREDICTION_FEATURE, None)
        return results

    def _batch(self, data: Any) -> tuple[Any, int]:
        """``data`` in a form the tracker reads whole, and its row count; raises on misuse."""
        names_ = self.feature_names
        if isinstance(data, np.ndarray):
            if data.ndim != 2:
                raise ValueError(f"data as a numpy array must be 2-D (rows x features), got {data.ndim}-D")
            if data.shape[1] != len(names_):
                raise ValueError(f"data has {data.shape[1]} columns, the profile has {len(names_)} features "
                                 f"({names_})")
            return data, int(data.shape[0])
        if _is_dataframe(data):
            return data, len(data)
        if isinstance(data, Mapping):
            cols: dict[str, Any] = {}
            lengths: dict[str, int] = {}
            for key, col in data.items():
                arr = _as_column(f"data[{key!r}]", col)
                lengths[str(key)] = arr.shape[0]
                if str(key) in names_:
                    cols[str(key)] = arr
            if len(set(lengths.values())) > 1:
                raise ValueError(f"data columns have different lengths: {lengths}")
            n_rows = next(iter(lengths.values()), 0)
            return self._or_all_missing(cols, n_rows), n_rows
        if isinstance(data, (list, tuple)):
            for i, row in enumerate(data):
                if not isinstance(row, Mapping):
                    raise TypeError(f"data as a list must hold row dicts; data[{i}] is a {type(row).__name__}")
            present = [n for n in names_ if any(n in row for row in data)]
            rows_cols: dict[str, Any] = {}
            for n in present:
                col = np.empty(len(data), dtype=object)
                col[:] = [row.get(n) for row in data]
                rows_cols[n] = col
            return self._or_all_missing(rows_cols, len(data)), len(data)
        raise TypeError("data must be a pandas DataFrame, a dict of columns, a 2-D numpy array or a list "
                        f"of row dicts, not {type(data).__name__}")

    def _or_all_missing(self, cols: dict[str, Any], n_rows: int) -> dict[str, Any]:
        # Without any profiled column the tracker could not tell how many rows went missing.
        if cols or not n_rows:
            return cols
        return {self.feature_names[0]: np.full(n_rows, None, dtype=object)}

    # --- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        pred: dict[str, Any] | None = None
        if self.prediction is not None:
            pred = {**self.prediction.to_json(), "prediction_kind": self.prediction_kind}
        return {
            "format": FORMAT,
            "version": VERSION,
            "bins": self.bins,
            "top_k": self.top_k,
            "overflow_category": names.OVERFLOW_VALUE,
            "features": [f.to_json() for f in self.features],
            "prediction": pred,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, allow_nan=True)
        os.replace(tmp, path)

    @classmethod
    def from_json(cls, doc: Any) -> ReferenceProfile:
        if not isinstance(doc, dict):
            raise ProfileError("reference profile must be a JSON object")
        if doc.get("format") != FORMAT:
            raise ProfileError(f"not an otel_ml reference profile (format={doc.get('format')!r})")
        version = doc.get("version")
        if version not in READABLE_VERSIONS:
            raise ProfileError(f"unsupported reference profile version {version!r}; "
                               f"this otel_ml reads versions {list(READABLE_VERSIONS)}")
        for key in ("features", "bins", "top_k"):
            if key not in doc:
                raise ProfileError(f"reference profile is missing field {key!r}")
        if not isinstance(doc["features"], list) or not all(isinstance(f, dict) for f in doc["features"]):
            raise ProfileError("reference profile field 'features' must be a list of objects")
        feats = tuple(FeatureProfile.from_json(f) for f in doc["features"])
        pred_doc = doc.get("prediction")
        pred = FeatureProfile.from_json(pred_doc) if isinstance(pred_doc, dict) else None
        pkind: Any = None
        if pred is not None and isinstance(pred_doc, dict):
            if version == 1:
                pkind = "confidence" if pred.kind is FeatureKind.NUMERIC else "class"
            else:
                if "prediction_kind" not in pred_doc:
                    raise ProfileError("reference profile prediction is missing field 'prediction_kind'")
                pkind = pred_doc["prediction_kind"]
                if pkind not in PREDICTION_KINDS or not _kind_matches(pkind, pred.kind):
                    raise ProfileError(f"reference profile prediction has prediction_kind {pkind!r}; expected "
                                       f"one of {list(PREDICTION_KINDS)} fitting a {pred.kind.value} profile")
        try:
            return cls(features=feats, prediction=pred, bins=int(doc["bins"]), top_k=int(doc["top_k"]),
                       prediction_kind=pkind)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: "bins": Infinity
            raise ProfileError(f"invalid reference profile: {exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"{os.fspath(path)}: corrupt reference profile JSON: {exc}") from None
        except UnicodeDecodeError:
            raise ProfileError(f"{os.fspath(path)}: reference profile is not UTF-8 JSON") from None
        except RecursionError:
            raise ProfileError(f"{os.fspath(path)}: corrupt reference profile JSON: nested too deeply") from None
        except ValueError as exc:  # e.g. an integer past Python's 4300-digit limit
            raise ProfileError(f"{os.fspath(path)}: corrupt reference profile JSON: {exc}") from None
        return cls.from_json(doc)


def _as_column(label: str, col: Any) -> Any:
    """One column of a dict as a 1-D numpy array; TypeError/ValueError naming ``label``."""
    if hasattr(col, "to_numpy") and not isinstance(col, np.ndarray):  # pandas Series
        col = _frame_column(col)
    if isinstance(col, np.ndarray):
        if col.ndim != 1:
            raise ValueError(f"{label} must be 1-D, got shape {col.shape}")
        return col
    if isinstance(col, (list, tuple)):
        # object, not np.asarray: that would turn [1, "a"] into strings and nested lists into 2-D
        arr = np.empty(len(col), dtype=object)
        arr[:] = list(col)
        return arr
    raise TypeError(f"{label} must be a column (list, tuple, numpy array or pandas Series), "
                    f"not {type(col).__name__}")
