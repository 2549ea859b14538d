"""The sampled, structured prediction log (``monitor.log_prediction``).

One record per sampled prediction on the ``otel_ml.predictions`` logger, event name
``ml.prediction``, with the model attributes, class, confidence and id. Raw features and outputs
stay in the process unless the model was created with ``capture_content=True`` (or
``OTEL_ML_CAPTURE_CONTENT=true``); otherwise only their sizes are logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from otel_ml._internal import names
from otel_ml._internal.context import ModelContext
from otel_ml._internal.labels import label_of

_logger = logging.getLogger("otel_ml.predictions")
_MAX_CONTENT = 4096
CAPTURED = "otel_ml.content.captured"
"""Set on records that carry opted-in content; collector/config.yaml's content redaction skips them."""


def log_prediction(ctx: ModelContext, *, prediction: Any, confidence: float | None, prediction_id: Any,
                   features: Any, output: Any, level: int, attributes: dict[str, Any]) -> None:
    """Emit one record (never raises; failures are counted)."""
    try:
        rate = ctx.prediction_log_sample_rate
        if rate < 1.0 and ctx.random.random() >= rate:
            return
        extra: dict[str, Any] = dict(ctx.attributes)
        if prediction is not None:
            label = label_of(prediction)
            if label is not None:
                extra[names.PREDICTION_CLASS] = label
        if isinstance(confidence, float | int) and not isinstance(confidence, bool) \
                and abs(confidence) <= sys.float_info.max:  # finite (not NaN/inf, no int past float range)
            extra[names.PREDICTION_CONFIDENCE] = float(confidence)
        if prediction_id is not None:
            extra["ml.prediction.id"] = str(prediction_id)[:128]
        for key, value in attributes.items():
            if isinstance(value, (str, bool, int, float)):
                extra[key] = value
        captured = False
        if features is not None:
            if ctx.capture_content:
                captured |= _capture(ctx, extra, "features", "ml.features", features)
            else:
                extra["ml.features.count"] = size_of(features)
        if output is not None:
            if ctx.capture_content:
                captured |= _capture(ctx, extra, "output", "ml.output", output)
            else:
                extra["ml.output.size"] = size_of(output)
        if captured:
            # The user opted in: the collector's content redaction lets records marked so through.
            extra[CAPTURED] = True
        extra["otel.event.name"] = "ml.prediction"
        _logger.log(level, "prediction %s", extra.get(names.PREDICTION_CLASS, ""), extra=extra)
    except Exception as exc:
        ctx.selftelemetry.guard(exc, "logs", "prediction_log_error")


def _capture(ctx: ModelContext, extra: dict[str, Any], kind: str, key: str, value: Any) -> bool:
    """Put ``value`` (through the user's redactor, if any) under ``key``; True when something was put."""
    if ctx.redact is not None:
        try:
            value = ctx.redact(kind, value)
        except Exception as exc:  # fail closed: a broken redactor never lets raw content through
            ctx.selftelemetry.dropped("redact_error", "logs", detail=exc)
            return False
        if value is None:
            return False
    extra[key] = (value if isinstance(value, str) else repr(value))[:_MAX_CONTENT]
    return True


def size_of(value: Any) -> int:
    """Number of values in ``value`` (elements of an array, items of a sequence, else 1)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        n = 1
        for dim in shape:
            n *= int(dim)
        return n
    try:
        return len(value)
    except TypeError:
        return 1
