"""NVML returning odd types, None, NaN, huge or negative numbers, or raising anything: counted, never
raised, never exported as a made-up value."""

from __future__ import annotations

import logging
import math
import os
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_ml.gpu
from otel_ml.testing import TelemetryCapture, capture_telemetry
from tests.gpu.fake_nvml import (
    NVMLError,
    NVMLError_GpuIsLost,
    NVMLError_NotSupported,
    NVMLError_Unknown,
    Returns,
    recorded,
)
from tests.gpu.helpers import gpu_points, start

SAMPLED = [
    "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetEncoderUtilization", "nvmlDeviceGetDecoderUtilization",
    "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetTemperature", "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetRemappedRows", "nvmlDeviceGetRetiredPagesPendingStatus", "nvmlDeviceGetComputeRunningProcesses",
]

_ODD = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4), st.binary(max_size=4),
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.one_of(st.integers(min_value=-5, max_value=10**12), st.none()), max_size=5),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), st.just(object()),
    st.builds(SimpleNamespace, gpu=st.one_of(st.none(), st.integers(-5, 500), st.floats()),
              memory=st.one_of(st.none(), st.integers(-5, 500)),
              used=st.one_of(st.none(), st.integers(-(2**65), 2**65)),
              total=st.one_of(st.none(), st.integers(-(2**65), 2**65))),
    st.lists(st.builds(SimpleNamespace, pid=st.one_of(st.just(os.getpid()), st.integers(0, 2**22)),
                       usedGpuMemory=st.one_of(st.none(), st.integers(-5, 2**64))), max_size=3),
)
_RAISES = st.sampled_from([NVMLError_Unknown(), NVMLError_NotSupported(), NVMLError_GpuIsLost(), NVMLError(12345),
                           RuntimeError("boom"), ValueError("v"), KeyError("k"), ZeroDivisionError(),
                           AttributeError("a"), TypeError("t"), OverflowError("o")])
_OUTCOME = st.one_of(_ODD.map(Returns), _RAISES)
_SCRIPTS = st.dictionaries(st.tuples(st.sampled_from(SAMPLED), st.sampled_from([0, 1])), _OUTCOME, max_size=6)

_RATIOS = ("hw.gpu.utilization", "hw.gpu.memory.utilization")
_NON_NEGATIVE = ("hw.gpu.memory.usage", "hw.gpu.memory.limit", "hw.power", "hw.energy", "hw.errors",
                 "process.gpu.memory.usage")


class _Errors(logging.Handler):
    """Collects ERROR records: the SDK logs (and swallows) an exception raised by a callback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _check_points(cap: TelemetryCapture) -> None:
    states: dict[str, list[float]] = {}
    for p in gpu_points(cap):
        v = p.point.value
        assert isinstance(v, int | float) and math.isfinite(v), p
        if p.name in _RATIOS:
            assert 0 <= v <= 1, p
        elif p.name in _NON_NEGATIVE:
            assert v >= 0, p
        elif p.name == "hw.temperature":
            assert -40 <= v <= 200, p
        elif p.name == "hw.status":
            states.setdefault(p.attributes["hw.name"], []).append(v)
    for values in states.values():
        assert sorted(values) == [0, 0, 1]


def test_any_nvml_answer_is_counted_never_raised(cap: TelemetryCapture) -> None:
    """Fuzzed: every sampled NVML call of either device may return anything or raise anything."""
    nvml = recorded()
    start(cap, nvml)
    errors = _Errors()
    logging.getLogger().addHandler(errors)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(script=_SCRIPTS)
    def check(script: dict[tuple[str, int], Any]) -> None:
        nvml.unscript()
        for (function, index), outcome in script.items():
            nvml.script(function, index, outcome)
        _check_points(cap)

    try:
        check()
    finally:
        logging.getLogger().removeHandler(errors)
    assert errors.records == []
    assert cap.dropped("internal_error") == 0
    assert cap.dropped("gpu_invalid_value") + cap.dropped("gpu_read_error") > 0


@pytest.mark.parametrize("function", ["nvmlDeviceGetUUID", "nvmlDeviceGetName", "nvmlDeviceGetPciInfo",
                                      "nvmlSystemGetDriverVersion", "nvmlDeviceGetHandleByIndex"])
@pytest.mark.parametrize("outcome", [Returns(None), Returns(42), Returns(b"\xff\xfe"), Returns(""),
                                     Returns(SimpleNamespace()), RuntimeError("x"), NVMLError_Unknown()])
def test_odd_identity_reads_at_enable(function: str, outcome: object) -> None:
    """Identity reads that fail give fallback attributes (or skip a device without a handle), never raise."""
    nvml = recorded()
    index = -1 if function == "nvmlSystemGetDriverVersion" else 0
    if function == "nvmlDeviceGetHandleByIndex" and isinstance(outcome, Returns):
        return  # a handle is opaque: any value is one
    nvml.script(function, index, outcome)
    with capture_telemetry() as cap:
        assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
        points = cap.points("hw.power")
        ids = {p.attributes["hw.name"]: p.attributes["hw.id"] for p in points}
        if function == "nvmlDeviceGetHandleByIndex":
            assert list(ids) == ["gpu1"]
        else:
            assert ids["gpu1"] == "GPU-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809"
            assert ids["gpu0"] in ("GPU-9f5e3c1a-2b4d-4e6f-8a1b-3c5d7e9f0a2b", "00000000:18:00.0", "gpu0")
            assert all(isinstance(v, str) and v for p in points for v in p.attributes.values())
        assert cap.dropped("internal_error") == 0
        otel_ml.gpu.disable()


def test_shutdown_raising_is_not_raised(cap: TelemetryCapture) -> None:
    """nvmlShutdown raising on disable(): logged, not raised."""
    nvml = recorded()
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    nvml.script("nvmlShutdown", -1, RuntimeError("busy"))
    otel_ml.gpu.disable()
    assert gpu_points(cap) == []


@pytest.mark.parametrize("energy", ["yes", 1, "false"])
def test_malformed_energy_flag_raises(cap: TelemetryCapture, energy: object) -> None:
    """energy= must be a bool or None: a ValueError naming it."""
    with pytest.raises(ValueError, match="energy"):
        otel_ml.gpu.enable(cap.meter_provider, nvml=recorded(), energy=energy)  # type: ignore[arg-type]
