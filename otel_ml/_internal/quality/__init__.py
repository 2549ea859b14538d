"""Model quality from delayed ground truth joined to recent predictions."""

from otel_ml._internal.quality.report import ClassScores, QualityReport
from otel_ml._internal.quality.tracker import OutcomeTracker

__all__ = ["ClassScores", "OutcomeTracker", "QualityReport"]
