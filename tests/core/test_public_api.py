"""The public surface is small and pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import otel_ml
import otel_ml.testing


def test_public_names_are_pinned() -> None:
    """otel_ml exports exactly these names."""
    assert sorted(otel_ml.__all__) == sorted([
        "DriftPolicy", "DriftResult", "DriftStatus", "DriftTracker", "Generation", "Inference", "ModelMonitor",
        "OutcomeTracker", "ProfileError", "QualityReport", "ReferenceProfile", "Telemetry", "__version__",
        "configure",
    ])


def test_every_public_name_resolves() -> None:
    """Each name in __all__ is importable, including the lazily imported drift and quality types."""
    for name in otel_ml.__all__:
        assert getattr(otel_ml, name) is not None


def test_testing_module_names() -> None:
    """otel_ml.testing exports its helpers for users' tests."""
    assert sorted(otel_ml.testing.__all__) == ["MetricPoint", "TelemetryCapture", "TelemetryNotFound",
                                               "capture_telemetry"]
