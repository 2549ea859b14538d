"""Helpers for testing code instrumented with otel_ml - in your tests and ours.

Usage::

    from otel_ml.testing import capture_telemetry

    def test_predict_records_latency():
        with capture_telemetry() as cap:
            monitor = cap.monitor("fraud", version="3")
            with monitor.inference() as inf:
                inf.record(predictions="fraud", confidence=0.97)
            point = cap.histogram("ml.inference.duration", **{"ml.model.name": "fraud"})
            assert point.count == 1
            assert cap.counter("ml.predictions", **{"ml.prediction.class": "fraud"}) == 1
            assert cap.dropped() == 0            # nothing otel_ml had to drop

Everything stays in memory: spans in an ``InMemorySpanExporter`` (exported synchronously),
metrics through an ``InMemoryMetricReader``, logs in an ``InMemoryLogRecordExporter`` fed by an
OpenTelemetry logging handler on the root logger for the duration of the block. The providers
are private to the capture (never installed globally), and so is the capture's self-telemetry
(``cap.dropped(...)``, exported as ``otel_ml.dropped``): tests do not leak into each other.

The capture runs otel_ml in strict mode (``strict=True``, the default here): an exception one of
otel_ml's guards catches - a bug in otel_ml, which production counts as ``internal_error`` and
swallows - re-raises into the test instead. Invalid input otel_ml recognises (NaN confidences,
unknown labels, wrong shapes) is still only counted: assert on ``cap.dropped(reason)``. Pass
``strict=False`` to test what production does with a failing guard.

Lookups that find nothing raise :class:`TelemetryNotFound` (an ``AssertionError``, raised
explicitly so it also fails under ``python -O``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from otel_ml._internal import selftelemetry
from otel_ml._internal.logs import make_handler
from otel_ml._internal.monitor import ModelMonitor

__all__ = ["MetricPoint", "TelemetryCapture", "TelemetryNotFound", "capture_telemetry"]


class TelemetryNotFound(AssertionError):
    """A lookup found no (or more than one) matching data point."""


class MetricPoint:
    """One collected data point with the name, unit and scope of its metric."""

    __slots__ = ("name", "point", "scope", "unit")

    def __init__(self, name: str, unit: str, scope: str, point: Any) -> None:
        self.name, self.unit, self.scope, self.point = name, unit, scope, point

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self.point.attributes or {})

    def __repr__(self) -> str:
        return f"MetricPoint({self.name!r}, {self.attributes!r}, {self.point!r})"


class TelemetryCapture:
    """In-memory providers and readers, plus lookups on what they recorded."""

    def __init__(self, sampler: Sampler | None = None, resource: Resource | None = None,
                 strict: bool = True) -> None:
        resource = resource or Resource.create({"service.name": "otel-ml-test"})
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=resource, sampler=sampler)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[self.metric_reader])
        self.log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))
        self.log_handler = make_handler(self.logger_provider)
        self.selftelemetry = selftelemetry.SelfTelemetry(strict=strict)
        selftelemetry.bind(self.meter_provider, self.selftelemetry)
        self._monitors: list[ModelMonitor] = []

    # -- making things under test
    def monitor(self, name: str, **kwargs: Any) -> ModelMonitor:
        """A :class:`ModelMonitor` wired to this capture's providers (closed with the capture)."""
        kwargs.setdefault("tracer_provider", self.tracer_provider)
        kwargs.setdefault("meter_provider", self.meter_provider)
        monitor = ModelMonitor(name, **kwargs)
        self._monitors.append(monitor)
        return monitor

    def dropped(self, reason: str | None = None, signal: str | None = None) -> int:
        """Items otel_ml dropped in this capture for ``reason`` / ``signal`` (any when None)."""
        return self.selftelemetry.count(reason, signal)

    # -- reading what was recorded
    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.span_exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def metrics(self) -> list[MetricPoint]:
        """Collect now and return every data point of every metric."""
        data = self.metric_reader.get_metrics_data()
        out: list[MetricPoint] = []
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        out.append(MetricPoint(metric.name, metric.unit or "", sm.scope.name, point))
        return out

    def points(self, name: str, **attributes: Any) -> list[MetricPoint]:
        """Data points of metric ``name`` whose attributes include ``attributes``."""
        return [p for p in self.metrics() if p.name == name and _matches(p.attributes, attributes)]

    def histogram(self, name: str, **attributes: Any) -> HistogramDataPoint:
        """The single histogram point of ``name`` matching ``attributes`` (:class:`TelemetryNotFound` otherwise)."""
        points = self.points(name, **attributes)
        if len(points) != 1:
            raise TelemetryNotFound(f"expected one {name} point matching {attributes}, got {points}")
        point = points[0].point
        if not isinstance(point, HistogramDataPoint):
            raise TelemetryNotFound(f"{name} is not a histogram: {point!r}")
        return point

    def counter(self, name: str, **attributes: Any) -> float:
        """Sum of the counter points of ``name`` matching ``attributes`` (0 when there are none)."""
        total: float = 0
        for p in self.points(name, **attributes):
            if not isinstance(p.point, NumberDataPoint):
                raise TelemetryNotFound(f"{name} is not a sum or gauge: {p.point!r}")
            total += p.point.value
        return total

    def logs(self) -> list[Any]:
        return list(self.log_exporter.get_finished_logs())

    # -- lifecycle
    def start(self) -> None:
        logging.getLogger().addHandler(self.log_handler)

    def close(self) -> None:
        logging.getLogger().removeHandler(self.log_handler)
        for monitor in self._monitors:
            monitor.close()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def _matches(actual: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(actual.get(k) == v for k, v in wanted.items())


@contextmanager
def capture_telemetry(sampler: Sampler | None = None, strict: bool = True) -> Iterator[TelemetryCapture]:
    """In-memory telemetry for the duration of the block (see the module docstring).

    ``strict``: guards re-raise what they catch instead of counting ``internal_error``.
    """
    cap = TelemetryCapture(sampler=sampler, strict=strict)
    cap.start()
    try:
        yield cap
    finally:
        cap.close()
