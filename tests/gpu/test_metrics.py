"""GPU metrics against recorded NVML values: semconv names, units, kinds, attributes and scaling;
absent (never zero) when a read fails; per-process memory; ECC errors by type; hw.status."""

from __future__ import annotations

import os

import pytest

import otel_ml.gpu
from otel_ml._internal.gpu import control
from otel_ml.testing import TelemetryCapture
from tests.gpu.fake_nvml import (
    A10_UUID,
    H100_UUID,
    OTHER_PID,
    FakeNvml,
    NVMLError_GpuIsLost,
    NVMLError_NotSupported,
    NVMLError_Unknown,
    Returns,
    recorded,
)
from tests.gpu.helpers import A10, GPU_METRICS, H100, gpu_points, kinds, start, value


def test_instruments_follow_the_hardware_semantic_conventions(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """Every GPU metric has the semconv name, instrument kind and unit."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml) is True
    assert kinds(cap) == {
        "hw.gpu.utilization": ("gauge", "1"),
        "hw.gpu.memory.usage": ("updowncounter", "By"),
        "hw.gpu.memory.limit": ("updowncounter", "By"),
        "hw.gpu.memory.utilization": ("gauge", "1"),
        "hw.power": ("gauge", "W"),
        "hw.energy": ("counter", "J"),
        "hw.temperature": ("gauge", "Cel"),
        "hw.errors": ("counter", "{error}"),
        "hw.status": ("updowncounter", "1"),
        "process.gpu.memory.usage": ("updowncounter", "By"),
    }


def test_every_point_names_its_device(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """hw.id (UUID), hw.name, hw.type=gpu, hw.vendor, hw.model and hw.driver_version are on every point."""
    otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    points = gpu_points(cap)
    assert {p.name for p in points} == set(GPU_METRICS)
    devices = {"gpu0": (H100_UUID, "NVIDIA H100 80GB HBM3"), "gpu1": (A10_UUID, "NVIDIA A10")}
    for p in points:
        a = p.attributes
        assert (a["hw.id"], a["hw.model"]) == devices[a["hw.name"]], p
        assert a["hw.type"] == "gpu" and a["hw.vendor"] == "NVIDIA" and a["hw.driver_version"] == "550.54.15"


def test_values_are_scaled_to_semconv_units(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """Percent becomes a 0-1 ratio, mW becomes W, mJ becomes J; bytes and °C stay as they are."""
    otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    util = "hw.gpu.utilization"
    assert value(cap, util, {**H100, "hw.gpu.task": "general"}) == pytest.approx(0.87)
    assert value(cap, util, {**H100, "hw.gpu.task": "memory_controller"}) == pytest.approx(0.41)
    assert value(cap, util, {**H100, "hw.gpu.task": "encoder"}) == 0
    assert value(cap, util, {**A10, "hw.gpu.task": "decoder"}) == pytest.approx(0.03)
    assert value(cap, "hw.gpu.memory.usage", H100) == 65_045_512_192
    assert value(cap, "hw.gpu.memory.limit", H100) == 85_520_809_984
    assert value(cap, "hw.gpu.memory.utilization", H100) == pytest.approx(65_045_512_192 / 85_520_809_984)
    assert value(cap, "hw.gpu.memory.limit", A10) == 24_146_608_128
    assert value(cap, "hw.power", H100) == pytest.approx(512.345)
    assert value(cap, "hw.power", A10) == pytest.approx(61.234)
    assert value(cap, "hw.energy", H100) == pytest.approx(4_523_456.789)
    assert value(cap, "hw.temperature", H100) == 67
    assert value(cap, "hw.temperature", A10) == 45


def test_unsupported_read_is_absent_not_zero_and_asked_once(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """The A10's encoder utilization (NotSupported) has no point, is counted once and not asked again."""
    start(cap, nvml)
    for _ in range(3):
        assert not cap.points("hw.gpu.utilization", **A10, **{"hw.gpu.task": "encoder"})
    assert value(cap, "hw.gpu.utilization", {**A10, "hw.gpu.task": "general"}) == pytest.approx(0.12)
    assert nvml.calls[("nvmlDeviceGetEncoderUtilization", 1)] == 1
    assert nvml.calls[("nvmlDeviceGetEncoderUtilization", 0)] == 4  # the H100: every collection
    # The A10's encoder and the H100's page retirement (Hopper remaps rows instead): once each.
    assert cap.dropped("gpu_not_supported") == 2
    assert cap.dropped("internal_error") == 0


def test_a_failed_read_skips_that_observation_only(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """A read that raises leaves that one point out (not 0) for that collection, and is counted."""
    start(cap, nvml)
    nvml.script("nvmlDeviceGetPowerUsage", 0, NVMLError_Unknown())
    assert [p.attributes["hw.name"] for p in cap.points("hw.power")] == ["gpu1"]
    assert value(cap, "hw.temperature", H100) == 67  # the rest of the H100 is still read
    assert cap.dropped("gpu_read_error") == 2  # once per collection above
    nvml.unscript()
    assert value(cap, "hw.power", H100) == pytest.approx(512.345)


def test_memory_reads_that_disagree_are_not_reported(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """Used above total is a bad reading: usage and utilization are left out, the limit stays."""
    start(cap, nvml)
    nvml.devices[0].memory_used = nvml.devices[0].memory_total + 1
    assert not cap.points("hw.gpu.memory.usage", **H100)
    assert not cap.points("hw.gpu.memory.utilization", **H100)
    assert value(cap, "hw.gpu.memory.limit", H100) == 85_520_809_984
    assert cap.dropped("gpu_invalid_value") >= 1


def test_process_memory_is_this_process_only(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """process.gpu.memory.usage is this PID's memory on the devices NVML lists it on; elsewhere absent."""
    start(cap, nvml)
    assert value(cap, "process.gpu.memory.usage", H100) == 4_404_019_200
    assert not cap.points("process.gpu.memory.usage", **A10)
    # MIG: one process can be listed once per GPU instance; its entries add up.
    nvml.devices[1].processes = [(os.getpid(), 1_000), (OTHER_PID, 5_000), (os.getpid(), 2_000)]
    assert value(cap, "process.gpu.memory.usage", A10) == 3_000


def test_process_memory_not_available_is_absent(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """NVML's "not available" per-process memory (None from pynvml) gives no point rather than 0."""
    nvml.devices[0].processes = [(os.getpid(), None)]
    start(cap, nvml)
    assert not cap.points("process.gpu.memory.usage")
    assert cap.dropped("gpu_not_supported") >= 1


def test_ecc_errors_by_type(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """hw.errors counts volatile ECC errors with error.type corrected / uncorrected (zeros NVML reported included)."""
    start(cap, nvml)
    assert value(cap, "hw.errors", {**H100, "error.type": "corrected"}) == 3
    assert value(cap, "hw.errors", {**H100, "error.type": "uncorrected"}) == 0
    assert value(cap, "hw.errors", {**A10, "error.type": "corrected"}) == 0
    assert value(cap, "hw.errors", {**A10, "error.type": "uncorrected"}) == 2
    nvml.devices[0].ecc_corrected = 5
    assert value(cap, "hw.errors", {**H100, "error.type": "corrected"}) == 5
    # ECC off: nothing, not a count of zero.
    nvml.script("nvmlDeviceGetTotalEccErrors", 0, NVMLError_NotSupported())
    assert not cap.points("hw.errors", **H100)


def _states(cap: TelemetryCapture, device: dict[str, str]) -> dict[str, float]:
    return {p.attributes["hw.state"]: p.point.value for p in cap.points("hw.status", **device)}


def test_status_from_what_nvml_tells(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """hw.status is 1 for the current state and 0 for the others: H100 ok, A10 degraded (ECC, pending remap)."""
    start(cap, nvml)
    assert _states(cap, H100) == {"ok": 1, "degraded": 0, "failed": 0}
    assert _states(cap, A10) == {"ok": 0, "degraded": 1, "failed": 0}
    h100 = nvml.devices[0]
    h100.clock_reasons = 0x4 | 0x40  # power cap and hardware thermal slowdown
    assert _states(cap, H100)["degraded"] == 1
    h100.clock_reasons = 0x4
    h100.remapped_rows = (0, 1, 0, 1)  # row remapping failed
    assert _states(cap, H100) == {"ok": 0, "degraded": 0, "failed": 1}
    h100.remapped_rows = (0, 0, 0, 0)
    assert _states(cap, H100)["ok"] == 1


def test_lost_gpu_is_failed_and_reports_nothing_else(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """A GPU that fell off the bus: hw.status failed, its other metrics absent, the other GPU unaffected."""
    start(cap, nvml)
    for fn in ("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetPowerUsage"):
        nvml.script(fn, 0, NVMLError_GpuIsLost())
    assert _states(cap, H100) == {"ok": 0, "degraded": 0, "failed": 1}
    assert not cap.points("hw.power", **H100) and not cap.points("hw.gpu.utilization", **H100)
    assert nvml.calls[("nvmlDeviceGetMemoryInfo", 0)] == 0  # nothing more asked of a lost device
    assert _states(cap, A10)["degraded"] == 1
    nvml.unscript()
    assert _states(cap, H100)["ok"] == 1


def test_status_absent_when_no_health_source_answers(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """No clock reasons, ECC, row remapping or page retirement: no hw.status, not an invented ok."""
    for fn in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetRemappedRows",
               "nvmlDeviceGetTotalEccErrors"):
        nvml.script(fn, 0, NVMLError_NotSupported())
    start(cap, nvml)
    assert not cap.points("hw.status", **H100)
    assert cap.points("hw.power", **H100)


def test_older_pynvml_clock_function_and_bytes(cap: TelemetryCapture) -> None:
    """pynvml before 12.535 names the clock reasons "throttle" and returns bytes for strings."""
    nvml = recorded(driver=b"470.82.01")
    nvml.nvmlDeviceGetCurrentClocksThrottleReasons = nvml.nvmlDeviceGetCurrentClocksEventReasons  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCurrentClocksEventReasons = None  # type: ignore[assignment,method-assign]
    nvml.script("nvmlDeviceGetName", 1, Returns(b"NVIDIA A10"))
    start(cap, nvml)
    assert value(cap, "hw.power", A10) > 0
    point = cap.points("hw.power", **A10)[0]
    assert point.attributes["hw.model"] == "NVIDIA A10" and point.attributes["hw.driver_version"] == "470.82.01"
    assert _states(cap, H100)["ok"] == 1


def test_one_set_of_nvml_calls_per_collection(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """All instruments of one collection share one sample; the next collection (later) reads again."""
    now = [0.0]
    control.start(cap.meter_provider, nvml=nvml, clock=lambda: now[0], max_age=0.5)
    cap.metrics()
    assert nvml.calls[("nvmlDeviceGetMemoryInfo", 0)] == 1  # usage, limit and utilization from one reading
    cap.metrics()
    assert nvml.calls[("nvmlDeviceGetMemoryInfo", 0)] == 1
    now[0] = 1.0
    cap.metrics()
    assert nvml.calls[("nvmlDeviceGetMemoryInfo", 0)] == 2


@pytest.mark.parametrize(("devices", "names"), [
    ([1], ["gpu1"]),
    ([H100_UUID], ["gpu0"]),
    (["00000000:65:00.0"], ["gpu1"]),
    ([0, A10_UUID.upper()], ["gpu0", "gpu1"]),
])
def test_devices_selects_by_index_uuid_or_bus_id(cap: TelemetryCapture, nvml: FakeNvml, devices: list[int | str],
                                                 names: list[str]) -> None:
    """devices= limits monitoring to the GPUs named by NVML index, UUID or PCI bus id."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml, devices=devices)
    assert sorted(p.attributes["hw.name"] for p in cap.points("hw.power")) == names


def test_devices_that_match_nothing(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """No device matching devices=: enable() is False, NVML is released, nothing is exported."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml, devices=[7]) is False
    assert nvml.initialised == 0
    assert gpu_points(cap) == []
    assert cap.dropped("gpu_unavailable") == 1


@pytest.mark.parametrize("devices", ["0", [True], [-1], [1.5], 3])
def test_malformed_devices_raise_naming_the_argument(cap: TelemetryCapture, nvml: FakeNvml, devices: object) -> None:
    """A malformed devices= is the caller's bug: ValueError naming it, before NVML is touched."""
    with pytest.raises(ValueError, match="devices"):
        otel_ml.gpu.enable(cap.meter_provider, nvml=nvml, devices=devices)  # type: ignore[arg-type]
    assert nvml.initialised == 0


def test_enable_twice_then_disable(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """enable() is idempotent per provider; disable() stops every point and releases NVML."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    assert nvml.initialised == 1 and otel_ml.gpu.enabled(cap.meter_provider)
    assert cap.points("hw.power")
    otel_ml.gpu.disable(cap.meter_provider)
    assert nvml.initialised == 0 and not otel_ml.gpu.enabled()
    assert gpu_points(cap) == []
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)  # and back on
    assert len(cap.points("hw.power")) == 2


def test_two_providers_each_export_and_disable_separately(nvml: FakeNvml) -> None:
    """Two captures (two providers) both get the GPU metrics; disabling one leaves the other."""
    from otel_ml.testing import capture_telemetry

    with capture_telemetry() as one, capture_telemetry() as two:
        assert otel_ml.gpu.enable(one.meter_provider, nvml=nvml)
        assert otel_ml.gpu.enable(two.meter_provider, nvml=nvml)
        assert len(one.points("hw.power")) == 2 and len(two.points("hw.power")) == 2
        otel_ml.gpu.disable(one.meter_provider)
        assert one.points("hw.power") == [] and len(two.points("hw.power")) == 2
        assert nvml.initialised == 1


def test_zero_reported_by_nvml_is_reported(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """Absent is for failed reads only: an idle GPU's 0 % utilization, read fine, is a point of 0."""
    nvml.devices[1].util_gpu = 0
    start(cap, nvml)
    assert value(cap, "hw.gpu.utilization", {**A10, "hw.gpu.task": "general"}) == 0
