"""DriftPolicy: which methods run, which one decides the status, its thresholds, the window.

One frozen value shared by :class:`~otel_ml._internal.drift.tracker.DriftTracker` (streaming)
and :meth:`~otel_ml._internal.drift.profile.ReferenceProfile.compare` (one batch), so the two
apply the same rule. Configuration is kept apart from calculation (``methods.py``).

Status rule: ``status_method``'s score is compared with ``max(threshold, significance floor)``
(:func:`otel_ml._internal.drift.methods.significance_floor`); the floor is the score's no-drift
(1 - ``warning_alpha``) or (1 - ``drift_alpha``) quantile at the window's size. Where the status
method does not apply to a feature - ``ks`` or ``wasserstein`` on a categorical or boolean
feature, or a sample holding fewer than ``min_samples`` valid values (a mostly-missing feature)
- PSI decides for that feature, with PSI's default thresholds, and the result's
``status_method`` says so. The status method runs even when ``methods`` does not list it.

Default thresholds (``warning`` / ``drift`` left None), in each method's own units:

==================  ================  ===========================================================
method              warning / drift   why
==================  ================  ===========================================================
``psi``             0.1 / 0.25        the industry convention (Siddiqi's credit-scoring rule).
``jensen_shannon``  0.13 / 0.21       the JS distances (base 2) at which PSI is 0.1 / 0.25 for a
                                      location or scale shift of a normal feature in decile bins,
                                      so switching from PSI keeps verdicts on typical shifts.
``wasserstein``     0.05 / 0.1        normed W1 (shift in reference standard deviations);
                                      Evidently's drift cut-off is 0.1. At the default
                                      ``sample_size`` the floor (0.12 / 0.14 for a normal feature
                                      with full 2000-value samples) decides: a ~0.14 sd shift,
                                      significant at 1e-4 - more sensitive than PSI's 0.25
                                      (~0.5 sd for a normal feature).
``ks``              0 / 0             the KS p-value below ``warning_alpha`` / ``drift_alpha``
                                      decides (the floor is the KS distance where p = alpha); the
                                      sample cap bounds the sensitivity (p < 1e-4 needs D >= 0.070
                                      with 2000-value samples). A threshold adds a minimum KS D.
==================  ================  ===========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from otel_ml._internal.drift import methods as _methods
from otel_ml._internal.drift.features import FeatureKind

DEFAULT_THRESHOLDS: dict[str, tuple[float, float]] = {
    "psi": (0.1, 0.25),
    "jensen_shannon": (0.13, 0.21),
    "wasserstein": (0.05, 0.1),
    "ks": (0.0, 0.0),
}
"""(warning, drift) of each status method when the policy leaves them None."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class DriftPolicy:
    """How drift is computed and judged.

    Args:
        methods: methods to run (``psi``, ``jensen_shannon``, ``wasserstein``, ``ks``, ``chi2``);
            None runs the per-kind defaults, each feature runs those that apply to its kind.
        status_method: the method whose score decides the status: ``psi``, ``jensen_shannon``,
            ``wasserstein`` (normed) or ``ks`` (see the module docstring for what applies where).
        warning, drift: thresholds on the status method's score; None uses the method's default.
        warning_alpha, drift_alpha: false-alarm rates of the size-aware floor per feature and
            window (``warning_alpha >= drift_alpha``).
        min_samples: valid current values below which a feature is INSUFFICIENT_DATA (keep it
            >= ~10 x bins so that empty bins stay rare).
        window_s: length of the sliding window evaluated, in seconds.
        sub_windows: tumbling sub-windows the window slides by (1 = tumbling).
        sample_size: raw values per window kept for KS and Wasserstein (memory: 8 bytes x
            numeric features x ~2.3 x this, with the default 5 sub-windows).
    """

    methods: tuple[str, ...] | None = None
    status_method: str = "psi"
    warning: float | None = None
    drift: float | None = None
    warning_alpha: float = 1e-3
    drift_alpha: float = 1e-4
    min_samples: int = 100
    window_s: float = 300.0
    sub_windows: int = 5
    sample_size: int = 2000

    def __post_init__(self) -> None:
        m = self.methods
        if m is not None:
            if isinstance(m, (str, bytes)) or not isinstance(m, (tuple, list)):
                raise TypeError(f"DriftPolicy.methods must be a tuple of method names or None, "
                                f"got {type(m).__name__}")
            for name in m:
                if not isinstance(name, str):
                    raise TypeError(f"DriftPolicy.methods must hold method names (str), got {name!r}")
                if name not in _methods.known():
                    raise ValueError(f"DriftPolicy.methods: unknown drift method {name!r}; "
                                     f"known methods: {_methods.known()}")
            # a list would make the policy unhashable; the value is the same
            object.__setattr__(self, "methods", tuple(m))
        if not isinstance(self.status_method, str):
            raise TypeError(f"DriftPolicy.status_method must be a str, got {type(self.status_method).__name__}")
        if self.status_method not in _methods.STATUS_METHODS:
            raise ValueError(f"DriftPolicy.status_method must be one of {list(_methods.STATUS_METHODS)}, "
                             f"got {self.status_method!r}")
        for name in ("warning", "drift"):
            v = getattr(self, name)
            if v is None:
                continue
            if not _is_number(v):
                raise TypeError(f"DriftPolicy.{name} must be a number or None, got {type(v).__name__}")
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"DriftPolicy.{name} must be a finite number >= 0, got {v!r}")
            if self.status_method in ("jensen_shannon", "ks") and v > 1:
                raise ValueError(f"DriftPolicy.{name} must be <= 1 for {self.status_method} "
                                 f"(a distance in [0, 1]), got {v!r}")
        warning, drift = self.thresholds()
        if warning > drift:
            raise ValueError(f"DriftPolicy.warning must be <= DriftPolicy.drift for {self.status_method}, "
                             f"got {warning!r} > {drift!r}")
        for name in ("warning_alpha", "drift_alpha"):
            v = getattr(self, name)
            if not _is_number(v):
                raise TypeError(f"DriftPolicy.{name} must be a number, got {type(v).__name__}")
            if not 0 < v < 1:
                raise ValueError(f"DriftPolicy.{name} must be in (0, 1), got {v!r}")
        if self.warning_alpha < self.drift_alpha:
            raise ValueError(f"DriftPolicy.warning_alpha must be >= DriftPolicy.drift_alpha (a warning "
                             f"is the weaker signal), got {self.warning_alpha!r} < {self.drift_alpha!r}")
        for name, lo in (("min_samples", 1), ("sub_windows", 1), ("sample_size", 10)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"DriftPolicy.{name} must be an int >= {lo}, got {type(v).__name__}")
            if v < lo:
                raise ValueError(f"DriftPolicy.{name} must be an int >= {lo}, got {v!r}")
        if not _is_number(self.window_s):
            raise TypeError(f"DriftPolicy.window_s must be a number of seconds, got {type(self.window_s).__name__}")
        if not (self.window_s > 0 and math.isfinite(self.window_s)):
            raise ValueError(f"DriftPolicy.window_s must be a positive number of seconds, got {self.window_s!r}")
        if self.window_s < 1e-3:  # split into sub-windows, a denormal one would divide by zero
            raise ValueError(f"DriftPolicy.window_s must be at least 0.001 s, got {self.window_s!r}")

    def thresholds(self, method: str | None = None) -> tuple[float, float]:
        """(warning, drift) thresholds of ``method`` (default: the status method), before the floor.

        The policy's ``warning`` / ``drift`` apply to its ``status_method``; any other method (PSI
        standing in where the status method does not apply) uses its defaults.
        """
        method = self.status_method if method is None else method
        default_warning, default_drift = DEFAULT_THRESHOLDS[method]
        if method != self.status_method:
            return default_warning, default_drift
        return (float(default_warning if self.warning is None else self.warning),
                float(default_drift if self.drift is None else self.drift))

    def methods_for(self, kind: FeatureKind) -> tuple[str, ...]:
        """The methods to run for a feature of ``kind`` (the status method is added separately)."""
        chosen = self.methods if self.methods is not None else _methods.DEFAULT_METHODS[kind]
        applicable = _methods.available(kind)
        return tuple(m for m in chosen if m in applicable)
