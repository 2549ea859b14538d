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

Everything stays in memory: spans in an ``InMemorySpanExporter`` (exported synchronously),
metrics through an ``InMemoryMetricReader``, logs in an ``InMemoryLogRecordExporter`` fed by an
otel_ml logging handler on the root logger for the duration of the block. The providers are
private to the capture (never installed globally), so tests do not leak into each other.
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

from otel_ml._internal.logs import OTelLogHandler
from otel_ml._internal.monitor import ModelMonitor

__all__ = ["MetricPoint", "TelemetryCapture", "capture_telemetry"]


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

    def __init__(self, sampler: Sampler | None = None, resource: Resource | None = None) -> None:
        resource = resource or Resource.create({"service.name": "otel-ml-test"})
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=resource, sampler=sampler)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[self.metric_reader])
        self.log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))
        self.log_handler = OTelLogHandler(self.logger_provider)

    # -- making things under test
    def monitor(self, name: str, **kwargs: Any) -> ModelMonitor:
        """A :class:`ModelMonitor` wired to this capture's providers."""
        kwargs.setdefault("tracer_provider", self.tracer_provider)
        kwargs.setdefault("meter_provider", self.meter_provider)
        return ModelMonitor(name, **kwargs)

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
        """The single histogram point of ``name`` matching ``attributes`` (AssertionError otherwise)."""
        points = self.points(name, **attributes)
        assert len(points) == 1, f"expected one {name} point matching {attributes}, got {points}"
        point = points[0].point
        assert isinstance(point, HistogramDataPoint), f"{name} is not a histogram"
        return point

    def counter(self, name: str, **attributes: Any) -> float:
        """Sum of the counter points of ``name`` matching ``attributes`` (0 when there are none)."""
        total: float = 0
        for p in self.points(name, **attributes):
            assert isinstance(p.point, NumberDataPoint), f"{name} is not a sum"
            total += p.point.value
        return total

    def logs(self) -> list[Any]:
        return list(self.log_exporter.get_finished_logs())

    # -- lifecycle
    def start(self) -> None:
        logging.getLogger().addHandler(self.log_handler)

    def close(self) -> None:
        logging.getLogger().removeHandler(self.log_handler)
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def _matches(actual: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(actual.get(k) == v for k, v in wanted.items())


@contextmanager
def capture_telemetry(sampler: Sampler | None = None) -> Iterator[TelemetryCapture]:
    """In-memory telemetry for the duration of the block (see the module docstring)."""
    cap = TelemetryCapture(sampler=sampler)
    cap.start()
    try:
        yield cap
    finally:
        cap.close()
