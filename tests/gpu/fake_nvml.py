"""A fake NVML module (the pynvml functions otel_ml uses) fed recorded values.

Two devices as ``nvidia-smi -q`` showed them on driver 550.54.15: an H100 80GB HBM3 under load,
running this process and another one, and an A10 nearly idle, with uncorrected ECC errors and a
row remap pending, that does not support encoder utilization (``NVMLError_NotSupported``).

Tests change values in place (``fake.devices[0].power_mw = ...``) or script one call of one device
with :meth:`FakeNvml.script`: an exception instance to raise, or :class:`Returns` to return an odd
value. Every call is counted in ``fake.calls[(function, index)]``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_UNKNOWN = 999


class NVMLError(Exception):
    """pynvml's base error: the NVML return code in ``.value``."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


def _error_class(name: str, code: int) -> type[NVMLError]:
    def init(self: NVMLError) -> None:
        NVMLError.__init__(self, code)

    return type(name, (NVMLError,), {"__init__": init})


NVMLError_NotSupported = _error_class("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NVMLError_NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_LibraryNotFound = _error_class("NVMLError_LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_ResetRequired = _error_class("NVMLError_ResetRequired", NVML_ERROR_RESET_REQUIRED)
NVMLError_Unknown = _error_class("NVMLError_Unknown", NVML_ERROR_UNKNOWN)


@dataclass(frozen=True)
class Returns:
    """Script a call to return ``value`` instead of the recorded one."""

    value: object


@dataclass
class FakeDevice:
    name: str
    uuid: str
    bus_id: str
    memory_total: int  # bytes
    memory_used: int
    util_gpu: int  # percent
    util_memory: int
    encoder: int | None  # percent; None: NVMLError_NotSupported
    decoder: int | None
    power_mw: int
    energy_mj: int
    temperature: int  # Cel
    ecc_corrected: int
    ecc_uncorrected: int
    clock_reasons: int
    remapped_rows: tuple[int, int, int, int]  # corrected, uncorrected, pending, failed
    retired_pending: int | None  # None: not supported (row remapping GPUs)
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, used bytes)


@dataclass(frozen=True)
class Handle:
    index: int


OTHER_PID = 4_194_301  # another process on the H100


def h100() -> FakeDevice:
    return FakeDevice(
        name="NVIDIA H100 80GB HBM3", uuid="GPU-9f5e3c1a-2b4d-4e6f-8a1b-3c5d7e9f0a2b", bus_id="00000000:18:00.0",
        memory_total=85_520_809_984, memory_used=65_045_512_192, util_gpu=87, util_memory=41, encoder=0, decoder=0,
        power_mw=512_345, energy_mj=4_523_456_789, temperature=67, ecc_corrected=3, ecc_uncorrected=0,
        clock_reasons=0x4,  # SwPowerCap: normal at full load
        remapped_rows=(0, 0, 0, 0), retired_pending=None,
        processes=[(os.getpid(), 4_404_019_200), (OTHER_PID, 60_129_542_144)])


def a10() -> FakeDevice:
    return FakeDevice(
        name="NVIDIA A10", uuid="GPU-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809", bus_id="00000000:65:00.0",
        memory_total=24_146_608_128, memory_used=1_048_576_000, util_gpu=12, util_memory=5, encoder=None, decoder=3,
        power_mw=61_234, energy_mj=98_765_432, temperature=45, ecc_corrected=0, ecc_uncorrected=2,
        clock_reasons=0x1,  # GpuIdle
        remapped_rows=(0, 2, 1, 0), retired_pending=0, processes=[])


class FakeNvml:
    """The subset of pynvml otel_ml calls, over :class:`FakeDevice` records."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_NoPermission = NVMLError_NoPermission
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_GpuIsLost = NVMLError_GpuIsLost
    NVMLError_ResetRequired = NVMLError_ResetRequired
    NVMLError_Unknown = NVMLError_Unknown
    NVML_TEMPERATURE_GPU = 0
    NVML_VOLATILE_ECC = 0
    NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_FEATURE_ENABLED = 1

    def __init__(self, devices: list[FakeDevice], driver: str | bytes = "550.54.15") -> None:
        self.devices = devices
        self.driver = driver
        self.initialised = 0
        self.init_error: BaseException | None = None
        self.calls: Counter[tuple[str, int]] = Counter()
        self._script: dict[tuple[str, int], object] = {}

    # -- scripting
    def script(self, function: str, index: int, outcome: object) -> None:
        """Make ``function`` on device ``index`` (-1: device-less) raise ``outcome`` or return ``Returns.value``."""
        self._script[(function, index)] = outcome

    def unscript(self, function: str | None = None, index: int | None = None) -> None:
        for key in [k for k in self._script if (function is None or k[0] == function)
                    and (index is None or k[1] == index)]:
            del self._script[key]

    def _enter(self, function: str, handle: object = None) -> tuple[FakeDevice | None, object]:
        index = handle.index if isinstance(handle, Handle) else -1
        self.calls[(function, index)] += 1
        if not self.initialised:
            raise NVMLError(1)  # NVML_ERROR_UNINITIALIZED
        outcome = self._script.get((function, index))
        if isinstance(outcome, BaseException):
            raise outcome
        if handle is not None and not isinstance(handle, Handle):
            raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        device = self.devices[index] if index >= 0 else None
        return device, outcome

    # -- pynvml's functions
    def nvmlInit(self) -> None:
        self.calls[("nvmlInit", -1)] += 1
        if self.init_error is not None:
            raise self.init_error
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> object:
        _, out = self._enter("nvmlSystemGetDriverVersion")
        return out.value if isinstance(out, Returns) else self.driver

    def nvmlDeviceGetCount(self) -> object:
        _, out = self._enter("nvmlDeviceGetCount")
        return out.value if isinstance(out, Returns) else len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> object:
        self.calls[("nvmlDeviceGetHandleByIndex", index)] += 1
        outcome = self._script.get(("nvmlDeviceGetHandleByIndex", index))
        if isinstance(outcome, BaseException):
            raise outcome
        if not 0 <= index < len(self.devices):
            raise NVMLError(2)
        return Handle(index)

    def _get(self, function: str, handle: object, value: Any) -> Any:
        _, out = self._enter(function, handle)
        return out.value if isinstance(out, Returns) else value

    def _device(self, handle: object) -> FakeDevice:
        return self.devices[handle.index] if isinstance(handle, Handle) else self.devices[0]

    def nvmlDeviceGetUUID(self, handle: object) -> object:
        return self._get("nvmlDeviceGetUUID", handle, self._device(handle).uuid)

    def nvmlDeviceGetName(self, handle: object) -> object:
        return self._get("nvmlDeviceGetName", handle, self._device(handle).name)

    def nvmlDeviceGetPciInfo(self, handle: object) -> object:
        return self._get("nvmlDeviceGetPciInfo", handle, SimpleNamespace(busId=self._device(handle).bus_id))

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> object:
        d = self._device(handle)
        return self._get("nvmlDeviceGetUtilizationRates", handle, SimpleNamespace(gpu=d.util_gpu, memory=d.util_memory))

    def nvmlDeviceGetEncoderUtilization(self, handle: object) -> object:
        d = self._device(handle)
        got = self._get("nvmlDeviceGetEncoderUtilization", handle, [d.encoder, 167_000])
        if got == [None, 167_000]:
            raise NVMLError_NotSupported()
        return got

    def nvmlDeviceGetDecoderUtilization(self, handle: object) -> object:
        d = self._device(handle)
        got = self._get("nvmlDeviceGetDecoderUtilization", handle, [d.decoder, 167_000])
        if got == [None, 167_000]:
            raise NVMLError_NotSupported()
        return got

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> object:
        d = self._device(handle)
        info = SimpleNamespace(total=d.memory_total, used=d.memory_used, free=d.memory_total - d.memory_used)
        return self._get("nvmlDeviceGetMemoryInfo", handle, info)

    def nvmlDeviceGetPowerUsage(self, handle: object) -> object:
        return self._get("nvmlDeviceGetPowerUsage", handle, self._device(handle).power_mw)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> object:
        return self._get("nvmlDeviceGetTotalEnergyConsumption", handle, self._device(handle).energy_mj)

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> object:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._get("nvmlDeviceGetTemperature", handle, self._device(handle).temperature)

    def nvmlDeviceGetTotalEccErrors(self, handle: object, error_type: int, counter_type: int) -> object:
        assert counter_type == self.NVML_VOLATILE_ECC
        d = self._device(handle)
        value = d.ecc_corrected if error_type == self.NVML_MEMORY_ERROR_TYPE_CORRECTED else d.ecc_uncorrected
        return self._get("nvmlDeviceGetTotalEccErrors", handle, value)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: object) -> object:
        return self._get("nvmlDeviceGetCurrentClocksEventReasons", handle, self._device(handle).clock_reasons)

    def nvmlDeviceGetRemappedRows(self, handle: object) -> object:
        return self._get("nvmlDeviceGetRemappedRows", handle, self._device(handle).remapped_rows)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: object) -> object:
        got = self._get("nvmlDeviceGetRetiredPagesPendingStatus", handle, self._device(handle).retired_pending)
        if got is None and not isinstance(self._script.get(("nvmlDeviceGetRetiredPagesPendingStatus",
                                                            self._device_index(handle))), Returns):
            raise NVMLError_NotSupported()
        return got

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> object:
        procs = [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self._device(handle).processes]
        return self._get("nvmlDeviceGetComputeRunningProcesses", handle, procs)

    @staticmethod
    def _device_index(handle: object) -> int:
        return handle.index if isinstance(handle, Handle) else -1


def recorded(driver: str | bytes = "550.54.15") -> FakeNvml:
    """A fresh fake with the H100 (index 0) and the A10 (index 1)."""
    return FakeNvml([h100(), a10()], driver=driver)


H100_UUID = h100().uuid
A10_UUID = a10().uuid
