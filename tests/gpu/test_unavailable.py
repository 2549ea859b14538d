"""No NVML, no driver, no GPU: enable() returns False, logs one line, counts it, raises nothing,
and no instrument reports anything (absent, not zero)."""

from __future__ import annotations

import logging
import sys

import pytest

import otel_ml.gpu
from otel_ml._internal import energy
from otel_ml.testing import TelemetryCapture
from tests.gpu.fake_nvml import FakeNvml, NVMLError_LibraryNotFound, Returns
from tests.gpu.helpers import GPU_METRICS, gpu_points


def _nothing_exported(cap: TelemetryCapture) -> None:
    assert gpu_points(cap) == []
    assert not cap.points("ml.inference.energy")
    assert energy.CURRENT.meter is None
    assert not otel_ml.gpu.enabled()


def _one_warning(caplog: pytest.LogCaptureFixture) -> None:
    lines = [r for r in caplog.records if r.name == "otel_ml" and "gpu_unavailable" in r.getMessage()]
    assert len(lines) == 1, caplog.text


def test_without_the_pynvml_module(cap: TelemetryCapture, monkeypatch: pytest.MonkeyPatch,
                                   caplog: pytest.LogCaptureFixture) -> None:
    """pynvml not installed: False, one log line, one gpu_unavailable count, no metric, no meter."""
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with caplog.at_level(logging.WARNING, "otel_ml"):
        assert otel_ml.gpu.enable(cap.meter_provider) is False
        monitor = cap.monitor("clf", version="1")
        with monitor.inference() as inf:
            inf.record(predictions="a", confidence=0.9)
    _nothing_exported(cap)
    assert cap.dropped("gpu_unavailable") == 1
    _one_warning(caplog)


def test_when_nvml_init_fails(cap: TelemetryCapture, nvml: FakeNvml, caplog: pytest.LogCaptureFixture) -> None:
    """nvmlInit raising (no driver): the same - and a second enable() tries again without raising."""
    nvml.init_error = NVMLError_LibraryNotFound()
    with caplog.at_level(logging.WARNING, "otel_ml"):
        assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml) is False
        assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml) is False
    _nothing_exported(cap)
    assert cap.dropped("gpu_unavailable") == 2
    _one_warning(caplog)


@pytest.mark.parametrize("error", [RuntimeError("driver exploded"), OSError("libnvidia-ml.so.1"), KeyError("x")])
def test_init_raising_anything(cap: TelemetryCapture, nvml: FakeNvml, error: Exception) -> None:
    """Whatever nvmlInit raises is counted, never raised."""
    nvml.init_error = error
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml) is False
    _nothing_exported(cap)


@pytest.mark.parametrize("count", [Returns(0), Returns(None), Returns("2"), Returns(-1), RuntimeError("count")])
def test_no_device(cap: TelemetryCapture, nvml: FakeNvml, count: object) -> None:
    """Zero devices (or a count that is not one): False, NVML released, nothing exported."""
    nvml.script("nvmlDeviceGetCount", -1, count)
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml) is False
    assert nvml.initialised == 0
    _nothing_exported(cap)
    assert cap.dropped("gpu_unavailable") == 1


def test_a_module_that_is_not_nvml(cap: TelemetryCapture) -> None:
    """An object without nvmlInit: False, not an AttributeError."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=object()) is False
    _nothing_exported(cap)


def test_real_pynvml_on_this_machine(cap: TelemetryCapture) -> None:
    """The real pynvml through enable(): without a GPU nothing is exported and nothing raised; with one,
    every device reports the semconv metrics."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except Exception:
        has_gpu = False
    else:
        has_gpu = pynvml.nvmlDeviceGetCount() > 0
        pynvml.nvmlShutdown()
    enabled = otel_ml.gpu.enable(cap.meter_provider)
    monitor = cap.monitor("clf", version="1")
    for _ in range(3):
        with monitor.inference() as inf:
            inf.record(predictions="a", confidence=0.9)
    if not has_gpu:
        assert enabled is False
        _nothing_exported(cap)
        assert cap.dropped("gpu_unavailable") == 1
        return
    assert enabled is True
    points = gpu_points(cap)
    names = {p.name for p in points}
    assert {"hw.gpu.utilization", "hw.gpu.memory.usage", "hw.gpu.memory.limit", "hw.power",
            "hw.temperature"} <= names <= set(GPU_METRICS)
    for p in points:
        assert p.attributes["hw.type"] == "gpu" and p.attributes["hw.vendor"] == "NVIDIA"
        if p.name in ("hw.gpu.utilization", "hw.gpu.memory.utilization"):
            assert 0 <= p.point.value <= 1
    assert cap.dropped("internal_error") == 0
