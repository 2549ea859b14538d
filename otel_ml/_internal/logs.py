"""Python ``logging`` bridged to OpenTelemetry logs, with the model of the current inference.

The bridge is OpenTelemetry's maintained handler,
``opentelemetry.instrumentation.logging.handler.LoggingHandler`` (the SDK's own ``LoggingHandler``
is deprecated since SDK 1.40). Each record carries the active trace and span ids, so Loki shows
the log lines of one trace. :class:`ModelAttributes`, a filter on that handler, adds the model's
``ml.model.*`` attributes inside ``monitor.inference()`` / ``monitor.generation()`` - read from a
context variable the monitor sets for the duration of the call - and keeps the OpenTelemetry
SDK's own log lines out of the OTLP pipeline, where an exporter failure would otherwise log
about itself in a loop.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING

from opentelemetry._logs import LoggerProvider

if TYPE_CHECKING:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

# The model attributes of the inference running in this context (None outside one).
CURRENT_MODEL: ContextVar[dict[str, str] | None] = ContextVar("otel_ml_current_model", default=None)


class _Readers:
    """Whether any :class:`ModelAttributes` filter exists: until one does, nobody reads CURRENT_MODEL
    and inferences skip setting it (0.7 us of a ~6 us unsampled inference)."""

    model_filter = False


READERS = _Readers()


class ModelAttributes(logging.Filter):
    """Adds the current model's attributes to each record; drops the OTel SDK's own records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("opentelemetry"):
            return False
        model = CURRENT_MODEL.get()
        if model:
            fields = record.__dict__
            for key, value in model.items():
                fields.setdefault(key, value)
        return True


def make_handler(logger_provider: LoggerProvider | None = None, level: int = logging.NOTSET) -> LoggingHandler:
    """The maintained OTel logging handler, with code attributes and :class:`ModelAttributes`."""
    # Imported here, not at the top: the instrumentation package brings wrapt, packaging and its
    # instrumentor machinery (~150 ms), which `import otel_ml` need not pay before configure().
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    handler = LoggingHandler(level=level, logger_provider=logger_provider, log_code_attributes=True)
    add_model_attributes(handler)
    return handler


def is_otel_handler(handler: logging.Handler) -> bool:
    """True for OpenTelemetry's maintained logging handler (ours, or one opentelemetry-instrument added)."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    return isinstance(handler, LoggingHandler)


def add_model_attributes(handler: logging.Handler) -> None:
    """Give an existing handler (e.g. one ``opentelemetry-instrument`` installed) the model filter."""
    if not any(isinstance(f, ModelAttributes) for f in handler.filters):
        handler.addFilter(ModelAttributes())
    READERS.model_filter = True
