"""otel_ml: OpenTelemetry-native observability for ML and AI inference services.

Quick start::

    import otel_ml

    otel_ml.configure(service_name="fraud-api")          # OTLP to localhost:4317 (OTEL_* honoured)
    monitor = otel_ml.ModelMonitor("fraud", version="3", classes=["ok", "fraud"])

    with monitor.inference(batch_size=len(rows)) as inf:
        proba = model.predict_proba(rows)
        inf.record(predictions=proba.argmax(1), confidence=proba.max(1))

Every call records ``ml.inference.duration`` (with exemplars linking to its trace),
``ml.inference.batch.size``, ``ml.prediction.confidence`` and ``ml.predictions`` by class, with
``ml.model.name`` / ``ml.model.version`` on every signal, plus one span per inference, child of
the current (e.g. HTTP) span. LLM servers use ``monitor.generation()`` / ``monitor.wrap_stream()``
for the GenAI semantic-convention metrics. Give the monitor a ``reference=ReferenceProfile`` (and
optionally a ``drift_policy=DriftPolicy(...)``) for drift and data quality, pass
``prediction_ids=`` with a batch, and call ``monitor.record_outcomes(ids, actuals)`` when labels
arrive. ``ReferenceProfile.compare(batch)`` answers the same drift question for a whole batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_ml._internal.genai import Generation
from otel_ml._internal.inference import Inference
from otel_ml._internal.monitor import ModelMonitor
from otel_ml._internal.setup import Telemetry, configure
from otel_ml._internal.version import __version__

if TYPE_CHECKING:
    from otel_ml._internal.drift import DriftPolicy, DriftResult, DriftStatus, DriftTracker, ReferenceProfile
    from otel_ml._internal.errors import ProfileError
    from otel_ml._internal.quality import OutcomeTracker, QualityReport

__all__ = [
    "DriftPolicy",
    "DriftResult",
    "DriftStatus",
    "DriftTracker",
    "Generation",
    "Inference",
    "ModelMonitor",
    "OutcomeTracker",
    "ProfileError",
    "QualityReport",
    "ReferenceProfile",
    "Telemetry",
    "__version__",
    "configure",
]

# Drift and quality pull in numpy-heavy modules: imported on first use, not at `import otel_ml`.
_LAZY = {
    "DriftPolicy": "otel_ml._internal.drift",
    "ProfileError": "otel_ml._internal.errors",
    "DriftResult": "otel_ml._internal.drift",
    "DriftStatus": "otel_ml._internal.drift",
    "DriftTracker": "otel_ml._internal.drift",
    "ReferenceProfile": "otel_ml._internal.drift",
    "OutcomeTracker": "otel_ml._internal.quality",
    "QualityReport": "otel_ml._internal.quality",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_ml' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
