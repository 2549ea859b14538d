"""One reading of one GPU: what NVML said, scaled to the semantic conventions' units, None where it
said nothing usable.

Units: NVML gives percent (-> 0-1 ratios), bytes, milliwatts (-> W), millijoules since the
driver loaded (-> J), degrees Celsius, and ECC error counts since the driver loaded.

``hw.status`` is derived from what NVML can tell about the device's health:

* ``failed``: a read answered "GPU is lost" (fallen off the bus) or "reset required", or row
  remapping failed (``nvmlDeviceGetRemappedRows``: the memory cannot be repaired any more);
* ``degraded``: a row remap or a page retirement is pending (the GPU needs a reset to apply it),
  uncorrected ECC errors happened since the driver loaded (results computed since may be wrong),
  or the clocks are being slowed for a hardware reason (``HwSlowdown``, ``HwThermalSlowdown``,
  ``HwPowerBrakeSlowdown``, ``SwThermalSlowdown``). Slowing down to stay under the power cap
  (``SwPowerCap``) or when idle is normal operation and does not count;
* ``ok``: at least one of those sources answered and none of them says otherwise.

When none of the sources answers, ``hw.status`` is absent rather than an invented ``ok``. XID
events are not read: NVML delivers them through an event set that needs a waiting thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from otel_ml._internal.gpu.nvml import ABSENT, Device, Nvml, count, number, percent

# nvmlClocksEventReason* (formerly nvmlClocksThrottleReason*) bits that mean trouble.
_SW_THERMAL = 0x20
_HW_SLOWDOWN = 0x08
_HW_THERMAL = 0x40
_HW_POWER_BRAKE = 0x80
DEGRADING_CLOCK_REASONS = _HW_SLOWDOWN | _SW_THERMAL | _HW_THERMAL | _HW_POWER_BRAKE

_ERROR_TYPES = (("corrected", "NVML_MEMORY_ERROR_TYPE_CORRECTED", 0),
                ("uncorrected", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1))


@dataclass
class DeviceSample:
    """One device's values at one collection, in semconv units; None (or missing keys) = absent."""

    device: Device
    utilization: dict[str, float] = field(default_factory=dict)  # hw.gpu.task -> 0..1
    memory_used: int | None = None  # By
    memory_total: int | None = None  # By
    power: float | None = None  # W
    energy: float | None = None  # J since the driver loaded
    temperature: float | None = None  # Cel
    errors: dict[str, int] = field(default_factory=dict)  # corrected | uncorrected -> count
    state: str | None = None  # ok | degraded | failed
    process_memory: int | None = None  # By used by this process on the device
    process_seen: bool = False  # NVML lists this process on the device


class _Health:
    __slots__ = ("answered", "degraded", "failed")

    def __init__(self) -> None:
        self.answered = self.degraded = self.failed = False

    def state(self) -> str | None:
        if self.failed:
            return "failed"
        if self.degraded:
            return "degraded"
        return "ok" if self.answered else None


def sample(nvml: Nvml, device: Device, pid: int) -> DeviceSample:
    """Read everything about ``device`` (never raises; what cannot be read is absent and counted)."""
    device.fatal = False
    s = DeviceSample(device)
    health = _Health()
    _utilization(nvml, device, s)
    if not device.fatal:
        _memory(nvml, device, s)
    if not device.fatal:
        _power_energy_temperature(nvml, device, s)
    if not device.fatal:
        _errors(nvml, device, s, health)
    if not device.fatal:
        _health(nvml, device, health)
    if not device.fatal:
        _process(nvml, device, s, pid)
    if device.fatal:
        # A lost device answers nothing else; what was read before it was lost stays.
        health.failed = True
    s.state = health.state()
    return s


def _utilization(nvml: Nvml, device: Device, s: DeviceSample) -> None:
    rates = nvml.call(device, "utilization", "nvmlDeviceGetUtilizationRates", device.handle)
    if rates is not ABSENT:
        for task, attr in (("general", "gpu"), ("memory_controller", "memory")):
            raw = getattr(rates, attr, None)
            ratio = percent(raw)
            if ratio is None:
                nvml.invalid(device, f"utilization.{attr}", raw)
            else:
                s.utilization[task] = ratio
    for task, fn in (("encoder", "nvmlDeviceGetEncoderUtilization"), ("decoder", "nvmlDeviceGetDecoderUtilization")):
        if device.fatal:
            return
        got = nvml.call(device, task, fn, device.handle)
        if got is ABSENT:
            continue
        # [utilization %, sampling period in µs]
        raw = got[0] if isinstance(got, Sequence) and not isinstance(got, str | bytes) and got else got
        ratio = percent(raw)
        if ratio is None:
            nvml.invalid(device, task, got)
        else:
            s.utilization[task] = ratio


def _memory(nvml: Nvml, device: Device, s: DeviceSample) -> None:
    info = nvml.call(device, "memory", "nvmlDeviceGetMemoryInfo", device.handle)
    if info is ABSENT:
        return
    used, total = count(getattr(info, "used", None)), count(getattr(info, "total", None))
    if total is None or total == 0:
        nvml.invalid(device, "memory.total", getattr(info, "total", None))
    else:
        s.memory_total = total
    if used is None or (total is not None and used > total):
        nvml.invalid(device, "memory.used", getattr(info, "used", None))
    else:
        s.memory_used = used


def _power_energy_temperature(nvml: Nvml, device: Device, s: DeviceSample) -> None:
    mw = nvml.call(device, "power", "nvmlDeviceGetPowerUsage", device.handle)
    if mw is not ABSENT:
        f = number(mw)
        if f is None or f < 0:
            nvml.invalid(device, "power", mw)
        else:
            s.power = f / 1000.0
    if device.fatal:
        return
    mj = nvml.call(device, "energy", "nvmlDeviceGetTotalEnergyConsumption", device.handle)
    if mj is not ABSENT:
        f = number(mj)
        if f is None or f < 0:
            nvml.invalid(device, "energy", mj)
        else:
            s.energy = f / 1000.0
    if device.fatal:
        return
    sensor = nvml.constant("NVML_TEMPERATURE_GPU", 0)
    celsius = nvml.call(device, "temperature", "nvmlDeviceGetTemperature", device.handle, sensor)
    if celsius is not ABSENT:
        f = number(celsius)
        # Below -40 or above 200 °C no GPU is running: a garbage value, not a temperature.
        if f is None or not -40.0 <= f <= 200.0:
            nvml.invalid(device, "temperature", celsius)
        else:
            s.temperature = f


def _errors(nvml: Nvml, device: Device, s: DeviceSample, health: _Health) -> None:
    volatile = nvml.constant("NVML_VOLATILE_ECC", 0)
    for error_type, const, default in _ERROR_TYPES:
        if device.fatal:
            return
        got = nvml.call(device, f"ecc.{error_type}", "nvmlDeviceGetTotalEccErrors", device.handle,
                        nvml.constant(const, default), volatile)
        if got is ABSENT:
            continue
        n = count(got)
        if n is None:
            nvml.invalid(device, f"ecc.{error_type}", got)
            continue
        s.errors[error_type] = n
        if error_type == "uncorrected":
            health.answered = True
            health.degraded |= n > 0


def _health(nvml: Nvml, device: Device, health: _Health) -> None:
    name = ("nvmlDeviceGetCurrentClocksEventReasons" if nvml.function("nvmlDeviceGetCurrentClocksEventReasons")
            else "nvmlDeviceGetCurrentClocksThrottleReasons")
    reasons = nvml.call(device, "clock_reasons", name, device.handle)
    if reasons is not ABSENT:
        mask = count(reasons)
        if mask is None:
            nvml.invalid(device, "clock_reasons", reasons)
        else:
            health.answered = True
            health.degraded |= bool(mask & DEGRADING_CLOCK_REASONS)
    if device.fatal:
        return
    rows = nvml.call(device, "remapped_rows", "nvmlDeviceGetRemappedRows", device.handle)
    if rows is not ABSENT:
        # (corrected rows, uncorrected rows, remap pending, remap failed)
        flags = [count(v) for v in rows] if isinstance(rows, Sequence) and not isinstance(rows, str | bytes) else []
        if len(flags) < 4 or flags[2] is None or flags[3] is None:
            nvml.invalid(device, "remapped_rows", rows)
        else:
            health.answered = True
            health.failed |= flags[3] > 0
            health.degraded |= flags[2] > 0
    if device.fatal:
        return
    pending = nvml.call(device, "retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus", device.handle)
    if pending is not ABSENT:
        state = count(pending)
        if state is None:
            nvml.invalid(device, "retired_pages_pending", pending)
        else:
            health.answered = True
            health.degraded |= state == nvml.constant("NVML_FEATURE_ENABLED", 1)


def _process(nvml: Nvml, device: Device, s: DeviceSample, pid: int) -> None:
    procs = nvml.call(device, "processes", "nvmlDeviceGetComputeRunningProcesses", device.handle)
    if procs is ABSENT:
        return
    if not isinstance(procs, Sequence) or isinstance(procs, str | bytes):
        nvml.invalid(device, "processes", procs)
        return
    total = 0
    known = True
    for p in procs:
        if getattr(p, "pid", None) != pid:
            continue
        s.process_seen = True
        raw = getattr(p, "usedGpuMemory", None)
        if raw is None:
            # NVML_VALUE_NOT_AVAILABLE (pynvml gives None): Windows WDDM, MIG without privileges.
            nvml.mark_unsupported(device, "process_memory", f"per-process memory not available on device "
                                                            f"{device.index}")
            known = False
            continue
        used = count(raw)
        if used is None:
            nvml.invalid(device, "process_memory", raw)
            known = False
        else:
            total += used
    # Not listed: no CUDA context here, or a PID namespace (a container) hides the host PID that NVML
    # reports. Both look the same, so the series is absent rather than a zero that may be false.
    if s.process_seen and known:
        s.process_memory = total
