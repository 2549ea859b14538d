"""Python ``logging`` bridged to OpenTelemetry logs, and the sampled prediction log.

:class:`OTelLogHandler` turns each ``logging.LogRecord`` into an OTel log record emitted through a
``LoggerProvider``. The record carries the current trace and span ids (the SDK takes them from
the active context), so Loki shows the log lines of one trace, and - inside
``monitor.inference()`` / ``monitor.generation()`` - the model's name and version, read from a
context variable the monitor sets for the duration of the call.

``ModelMonitor.log_prediction`` writes one structured record per (sampled) prediction. It never
carries raw feature values, prompts or outputs unless the monitor was created with
``capture_content=True`` (or ``OTEL_ML_CAPTURE_CONTENT=true``).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry._logs import LoggerProvider, SeverityNumber, get_logger_provider

from otel_ml._internal.version import __version__

# The model attributes of the inference running in this context (None outside one).
CURRENT_MODEL: ContextVar[dict[str, str] | None] = ContextVar("otel_ml_current_model", default=None)

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_SEVERITY = {
    logging.DEBUG: SeverityNumber.DEBUG,
    logging.INFO: SeverityNumber.INFO,
    logging.WARNING: SeverityNumber.WARN,
    logging.ERROR: SeverityNumber.ERROR,
    logging.CRITICAL: SeverityNumber.FATAL,
}
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}


def _severity(levelno: int) -> SeverityNumber:
    if levelno in _SEVERITY:
        return _SEVERITY[levelno]
    for level in sorted(_SEVERITY, reverse=True):
        if levelno >= level:
            return _SEVERITY[level]
    return SeverityNumber.TRACE


class OTelLogHandler(logging.Handler):
    """A ``logging.Handler`` that emits OTel log records with trace context and model attributes."""

    def __init__(self, logger_provider: LoggerProvider | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level=level)
        self._provider = logger_provider
        self._loggers: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        # Our own warnings about dropped telemetry must not loop back into the exporter that failed.
        if record.name.startswith("opentelemetry") or record.name == "otel_ml.internal":
            return
        try:
            provider = self._provider or get_logger_provider()
            otel_logger = self._loggers.get(record.name)
            if otel_logger is None:
                otel_logger = provider.get_logger(record.name, __version__)
                if len(self._loggers) < 1000:
                    self._loggers[record.name] = otel_logger
            attributes: dict[str, Any] = {}
            model = CURRENT_MODEL.get()
            if model:
                attributes.update(model)
            for key, value in vars(record).items():
                if key not in _RESERVED and isinstance(value, (str, bool, int, float)):
                    attributes[key] = value
            attributes["code.function.name"] = record.funcName
            attributes["code.line.number"] = record.lineno
            if record.exc_info and record.exc_info[0] is not None:
                attributes["exception.type"] = record.exc_info[0].__name__
                if record.exc_info[1] is not None:
                    attributes["exception.message"] = str(record.exc_info[1])
            body = self.format(record) if self.formatter else record.getMessage()
            otel_logger.emit(
                timestamp=int(record.created * 1e9),
                observed_timestamp=time.time_ns(),
                context=otel_context.get_current(),
                severity_number=_severity(record.levelno),
                severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
                body=body,
                attributes=attributes,
            )
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        from otel_ml._internal import selftelemetry

        selftelemetry.dropped("log_handler_error", "logs")
