"""Drift methods, their registry keyed by (method, kind), and the size-aware status rule.

Methods (``p`` = current bin proportions, ``q`` = reference proportions):

* ``psi``: Σ (p-q)·ln(p/q) with both p and q clipped below at :data:`PSI_EPSILON` = 1e-4
  (empty bins, and the reference's always-empty under/overflow bins, would otherwise be
  infinite); not renormalised. The PromQL recording rule uses the same epsilon.
* ``jensen_shannon``: the Jensen-Shannon **distance** in base 2 (0..1), exactly
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
* ``wasserstein``: W1 between the reference sample and the current sample divided by
  ``max(reference std, WASSERSTEIN_STD_FLOOR)``; the floor 1e-3 keeps near-constant features
  finite and equals Evidently's, so the numbers are comparable.
* ``ks``: two-sample KS statistic and p-value of the current sample against the reference
  sample (``scipy.stats.ks_2samp`` when scipy is installed).
* ``chi2``: chi² homogeneity test of the 2xK table [reference counts; current counts] over the
  categories plus ``other``, as ``scipy.stats.chi2_contingency`` (Yates' correction when there
  is one degree of freedom). Categories never seen in training are pooled into ``other``,
  which is a column of the table even when its reference count is 0; columns empty in both rows
  are dropped. Since the table's expected counts come from both rows, a new category makes the
  statistic large but never produces the p = 0 artefact of a goodness-of-fit test against a
  reference proportion of 0.

Status rule (documented choice): **PSI with a size-aware threshold**, the same statistic the
fleet-wide recording rule computes, so the in-process gauge and the Prometheus alert agree.
Under no drift, for multinomial counts, ``n_eff · PSI`` is asymptotically χ²(k-1), where
``k`` is the number of bins with reference mass and ``n_eff = n·n_ref/(n+n_ref)`` accounts for
the reference itself being a sample. So PSI's no-drift mean is about (k-1)/n_eff — 0.09 for
10 bins and n = 100, far above the textbook 0.1/0.25 cut-offs' intent. The thresholds are::

    warning = max(psi_warning, χ²_{1-1e-3}(k-1) / n_eff)
    drift   = max(psi_drift,   χ²_{1-1e-4}(k-1) / n_eff)

(χ² quantiles by Wilson-Hilferty), i.e. the classic 0.1/0.25 for large windows and a ≤ 0.1 %
per-feature false-alarm rate for small ones. Below ``min_samples`` valid values the status is
INSUFFICIENT_DATA (keep ``min_samples`` ≥ ~10 x bins so that empty bins stay rare).
KS and chi² p-values are reported but do not set the status: on large windows they flag
shifts too small to matter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from otel_ml._internal.drift import _stats
from otel_ml._internal.drift.profile import FeatureKind, FeatureProfile
from otel_ml._internal.drift.result import DriftStatus

FloatArray = npt.NDArray[np.float64]

PSI_EPSILON = 1e-4
WASSERSTEIN_STD_FLOOR = 1e-3
WARNING_ALPHA = 1e-3
DRIFT_ALPHA = 1e-4


def psi(p: FloatArray, q: FloatArray, eps: float = PSI_EPSILON) -> float:
    pc = np.maximum(p, eps)
    qc = np.maximum(q, eps)
    return float(np.sum((pc - qc) * np.log(pc / qc)))


def jensen_shannon(p: FloatArray, q: FloatArray) -> float:
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    js = (float(np.sum(left)) + float(np.sum(right))) / np.log(2.0)
    return float(np.sqrt(max(js, 0.0) / 2.0))


def wasserstein(ref: FloatArray, cur: FloatArray) -> float:
    """W1 distance between two empirical distributions (as ``scipy.stats.wasserstein_distance``)."""
    u = np.sort(ref)
    v = np.sort(cur)
    allv = np.sort(np.concatenate([u, v]))
    deltas = np.diff(allv)
    ucdf = np.searchsorted(u, allv[:-1], side="right") / u.size
    vcdf = np.searchsorted(v, allv[:-1], side="right") / v.size
    return float(np.sum(np.abs(ucdf - vcdf) * deltas))


def chi2_homogeneity(
    ref_counts: npt.NDArray[np.int64], cur_counts: npt.NDArray[np.int64]
) -> tuple[float, float]:
    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = table.shape[1] - 1
    observed = table
    if dof == 1:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(np.sum((observed - expected) ** 2 / expected))
    return stat, _stats.chi2_sf(stat, dof)


# --- registry --------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowData:
    """What a method sees: the reference profile, current bin counts, current raw sample."""

    profile: FeatureProfile
    counts: npt.NDArray[np.int64]
    sample: FloatArray  # empty for categorical features or an empty reservoir


MethodFn = Callable[[WindowData], dict[str, float]]
_REGISTRY: dict[tuple[str, FeatureKind], MethodFn] = {}


def register(method: str, *kinds: FeatureKind) -> Callable[[MethodFn], MethodFn]:
    def deco(fn: MethodFn) -> MethodFn:
        for k in kinds:
            _REGISTRY[(method, k)] = fn
        return fn
    return deco


def get(method: str, kind: FeatureKind) -> MethodFn:
    """The implementation of ``method`` for ``kind``; KeyError naming what exists otherwise."""
    try:
        return _REGISTRY[(method, kind)]
    except KeyError:
        for_kind = sorted(m for m, k in _REGISTRY if k is kind)
        known = sorted({m for m, _ in _REGISTRY})
        if method in known:
            raise KeyError(f"drift method {method!r} does not apply to {kind.value} features; "
                           f"use one of {for_kind}") from None
        raise KeyError(f"unknown drift method {method!r}; known methods: {known}") from None


def available(kind: FeatureKind) -> list[str]:
    return sorted(m for m, k in _REGISTRY if k is kind)


DEFAULT_METHODS: dict[FeatureKind, tuple[str, ...]] = {
    FeatureKind.NUMERIC: ("psi", "jensen_shannon", "wasserstein", "ks"),
    FeatureKind.CATEGORICAL: ("psi", "jensen_shannon", "chi2"),
    FeatureKind.BOOLEAN: ("psi", "jensen_shannon", "chi2"),
}


def _props(w: WindowData) -> tuple[FloatArray, FloatArray]:
    total = int(w.counts.sum())
    p = w.counts / total if total else np.zeros(w.counts.size)
    return p.astype(np.float64), np.asarray(w.profile.proportions, dtype=np.float64)


_ALL = (FeatureKind.NUMERIC, FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN)
_CAT = (FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN)


@register("psi", *_ALL)
def _psi(w: WindowData) -> dict[str, float]:
    return {"psi": psi(*_props(w))}


@register("jensen_shannon", *_ALL)
def _js(w: WindowData) -> dict[str, float]:
    return {"jensen_shannon": jensen_shannon(*_props(w))}


@register("wasserstein", FeatureKind.NUMERIC)
def _wasserstein(w: WindowData) -> dict[str, float]:
    if w.sample.size == 0:
        return {}
    scale = max(w.profile.std, WASSERSTEIN_STD_FLOOR)
    return {"wasserstein": wasserstein(w.profile.sample_array, w.sample) / scale}


@register("ks", FeatureKind.NUMERIC)
def _ks(w: WindowData) -> dict[str, float]:
    if w.sample.size == 0:
        return {}
    d, p = _stats.ks_2samp(w.profile.sample_array, w.sample)
    return {"ks_statistic": d, "ks_p_value": p}


@register("chi2", *_CAT)
def _chi2(w: WindowData) -> dict[str, float]:
    stat, p = chi2_homogeneity(w.profile.reference_counts, w.counts)
    return {"chi2_statistic": stat, "chi2_p_value": p}


def validate(methods: Sequence[str]) -> None:
    known = {m for m, _ in _REGISTRY}
    for m in methods:
        if m not in known:
            raise ValueError(f"unknown drift method {m!r}; known methods: {sorted(known)}")


# --- status ------------------------------------------------------------------------------

def psi_thresholds(
    profile: FeatureProfile, n: int, psi_warning: float, psi_drift: float
) -> tuple[float, float]:
    k = sum(1 for x in profile.proportions if x > 0)
    dof = max(k - 1, 1)
    n_eff = n * profile.count / (n + profile.count) if n else 0.0
    if n_eff <= 0:
        return float("inf"), float("inf")
    warn = max(psi_warning, _stats.chi2_quantile(1 - WARNING_ALPHA, dof) / n_eff)
    drift = max(psi_drift, _stats.chi2_quantile(1 - DRIFT_ALPHA, dof) / n_eff)
    return warn, drift


def status_for(psi_value: float, warn: float, drift: float) -> DriftStatus:
    if psi_value >= drift:
        return DriftStatus.DRIFT
    if psi_value >= warn:
        return DriftStatus.WARNING
    return DriftStatus.OK
