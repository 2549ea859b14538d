"""One feature's reference distribution, the binning shared by profiles and trackers.

Per feature a :class:`FeatureProfile` keeps what every drift method and the Prometheus recording
rules need:

* numeric: bin edges at the reference quantiles (deduplicated, so heavy ties make fewer bins),
  plus an underflow bin (< min) and an overflow bin (> max). Bin ``i`` of ``edges`` of length
  ``m`` is ``0``: x < edges[0]; ``1..m-1``: edges[i-1] <= x < edges[i] (the last one closed
  at ``edges[-1]``); ``m``: x > edges[-1]. Reference proportions of the under/overflow bins are 0.
* categorical / boolean: the top-K categories by reference frequency plus one ``other`` bin
  that also receives categories never seen in training.
* missing rate, min/max, mean/std, the reference size, and a bounded sorted sample (uniform
  without replacement) for KS and Wasserstein.

This module depends on nothing else in the drift package: the tracker needs these types and
:class:`ProfileLike` (what it reads from a profile), the profile needs the tracker (for
``compare``), and both import from here.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from otel_ml._internal.errors import ProfileError

FloatArray = npt.NDArray[np.float64]

PREDICTION_FEATURE = "__prediction__"
"""Feature name under which the prediction distribution is profiled and exported
(``ml.feature.name="__prediction__"``)."""

PredictionKind = Literal["confidence", "score", "class", "value"]
"""What a profile's prediction distribution holds: ``confidence`` (top-class probability),
``score`` (positive-class probability), ``class`` (labels), ``value`` (regression output)."""

PREDICTION_KINDS: tuple[PredictionKind, ...] = ("confidence", "score", "class", "value")

DEFAULT_BINS = 10
"""Reference quantile bins of a numeric feature (``from_data(bins=)``); the Prometheus alert's
χ² floor assumes this many (see ``alerts/gen_drift_rules.py``)."""


class FeatureKind(str, enum.Enum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class FeatureProfile:
    """One feature of a reference profile."""

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
                categories = d["categories"]
                if not isinstance(categories, list) or not all(
                        isinstance(c, (str, int, float, bool)) for c in categories):
                    raise ProfileError(f"feature {common['name']!r}: categories must be a list of strings, "
                                       "numbers or booleans")
                fp = cls(**common, categories=tuple(categories))
                if len(fp.proportions) != len(fp.categories) + 1:
                    raise ProfileError(f"feature {fp.name!r}: {len(fp.proportions)} proportions "
                                       f"for {len(fp.categories)} categories (expected categories + 1)")
        except KeyError as exc:
            raise ProfileError(f"feature {d.get('name', '?')!r} is missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: an int past float's range
            if isinstance(exc, ProfileError):
                raise
            raise ProfileError(f"feature {d.get('name', '?')!r} has an invalid field: {exc}") from None
        return fp


class ProfileLike(Protocol):
    """What a :class:`~otel_ml._internal.drift.tracker.DriftTracker` reads from a profile."""

    @property
    def features(self) -> Sequence[FeatureProfile]: ...

    @property
    def prediction(self) -> FeatureProfile | None: ...

    @property
    def prediction_kind(self) -> PredictionKind | None: ...

    @property
    def feature_names(self) -> list[str]: ...


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
    present = [v for v in arr.tolist() if not is_missing(v)]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return FeatureKind.BOOLEAN
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return FeatureKind.NUMERIC
    return FeatureKind.CATEGORICAL


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _json_category(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def build_feature(name: str, values: Any, kind: FeatureKind, *, bins: int, top_k: int,
                  sample_size: int, rng: np.random.Generator) -> FeatureProfile:
    """Profile one column; ``ValueError`` naming the feature when its values cannot be profiled."""
    arr = np.asarray(values)
    total = int(arr.size)
    if total == 0:
        raise ValueError(f"feature {name!r} has no reference values")
    if kind is FeatureKind.NUMERIC:
        try:
            num = arr.astype(np.float64) if arr.dtype.kind in "iufb" else np.array(
                [math.nan if is_missing(v) else float(v) for v in arr.tolist()], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
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
    items = [v for v in arr.tolist() if not is_missing(v)]
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
