"""Drift and data quality of model inputs and predictions against a reference profile."""

from otel_ml._internal.drift.profile import FeatureKind, FeatureProfile, ReferenceProfile
from otel_ml._internal.drift.result import DriftResult, DriftStatus, FeatureQuality
from otel_ml._internal.drift.tracker import DriftTracker

__all__ = [
    "DriftResult",
    "DriftStatus",
    "DriftTracker",
    "FeatureKind",
    "FeatureProfile",
    "FeatureQuality",
    "ReferenceProfile",
]
