from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import Gauge, NumberDataPoint, Sum

from otel_ml._internal.gpu import control
from otel_ml._internal.gpu.source import GpuSource
from otel_ml.testing import TelemetryCapture, TelemetryNotFound
from tests.gpu.fake_nvml import FakeNvml

SCOPE = "otel_ml.gpu"
GPU_METRICS = ("hw.gpu.utilization", "hw.gpu.memory.usage", "hw.gpu.memory.limit", "hw.gpu.memory.utilization",
               "hw.power", "hw.energy", "hw.temperature", "hw.errors", "hw.status", "process.gpu.memory.usage")
H100 = {"hw.name": "gpu0"}
A10 = {"hw.name": "gpu1"}


def start(cap: TelemetryCapture, nvml: FakeNvml, **kwargs: Any) -> GpuSource:
    """GPU monitoring on the capture's provider, reading NVML once per collection of the capture.

    The source's clock counts the capture's collections, so that every collection (and only a new
    one) reads NVML afresh, whatever the wall-clock time between them.
    """
    reader = cap.metric_reader
    collect = reader.get_metrics_data
    collections = [0]

    def counted() -> Any:
        collections[0] += 1
        return collect()

    reader.get_metrics_data = counted  # type: ignore[method-assign]
    kwargs.setdefault("clock", lambda: float(collections[0]))
    kwargs.setdefault("max_age", 0.5)
    source = control.start(cap.meter_provider, nvml=nvml, **kwargs)
    assert source is not None
    return source


def kinds(cap: TelemetryCapture) -> dict[str, tuple[str, str]]:
    """Name -> (instrument kind, unit) of every otel_ml.gpu metric collected now."""
    out: dict[str, tuple[str, str]] = {}
    data = cap.metric_reader.get_metrics_data()
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            if sm.scope.name != SCOPE:
                continue
            for m in sm.metrics:
                d = m.data
                if isinstance(d, Gauge):
                    kind = "gauge"
                elif isinstance(d, Sum):
                    kind = "counter" if d.is_monotonic else "updowncounter"
                else:
                    kind = type(d).__name__
                out[m.name] = (kind, m.unit or "")
    return out


def value(cap: TelemetryCapture, name: str, attrs: dict[str, Any]) -> float:
    """The one point of ``name`` whose attributes include ``attrs``."""
    points = cap.points(name, **attrs)
    if len(points) != 1:
        raise TelemetryNotFound(f"expected one {name} point matching {attrs}, got {points}")
    point = points[0].point
    assert isinstance(point, NumberDataPoint)
    return point.value


def gpu_points(cap: TelemetryCapture) -> list[Any]:
    return [p for p in cap.metrics() if p.scope == SCOPE]
