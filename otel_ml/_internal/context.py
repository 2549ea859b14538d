"""The model context: what every piece of one monitored model shares.

Contrib instrumentations pass a small context object (providers, attributes, instruments) to the
pieces that need it instead of letting them reach into each other; :class:`ModelContext` is
that object for otel_ml. Inferences, generations, prediction logs and the wiring that exports
drift and quality all read it; none of them reads the monitor.
"""

from __future__ import annotations

import random
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace

from otel_ml._internal import names, selftelemetry
from otel_ml._internal.labels import BoundedLabels
from otel_ml._internal.producer import MetricSource
from otel_ml._internal.spans import SpanFactory

INFERENCE_TRACER_SCOPE = "otel_ml.inference"
GENAI_TRACER_SCOPE = "otel_ml.genai"
_ATTACH_RETRY_S = 1.0


class ModelContext:
    """Identity, attributes, providers, metric source, self-telemetry and clock of one model."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        task: str,
        variant: str | None,
        classes: BoundedLabels,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: otel_metrics.MeterProvider | None,
        registry: selftelemetry.SelfTelemetry,
        clock: Callable[[], float],
        capture_content: bool,
        prediction_log_sample_rate: float,
        redact: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.task = task
        self.variant = variant
        base: dict[str, str] = {names.MODEL_NAME: name, names.MODEL_VERSION: version}
        if variant:
            base[names.MODEL_VARIANT] = variant
        self.attributes: Mapping[str, str] = base
        # What spans and log records carry: the metric attributes plus the task.
        self.span_attributes: dict[str, str] = {**base, names.MODEL_TASK: task}
        self.classes = classes
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.selftelemetry = registry
        self.clock = clock
        self.capture_content = capture_content
        self.redact = redact
        self.prediction_log_sample_rate = prediction_log_sample_rate
        self.random = random.Random()
        self.source = MetricSource(registry=registry)
        self.inference_spans = SpanFactory(INFERENCE_TRACER_SCOPE, self.span_attributes, tracer_provider)
        self.inference_span_name = f"inference {name}"
        self.genai_spans = SpanFactory(GENAI_TRACER_SCOPE, self.span_attributes, tracer_provider)
        # Set by the wiring: whether the source reaches a meter provider yet, and how to retry.
        self.attached = False
        self.closed = False
        self._next_attach_try = 0.0
        self._attach: weakref.WeakMethod[Callable[[], bool]] | None = None

    def set_attach(self, attach: Callable[[], bool]) -> None:
        """Use the bound method ``attach`` (held weakly: its owner links back to this context)."""
        self._attach = weakref.WeakMethod(attach)
        self.retry_attach(force=True)

    def retry_attach(self, force: bool = False) -> None:
        """Attach to the meter provider if one has appeared (at most once a second; never raises)."""
        attach = self._attach() if self._attach is not None else None
        if self.attached or self.closed or attach is None:
            return
        now = time.monotonic()
        if not force and now < self._next_attach_try:
            return
        self._next_attach_try = now + _ATTACH_RETRY_S
        try:
            self.attached = attach()
        except Exception as exc:
            self.selftelemetry.guard(exc, "metrics")
