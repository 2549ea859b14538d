"""The reference profile: what a feature looked like in training data, in a few KB of JSON.

Per feature it keeps what every drift method and the Prometheus recording rules need:

* numeric: bin edges at the reference quantiles (deduplicated, so heavy ties make fewer bins),
  plus an underflow bin (< min) and an overflow bin (> max). Bin ``i`` of ``edges`` of length
  ``m`` is ``0``: x < edges[0]; ``1..m-1``: edges[i-1] <= x < edges[i] (the last one closed
  at ``edges[-1]``); ``m``: x > edges[-1]. Reference proportions of the under/overflow bins are 0.
* categorical / boolean: the top-K categories by reference frequency plus one ``other`` bin
  that also receives categories never seen in training.
* missing rate, min/max, mean/std, the reference size, and a bounded sorted sample (uniform
  without replacement, ``sample_size`` values) for KS and Wasserstein.

Saved as versioned JSON (``"format": "otel_ml.reference_profile", "version": 1``).
"""

from __future__ import annotations

import enum
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from otel_ml._internal import names
from otel_ml._internal.errors import ProfileError

FORMAT = "otel_ml.reference_profile"
VERSION = 1
PREDICTION_FEATURE = "__prediction__"
"""Feature name under which prediction scores (numeric) or classes (categorical) are profiled
and exported (``ml.feature.name="__prediction__"``)."""

FloatArray = npt.NDArray[np.float64]


class FeatureKind(str, enum.Enum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class FeatureProfile:
    """One feature of a :class:`ReferenceProfile`."""

    name: str
    kind: FeatureKind
    count: int  # non-missing reference values
    missing_rate: float
    proportions: tuple[float, ...]  # per bin (numeric) or per category + other
    edges: tuple[float, ...] = ()  # numeric only
    categories: tuple[Any, ...] = ()  # categorical/boolean only (without "other")
    min: float = math.nan
    max: float = math.nan
    mean: float = math.nan
    std: float = math.nan
    # numeric only: sorted reference sample, kept as a float64 array (8 bytes a value; a tuple of
    # Python floats would cost 4x that), so it takes no part in equality
    sample: Any = field(default=(), repr=False, compare=False)
    _edges_arr: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        arr = np.sort(np.asarray(self.sample, dtype=np.float64))
        arr.setflags(write=False)
        object.__setattr__(self, "sample", arr)
        object.__setattr__(self, "_edges_arr", np.asarray(self.edges, dtype=np.float64))

    @property
    def n_bins(self) -> int:
        return len(self.proportions)

    @property
    def sample_array(self) -> FloatArray:
        sample: FloatArray = self.sample
        return sample

    @property
    def edges_array(self) -> FloatArray:
        return self._edges_arr

    @property
    def reference_counts(self) -> npt.NDArray[np.int64]:
        """Reference counts per bin, reconstructed from proportions and size (for chi²)."""
        counts: npt.NDArray[np.int64] = np.rint(np.asarray(self.proportions) * self.count).astype(np.int64)
        return counts

    def bin_labels(self) -> list[str]:
        """Bin index as a string, the value of ``ml.feature.bin``."""
        return [str(i) for i in range(self.n_bins)]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind.value,
            "count": self.count,
            "missing_rate": self.missing_rate,
            "proportions": list(self.proportions),
        }
        if self.kind is FeatureKind.NUMERIC:
            out.update(edges=list(self.edges), min=self.min, max=self.max, mean=self.mean,
                       std=self.std, sample=self.sample_array.tolist())
        else:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FeatureProfile:
        try:
            kind = FeatureKind(d["kind"])
            common: dict[str, Any] = dict(
                name=str(d["name"]), kind=kind, count=int(d["count"]),
                missing_rate=float(d["missing_rate"]),
                proportions=tuple(float(x) for x in d["proportions"]),
            )
            if kind is FeatureKind.NUMERIC:
                fp = cls(**common, edges=tuple(float(x) for x in d["edges"]), min=float(d["min"]),
                         max=float(d["max"]), mean=float(d["mean"]), std=float(d["std"]),
                         sample=np.asarray(d["sample"], dtype=np.float64))
                if len(fp.proportions) != len(fp.edges) + 1 or not fp.edges:
                    raise ProfileError(f"feature {fp.name!r}: {len(fp.proportions)} proportions "
                                       f"for {len(fp.edges)} edges (expected edges + 1)")
            else:
                fp = cls(**common, categories=tuple(d["categories"]))
                if len(fp.proportions) != len(fp.categories) + 1:
                    raise ProfileError(f"feature {fp.name!r}: {len(fp.proportions)} proportions "
                                       f"for {len(fp.categories)} categories (expected categories + 1)")
        except KeyError as exc:
            raise ProfileError(f"feature {d.get('name', '?')!r} is missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ProfileError):
                raise
            raise ProfileError(f"feature {d.get('name', '?')!r} has an invalid field: {exc}") from None
        return fp


# --- binning shared by the profile and the tracker ------------------------------------------

def numeric_edges(values: FloatArray, bins: int) -> FloatArray:
    """Deduplicated reference quantiles 0, 1/bins, ..., 1; a constant feature gets [c, c+ulp]."""
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], np.nextafter(edges[0], np.inf)])
    return edges.astype(np.float64)


def numeric_bin_index(edges: FloatArray, values: FloatArray) -> npt.NDArray[np.intp]:
    """Bin index of finite ``values`` (see module docstring for the layout)."""
    idx = np.searchsorted(edges, values, side="right")
    # x == max belongs to the last inner bin, not to overflow.
    idx[values == edges[-1]] = edges.size - 1
    return idx


def infer_kind(values: Sequence[Any] | npt.NDArray[Any]) -> FeatureKind:
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.dtype.kind == "b":
        return FeatureKind.BOOLEAN
    if arr.dtype.kind in "iuf":
        return FeatureKind.NUMERIC
    present = [v for v in arr.tolist() if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return FeatureKind.BOOLEAN
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return FeatureKind.NUMERIC
    return FeatureKind.CATEGORICAL


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _json_category(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def build_feature(name: str, values: Any, kind: FeatureKind, *, bins: int, top_k: int,
                  sample_size: int, rng: np.random.Generator) -> FeatureProfile:
    arr = np.asarray(values)
    total = int(arr.size)
    if total == 0:
        raise ValueError(f"feature {name!r} has no reference values")
    if kind is FeatureKind.NUMERIC:
        try:
            num = arr.astype(np.float64) if arr.dtype.kind in "iufb" else np.array(
                [math.nan if _is_missing(v) else float(v) for v in arr.tolist()], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"feature {name!r} is declared numeric but has non-numeric values") from None
        finite = num[np.isfinite(num)]
        if finite.size == 0:
            raise ValueError(f"feature {name!r} has no finite reference values")
        edges = numeric_edges(finite, bins)
        counts = np.bincount(numeric_bin_index(edges, finite), minlength=edges.size + 1)
        sample = finite if finite.size <= sample_size else rng.choice(finite, sample_size, replace=False)
        return FeatureProfile(
            name=name, kind=kind, count=int(finite.size), missing_rate=1.0 - finite.size / total,
            proportions=tuple((counts / finite.size).tolist()), edges=tuple(edges.tolist()),
            min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()),
            std=float(finite.std()), sample=sample,
        )
    items = [v for v in arr.tolist() if not _is_missing(v)]
    if kind is FeatureKind.BOOLEAN:
        try:
            items = [bool(v) for v in items]
        except (TypeError, ValueError):
            raise ValueError(f"feature {name!r} is declared boolean but has non-boolean values") from None
        cats: list[Any] = [False, True]
        counter = Counter(items)
    else:
        counter = Counter(_json_category(v) for v in items)
        # ties broken by the category's string form so the profile is deterministic
        cats = [c for c, _ in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top_k]]
    n = len(items)
    if n == 0:
        raise ValueError(f"feature {name!r} has no non-missing reference values")
    in_top = [counter.get(c, 0) for c in cats]
    props = [c / n for c in in_top] + [(n - sum(in_top)) / n]
    return FeatureProfile(name=name, kind=kind, count=n, missing_rate=1.0 - n / total,
                          proportions=tuple(props), categories=tuple(cats))


def _columns(data: Any, feature_names: Sequence[str] | None) -> dict[str, Any]:
    """Reference data as name -> 1-D column, from numpy 2-D, pandas DataFrame or a dict."""
    if isinstance(data, Mapping):
        cols = {str(k): v for k, v in data.items()}
    elif isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise ValueError(f"numpy reference data must be 2-D, got {data.ndim}-D")
        if feature_names is None:
            feature_names = [f"f{i}" for i in range(data.shape[1])]
        if len(feature_names) != data.shape[1]:
            raise ValueError(f"{len(feature_names)} feature_names for {data.shape[1]} columns")
        cols = {str(n): data[:, i] for i, n in enumerate(feature_names)}
    elif hasattr(data, "columns") and hasattr(data, "__getitem__"):  # pandas DataFrame
        cols = {}
        for c in data.columns:
            col = data[c]
            if str(col.dtype) in ("category", "string", "str") or col.dtype.kind == "O":
                cols[str(c)] = np.asarray(col.astype(object).where(col.notna(), None), dtype=object)
            else:
                cols[str(c)] = col.to_numpy()
    else:
        raise TypeError(
            "reference data must be a 2-D numpy array (with feature_names=), a pandas DataFrame, "
            f"or a dict of columns, not {type(data).__name__}")
    if not cols:
        raise ValueError("reference data has no columns")
    lengths = {len(v) for v in cols.values()}
    if len(lengths) != 1:
        raise ValueError(f"reference columns have different lengths: {sorted(lengths)}")
    return cols


@dataclass(frozen=True)
class ReferenceProfile:
    """Per-feature reference distributions (and optionally the prediction distribution)."""

    features: tuple[FeatureProfile, ...]
    prediction: FeatureProfile | None = None
    bins: int = 10
    top_k: int = 20

    def __post_init__(self) -> None:
        seen = [f.name for f in self.features]
        if len(set(seen)) != len(seen):
            raise ValueError("duplicate feature names in profile")

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
        bins: int = 10,
        top_k: int = 20,
        sample_size: int = 2000,
        predictions: Any = None,
        seed: int = 0,
    ) -> ReferenceProfile:
        """Profile ``data`` (numpy 2-D + ``feature_names``, pandas DataFrame, or dict of columns).

        ``predictions``: reference scores (float array → numeric) or class labels (anything
        else → categorical), profiled as feature ``__prediction__``.
        """
        if not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an int >= 2, got {bins!r}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        if not isinstance(sample_size, int) or sample_size < 10:
            raise ValueError(f"sample_size must be an int >= 10, got {sample_size!r}")
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
        rng = np.random.default_rng(seed)
        feats = tuple(
            build_feature(n, col, kinds.get(n) or infer_kind(col), bins=bins, top_k=top_k,
                          sample_size=sample_size, rng=rng)
            for n, col in cols.items()
        )
        pred = None
        if predictions is not None:
            parr = np.asarray(predictions)
            pkind = FeatureKind.NUMERIC if parr.dtype.kind == "f" else FeatureKind.CATEGORICAL
            pred = build_feature(PREDICTION_FEATURE, parr, pkind, bins=bins, top_k=top_k,
                                 sample_size=sample_size, rng=rng)
        return cls(features=feats, prediction=pred, bins=bins, top_k=top_k)

    # --- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "bins": self.bins,
            "top_k": self.top_k,
            "overflow_category": names.OVERFLOW_VALUE,
            "features": [f.to_json() for f in self.features],
            "prediction": self.prediction.to_json() if self.prediction else None,
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
        if doc.get("version") != VERSION:
            raise ProfileError(f"unsupported reference profile version {doc.get('version')!r}; "
                               f"this otel_ml reads version {VERSION}")
        for key in ("features", "bins", "top_k"):
            if key not in doc:
                raise ProfileError(f"reference profile is missing field {key!r}")
        if not isinstance(doc["features"], list) or not all(isinstance(f, dict) for f in doc["features"]):
            raise ProfileError("reference profile field 'features' must be a list of objects")
        feats = tuple(FeatureProfile.from_json(f) for f in doc["features"])
        pred_doc = doc.get("prediction")
        pred = FeatureProfile.from_json(pred_doc) if isinstance(pred_doc, dict) else None
        try:
            return cls(features=feats, prediction=pred, bins=int(doc["bins"]), top_k=int(doc["top_k"]))
        except (TypeError, ValueError) as exc:
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
        return cls.from_json(doc)
