"""Distribution functions the drift methods need, numpy-only with scipy used when installed.

scipy is not a core dependency. When it is importable its functions are used so that p-values
match ``scipy.stats`` bit for bit; otherwise the fallbacks below are used:

* ``chi2_sf``: regularised upper incomplete gamma Q(k/2, x/2) by series / continued fraction
  (Numerical Recipes ``gammq``), relative error below 1e-10 in the range drift needs.
* ``ks_2samp``: the two-sided statistic exactly; without scipy the p-value comes from the
  asymptotic Kolmogorov distribution with Stephens' small-sample correction (within ~1e-2 of
  scipy's ``kstwo`` at window sizes >= 100).
* ``chi2_quantile``: the Wilson-Hilferty cube-root approximation, used only to place
  thresholds (relative error < 1 % for k >= 2 at the tail probabilities used).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _scipy_stats() -> Any:
    try:
        import scipy.stats as stats
    except ImportError:  # pragma: no cover - exercised in environments without scipy
        return None
    return stats


def _gammq(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a)."""
    if x <= 0.0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1.0:
        # series for P(a, x)
        ap, total, delta = a, 1.0 / a, 1.0 / a
        for _ in range(10_000):
            ap += 1.0
            delta *= x / ap
            total += delta
            if abs(delta) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - gln))
    # continued fraction for Q(a, x) (modified Lentz)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - gln) * h


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ χ²(df)."""
    if df <= 0 or not math.isfinite(x):
        return 0.0 if x == math.inf else 1.0
    stats = _scipy_stats()
    if stats is not None:
        return float(stats.chi2.sf(x, df))
    return _gammq(df / 2.0, x / 2.0)


def chi2_quantile(p: float, df: int) -> float:
    """Approximate upper quantile: x with P(χ²(df) >= x) = 1 - p (Wilson-Hilferty)."""
    z = _normal_quantile(p)
    k = float(max(df, 1))
    return k * (1.0 - 2.0 / (9.0 * k) + z * math.sqrt(2.0 / (9.0 * k))) ** 3


def _normal_quantile(p: float) -> float:
    """Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9)."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    if p <= 0.0 or p >= 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.02425:
        q = math.sqrt(-2 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    if p > 1 - 0.02425:
        return -_normal_quantile(1 - p)
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (
        ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)


def ks_statistic(ref_sorted: FloatArray, cur_sorted: FloatArray) -> float:
    """Two-sided two-sample KS statistic sup |F_ref - F_cur| (both inputs sorted)."""
    allv = np.concatenate([ref_sorted, cur_sorted])
    cdf_ref = np.searchsorted(ref_sorted, allv, side="right") / ref_sorted.size
    cdf_cur = np.searchsorted(cur_sorted, allv, side="right") / cur_sorted.size
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


def _kolmogorov_sf(lam: float) -> float:
    if lam < 0.2:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2.0 * (-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-16:
            break
    return min(1.0, max(0.0, total))


def ks_2samp(ref: FloatArray, cur: FloatArray) -> tuple[float, float]:
    """(statistic, two-sided p-value) of the two-sample KS test.

    Equals ``scipy.stats.ks_2samp(ref, cur, method="asymp")``: the statistic exactly, the
    p-value from ``scipy.stats.kstwo.sf(d, round(n1*n2/(n1+n2)))`` (10x cheaper than scipy's
    exact method, which its ``"auto"`` mode picks below 10 000 values and which differs from
    the asymptotic one by < 1e-3 in absolute p at the sizes drift windows have).
    """
    d = ks_statistic(np.sort(ref), np.sort(cur))
    m, n = float(ref.size), float(cur.size)
    en = m * n / (m + n)
    stats = _scipy_stats()
    if stats is not None:
        return d, float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))
    sq = math.sqrt(en)
    return d, _kolmogorov_sf((sq + 0.12 + 0.11 / sq) * d)
