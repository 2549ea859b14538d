"""Zero-code instrumentation: naming the models, joining their delayed labels.

With ``opentelemetry-instrument`` and otel_ml's instrumentors (:mod:`otel_ml.instrumentation`),
every model call is an inference of a :class:`otel_ml.ModelMonitor` created at the model's first
call. Who the model is - ``ml.model.name``, version, variant, class labels, a reference profile
for drift - comes, per field, from (1) a rule of the mapping file ``OTEL_ML_MODEL_MAP``, (2)
``OTEL_ML_MODEL_NAME`` / ``OTEL_ML_MODEL_VERSION`` / ``OTEL_ML_MODEL_VARIANT`` /
``OTEL_ML_CLASS_NAMES`` (``0=ok,1=fraud``) / ``OTEL_ML_REFERENCE_PROFILE``, (3) the object: the
file it was loaded from (name = its stem, version = its content hash) or its class (version = a
hash of its pickle). Never a library version. The mapping file (YAML or JSON)::

    models:
      - match: {path: "*/fraud-*.joblib"}      # and/or class: LogisticRegression, framework: sklearn
        name: fraud
        version: "3"
        variant: canary
        classes: {"0": ok, "1": fraud}
        positive_class: fraud
        reference: profiles/fraud.json

Delayed labels need the prediction ids at the call; one line in the handler::

    with otel_ml.auto.prediction_ids(request_ids):      # one per row
        proba = model.predict_proba(rows)
    ...
    otel_ml.auto.monitor_of(model).record_outcomes(ids, labels)   # when the labels arrive
"""

from __future__ import annotations

from otel_ml._internal.auto.calls import prediction_ids
from otel_ml._internal.auto.registry import MODELS
from otel_ml._internal.monitor import ModelMonitor

__all__ = ["monitor_of", "monitors", "prediction_ids"]


def monitor_of(model: object) -> ModelMonitor | None:
    """The monitor an instrumented model's calls record into (None before its first call)."""
    entry = MODELS.lookup(model)
    return entry[0] if entry is not None else None


def monitors() -> list[ModelMonitor]:
    """Every monitor zero-code instrumentation created in this process."""
    return MODELS.monitors()
