"""Drift methods, their registry keyed by (method, kind), and the size-aware status thresholds.

Methods (``p`` = current bin proportions, ``q`` = reference proportions):

* ``psi``: Σ (p-q)·ln(p/q) with both p and q clipped below at :data:`PSI_EPSILON` = 1e-4
  (empty bins, and the reference's always-empty under/overflow bins, would otherwise be
  infinite); not renormalised. The PromQL recording rule uses the same epsilon.
* ``jensen_shannon``: the Jensen-Shannon **distance** in base 2 (0..1), exactly
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
* ``wasserstein``: W1 between the reference sample and the current sample divided by
  ``max(reference std, WASSERSTEIN_STD_FLOOR)``; the floor 1e-3 keeps near-constant features
  finite and equals Evidently's, so the numbers are comparable.
* ``ks``: two-sample KS statistic of the current sample against the reference sample, and its
  p-value from the asymptotic distribution, ``scipy.stats.kstwo.sf(d, round(n·m/(n+m)))`` -
  what ``scipy.stats.ks_2samp(method="asymp")`` returns. Measured against a 2000-value
  reference (loaded 2-core machine): this takes 0.3-1.1 ms a feature, ``ks_2samp``'s default
  (exact below 10 000 values) 0.6-1.0 ms for equal sizes and 1.8-2.6 ms for unequal ones; the
  two p-values differ by < 1e-3 at window-sample sizes. The asymptotic form is kept because the
  status threshold can then be written as a KS distance (``kstwo.isf``) that the statistic
  crosses exactly when this p-value crosses alpha (below).
* ``chi2``: chi² homogeneity test of the 2xK table [reference counts; current counts] over the
  categories plus ``other``, as ``scipy.stats.chi2_contingency`` (Yates' correction when there
  is one degree of freedom). Categories never seen in training are pooled into ``other``,
  which is a column of the table even when its reference count is 0; columns empty in both rows
  are dropped. Since the table's expected counts come from both rows, a new category makes the
  statistic large but never produces the p = 0 artefact of a goodness-of-fit test against a
  reference proportion of 0.

Status thresholds (:func:`significance_floor`): every status method compares its score with
``max(policy threshold, significance floor)``: the floor is the score's (1 - alpha) quantile when
nothing drifted at this window size, so a small window does not alarm on sampling noise and a
large one falls back on the effect-size threshold. ``n_eff = n·n_ref/(n+n_ref)`` counts the
reference's own sampling noise (``n_ref`` = reference count for the binned methods, the
reference sample for the sample-based ones).

* ``psi``: ``n_eff · PSI`` is asymptotically χ²(k-1) under no drift (k = bins with reference
  mass), so the floor is ``χ²_{1-alpha}(k-1) / n_eff``. PSI's no-drift mean is about (k-1)/n_eff -
  0.09 for 10 bins and n = 100, far above the textbook 0.1/0.25 cut-offs' intent.
* ``jensen_shannon``: for small shifts the JS divergence in nats is ≈ Σ(p-q)²/(8q) = χ²/(8·n_eff),
  so the distance (base 2) floor is ``sqrt(χ²_{1-alpha}(k-1) / (8·n_eff·ln 2))``. Simulated
  (multinomial windows, 200 000 per case; tests/drift/test_status_methods.py checks it): with
  10 bins the no-drift exceedance rate is within 1.25 x alpha for n >= 2000 and within 2 x at
  n = 500 (alpha = 1e-2 .. 1e-4); at n = 100 it reaches 4 x (10 bins) and 15 x (21 bins,
  expected counts ~4) at alpha = 1e-4. PSI is worse there (8 x and 500 x: its empty bins,
  clipped at 1e-4, add large terms), hence ``min_samples`` >= ~10 x bins for either.
* ``ks``: ``kstwo.isf(alpha, round(n_eff))``, so the statistic crosses it exactly when the
  p-value falls below alpha: with the default threshold 0 the KS status is a significance test
  at ``warning_alpha`` / ``drift_alpha``, and a threshold adds a minimum KS distance. With
  2000-value samples on both sides the floor is D = 0.061 / 0.070.
* ``wasserstein``: sqrt(n_eff)·W1 tends to X = ∫|B(F(x))|dx (B a Brownian bridge), whose mean is
  sqrt(2/pi)·A with A = ∫ sqrt(F(1-F)) dx; X >= |Y| with Y = ∫B(F(x))dx ~ N(0, sd²) (sd the
  feature's standard deviation), and this location part dominates the tail. The floor is
  ``(sd·z_{1-alpha/2} + sqrt(2/pi)·(A - sd)) / sqrt(n_eff)`` in normed units, A and sd taken
  from the reference sample: the quantile of |Y| plus the mean of the non-negative rest (0.119 /
  0.138 for a normal feature with 2000-value samples). Simulated (3000 windows per case of 100
  and 2000 values against 2000-value references, alpha = 1e-2 and 1e-3): light-tailed features
  (normal, exponential, uniform, bimodal, Poisson) stay at or below 0.7 x alpha (exact for
  two-point features), log-normal reaches 2.3 x, Pareto(3) 8 x - there the sample standard
  deviation that norms W1 is itself noisy, and the distribution-free KS is the better status
  method.

Below ``min_samples`` valid values the status is INSUFFICIENT_DATA. KS and chi² p-values are
reported whether or not they decide the status.

scipy is imported on first use, not with this module: measured with ``python -X importtime -c
"import otel_ml._internal.drift"`` on a loaded 2-core machine (median of 5), the package imports
in 0.42 s this way and in 1.40 s with ``scipy.stats`` imported at the top of this module; a
service pays the difference only when it first evaluates drift.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from otel_ml._internal.drift.features import FeatureKind, FeatureProfile
from otel_ml._internal.drift.result import DriftStatus

FloatArray = npt.NDArray[np.float64]

PSI_EPSILON = 1e-4
WASSERSTEIN_STD_FLOOR = 1e-3


def scipy_stats() -> Any:
    """``scipy.stats``, imported on first use (see the module docstring for why)."""
    import scipy.stats

    return scipy.stats


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


def ks_statistic(ref_sorted: FloatArray, cur_sorted: FloatArray) -> float:
    """Two-sided two-sample KS statistic sup |F_ref - F_cur| (both inputs sorted)."""
    allv = np.concatenate([ref_sorted, cur_sorted])
    cdf_ref = np.searchsorted(ref_sorted, allv, side="right") / ref_sorted.size
    cdf_cur = np.searchsorted(cur_sorted, allv, side="right") / cur_sorted.size
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


def ks_2samp(ref_sorted: FloatArray, cur: FloatArray) -> tuple[float, float]:
    """(statistic, asymptotic two-sided p-value), as ``scipy.stats.ks_2samp(method="asymp")``."""
    d = ks_statistic(ref_sorted, np.sort(cur))
    en = ref_sorted.size * cur.size / (ref_sorted.size + cur.size)
    return d, float(np.clip(scipy_stats().kstwo.sf(d, np.round(en)), 0.0, 1.0))


def chi2_homogeneity(
    ref_counts: npt.NDArray[np.int64], cur_counts: npt.NDArray[np.int64]
) -> tuple[float, float]:
    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    res = scipy_stats().chi2_contingency(table)
    return float(res.statistic), float(res.pvalue)


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
        if method in known():
            raise KeyError(f"drift method {method!r} does not apply to {kind.value} features; "
                           f"use one of {for_kind}") from None
        raise KeyError(f"unknown drift method {method!r}; known methods: {known()}") from None


def known() -> list[str]:
    return sorted({m for m, _ in _REGISTRY})


def available(kind: FeatureKind) -> list[str]:
    return sorted(m for m, k in _REGISTRY if k is kind)


def validate(methods: Sequence[str]) -> None:
    for m in methods:
        if m not in known():
            raise ValueError(f"unknown drift method {m!r}; known methods: {known()}")


DEFAULT_METHODS: dict[FeatureKind, tuple[str, ...]] = {
    FeatureKind.NUMERIC: ("psi", "jensen_shannon", "wasserstein", "ks"),
    FeatureKind.CATEGORICAL: ("psi", "jensen_shannon", "chi2"),
    FeatureKind.BOOLEAN: ("psi", "jensen_shannon", "chi2"),
}


def _props(w: WindowData) -> tuple[FloatArray, FloatArray]:
    total = int(w.counts.sum())
    p = w.counts / total if total else np.zeros(w.counts.size)
    return p.astype(np.float64), np.asarray(w.profile.proportions, dtype=np.float64)


def _scale(f: FeatureProfile) -> float:
    return max(f.std, WASSERSTEIN_STD_FLOOR)


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
    return {"wasserstein": wasserstein(w.profile.sample_array, w.sample) / _scale(w.profile)}


@register("ks", FeatureKind.NUMERIC)
def _ks(w: WindowData) -> dict[str, float]:
    if w.sample.size == 0:
        return {}
    d, p = ks_2samp(w.profile.sample_array, w.sample)
    return {"ks_statistic": d, "ks_p_value": p}


@register("chi2", *_CAT)
def _chi2(w: WindowData) -> dict[str, float]:
    stat, p = chi2_homogeneity(w.profile.reference_counts, w.counts)
    return {"chi2_statistic": stat, "chi2_p_value": p}


# --- status ------------------------------------------------------------------------------

STATUS_METHODS: tuple[str, ...] = ("psi", "jensen_shannon", "wasserstein", "ks")
"""Methods that can decide the status (chi² cannot: its p-value has no effect size)."""

SAMPLE_METHODS: frozenset[str] = frozenset({"wasserstein", "ks"})
"""Methods computed on the raw-value samples rather than on the bins."""


def _n_eff(n: int, n_ref: int) -> float:
    return n * n_ref / (n + n_ref) if n > 0 and n_ref > 0 else 0.0


def significance_floor(method: str, f: FeatureProfile, n: int, sample_n: int, alpha: float) -> float:
    """The no-drift (1 - ``alpha``) quantile of ``method``'s score (see the module docstring).

    ``n``: valid current values (binned methods); ``sample_n``: the current sample's size
    (sample methods). Infinite when there is nothing to compare.
    """
    if method in SAMPLE_METHODS:
        n_eff = _n_eff(sample_n, f.sample_array.size)
        if n_eff <= 0:
            return math.inf
        if method == "ks":
            return _ks_critical(alpha, max(1, round(n_eff)))
        return wasserstein_null_quantile(f.sample_array, _scale(f), alpha) / math.sqrt(n_eff)
    n_eff = _n_eff(n, f.count)
    if n_eff <= 0:
        return math.inf
    dof = max(sum(1 for x in f.proportions if x > 0) - 1, 1)
    chi2_q = _chi2_quantile(alpha, dof)
    if method == "psi":
        return chi2_q / n_eff
    if method == "jensen_shannon":
        return math.sqrt(chi2_q / (8.0 * n_eff * math.log(2.0)))
    raise ValueError(f"{method!r} cannot decide the drift status; use one of {list(STATUS_METHODS)}")


# The quantiles depend on (alpha, size) only, and windows of steady traffic keep their size, so
# each is computed once: kstwo.isf is a root search costing 1-30 ms a call.
@functools.lru_cache(maxsize=4096)
def _ks_critical(alpha: float, n: int) -> float:
    return float(scipy_stats().kstwo.isf(alpha, n))


@functools.lru_cache(maxsize=1024)
def _chi2_quantile(alpha: float, dof: int) -> float:
    return float(scipy_stats().chi2.ppf(1.0 - alpha, dof))


@functools.lru_cache(maxsize=64)
def _normal_quantile(alpha: float) -> float:
    return float(scipy_stats().norm.isf(alpha))


def wasserstein_null_quantile(ref_sorted: FloatArray, scale: float, alpha: float) -> float:
    """(1 - ``alpha``) quantile of sqrt(n_eff)·W1/scale under no drift, from the reference sample."""
    n = ref_sorted.size
    if n < 2:
        return 0.0
    t = np.arange(1, n) / n
    a = float(np.sum(np.sqrt(t * (1.0 - t)) * np.diff(ref_sorted))) / scale
    sigma = float(np.std(ref_sorted)) / scale
    half_normal_mean = math.sqrt(2.0 / math.pi)
    z = _normal_quantile(alpha / 2.0)
    return sigma * z + half_normal_mean * max(a - sigma, 0.0)


def status_for(score: float, warning: float, drift: float) -> DriftStatus:
    if score >= drift:
        return DriftStatus.DRIFT
    if score >= warning:
        return DriftStatus.WARNING
    return DriftStatus.OK
