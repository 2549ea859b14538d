"""Typed drift and data-quality results."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from otel_ml._internal.drift.features import FeatureKind


class DriftStatus(enum.Enum):
    """Drift verdict of one feature; ``value`` is what the ``ml.drift.status`` gauge reports."""

    OK = 0
    WARNING = 1
    DRIFT = 2
    INSUFFICIENT_DATA = -1


STATUS_SCORE_KEYS: Mapping[str, str] = {
    "psi": "psi",
    "jensen_shannon": "jensen_shannon",
    "wasserstein": "wasserstein",
    "ks": "ks_statistic",
}
"""The ``scores`` key each status method compares with its thresholds."""


@dataclass(frozen=True)
class DriftResult:
    """Drift of one feature (or of the predictions, ``feature="__prediction__"``) over one window.

    ``scores`` holds the methods that ran: by default ``psi``, ``jensen_shannon``,
    ``wasserstein``, ``ks_statistic``, ``ks_p_value`` (numeric); ``psi``, ``jensen_shannon``,
    ``chi2_statistic``, ``chi2_p_value`` (categorical, boolean). ``n`` is the number of valid
    current values in the window; ``sample_n`` the size of the raw-value sample used for KS and
    Wasserstein.

    ``status_method`` is the method whose score decided ``status`` (the policy's, or ``psi``
    where the policy's does not apply, see :mod:`otel_ml._internal.drift.policy`);
    ``warning_threshold`` / ``drift_threshold`` are the size-aware thresholds that score was
    compared with (``status_score >= threshold``; NaN when the status is INSUFFICIENT_DATA).
    """

    feature: str
    kind: FeatureKind
    n: int
    scores: Mapping[str, float]
    status: DriftStatus
    status_method: str = "psi"
    warning_threshold: float = math.nan
    drift_threshold: float = math.nan
    sample_n: int = 0

    @property
    def status_score(self) -> float:
        """The score that decided ``status`` (NaN when it was not computed)."""
        return self.scores.get(STATUS_SCORE_KEYS.get(self.status_method, self.status_method), math.nan)


ISSUES: tuple[str, ...] = ("missing", "nan", "inf", "unseen_category", "out_of_range", "type_mismatch")
"""Values of ``ml.data_quality.issue``, in the order the trackers store them."""


@dataclass(frozen=True)
class FeatureQuality:
    """Data-quality counts of one feature over a window (or since start, when cumulative).

    ``rows`` counts rows offered; ``valid`` the values that were binned (out-of-range and unseen
    categories are valid and binned; missing, NaN, inf and type mismatches are not).
    """

    feature: str
    rows: int
    valid: int
    issues: Mapping[str, int] = field(default_factory=dict)

    def rate(self, issue: str) -> float:
        """Share of rows with ``issue`` (0.0 for an empty window)."""
        if issue not in ISSUES:
            raise ValueError(f"unknown issue {issue!r}; one of {ISSUES}")
        return self.issues.get(issue, 0) / self.rows if self.rows else 0.0

    @property
    def rates(self) -> dict[str, float]:
        return {i: self.rate(i) for i in ISSUES}
