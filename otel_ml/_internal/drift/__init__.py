"""Drift and data quality of model inputs and predictions against a reference profile.

Modules, in import order (no cycles): ``features`` (feature profiles, binning, ``ProfileLike``),
``result`` (typed results), ``methods`` (drift methods and significance floors), ``policy``
(``DriftPolicy``), ``window`` and ``tracker`` (streaming state), ``profile``
(``ReferenceProfile``, which uses a tracker for ``compare``), ``cli`` (``otel-ml profile``).
"""

from otel_ml._internal.drift.features import FeatureKind, FeatureProfile
from otel_ml._internal.drift.policy import DriftPolicy
from otel_ml._internal.drift.profile import ReferenceProfile
from otel_ml._internal.drift.result import DriftResult, DriftStatus, FeatureQuality
from otel_ml._internal.drift.tracker import DriftTracker

__all__ = [
    "DriftPolicy",
    "DriftResult",
    "DriftStatus",
    "DriftTracker",
    "FeatureKind",
    "FeatureProfile",
    "FeatureQuality",
    "ReferenceProfile",
]
