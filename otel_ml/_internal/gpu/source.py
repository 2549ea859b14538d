"""NVML opened for monitoring: the devices found, the latest samples, the energy meter.

Opening never raises: no NVML module, ``nvmlInit()`` failing (no driver, no GPU, a container
without the NVIDIA runtime) or no device to monitor logs one line, counts ``gpu_unavailable`` and
gives None, so no instrument ever reports anything for this machine (absent, not zero).

Samples are read when a metric reader collects, never in the background, and reused for
``max_age`` seconds so that the instruments of one collection (or two readers collecting at once)
share one set of NVML calls and agree with each other (memory usage and limit from one reading).
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable, Sequence

from otel_ml._internal import forksafe, names
from otel_ml._internal.clock import guarded
from otel_ml._internal.gpu.energy import NvmlEnergyMeter
from otel_ml._internal.gpu.nvml import ABSENT, UNAVAILABLE, Device, Nvml, count, number, text
from otel_ml._internal.gpu.sample import DeviceSample, sample
from otel_ml._internal.selftelemetry import SelfTelemetry

VENDOR = "NVIDIA"

DeviceSelector = Sequence[int | str]


def check_devices(devices: object) -> tuple[int | str, ...] | None:
    """``devices`` as a tuple of NVML indices / UUIDs / PCI bus ids (ValueError naming the argument)."""
    if devices is None:
        return None
    if isinstance(devices, str | bytes) or not isinstance(devices, Sequence):
        raise ValueError(f"devices must be a sequence of NVML indices (int) or UUID / PCI bus id strings, "
                         f"got {devices!r}")
    for d in devices:
        if isinstance(d, bool) or not isinstance(d, int | str) or (isinstance(d, int) and d < 0):
            raise ValueError(f"devices must hold non-negative ints or strs, got {d!r}")
    return tuple(devices)


class GpuSource:
    """The monitored devices of one NVML session and their samples, read lazily."""

    def __init__(self, nvml: Nvml, devices: Sequence[Device], *, clock: Callable[[], float] = time.monotonic,
                 max_age: float = 0.5, pid: Callable[[], int] = os.getpid) -> None:
        self.nvml = nvml
        self.devices = list(devices)
        self.registry = nvml.registry
        self.meter: NvmlEnergyMeter | None = None
        self.closed = False
        self._clock = guarded(clock, self.registry)
        self._max_age = max_age
        self._pid = pid
        self._lock = threading.Lock()
        self._cached: list[DeviceSample] = []
        self._cached_at: float | None = None
        forksafe.call_after_fork(self._after_fork)

    def samples(self) -> list[DeviceSample]:
        """Every device's latest sample (read now unless one younger than ``max_age`` exists)."""
        with self._lock:
            if self.closed:
                return []
            now = self._clock()
            if self._cached_at is not None and now - self._cached_at < self._max_age:
                return self._cached
            pid = self._pid()
            self._cached = [sample(self.nvml, d, pid) for d in self.devices]
            self._cached_at = now
            samples = self._cached
        meter = self.meter
        if meter is not None:
            # Energy per call comes from the devices this process runs on, once NVML shows them.
            meter.use([s.device for s in samples if s.process_seen and s.device.energy])
        return samples

    def energy_meter(self) -> NvmlEnergyMeter | None:
        """A meter over the devices whose energy counter answered (None when none did)."""
        with self._lock:
            if self.meter is None and not self.closed:
                read = self.nvml.function("nvmlDeviceGetTotalEnergyConsumption")
                usable = [d for d in self.devices if d.energy]
                if read is None or not usable:
                    return None
                self.meter = NvmlEnergyMeter(read, usable, self.registry)
            return self.meter

    def close(self) -> None:
        """Stop reporting and release NVML (idempotent)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._cached = []
        if self.meter is not None:
            self.meter.close()
        shutdown = self.nvml.function("nvmlShutdown")
        if shutdown is not None:
            try:
                shutdown()
            except Exception as exc:
                self.registry.log_once("gpu_shutdown", "otel_ml: nvmlShutdown failed: %r", exc)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._cached_at = None



def _unavailable(registry: SelfTelemetry, why: str, detail: object = None) -> None:
    registry.dropped(UNAVAILABLE, "metrics", detail=f"GPU metrics off: {why}" + (f" ({detail!r})" if detail else ""))


def load_module(module: object | None, registry: SelfTelemetry) -> object | None:
    """The NVML module given, else ``pynvml`` (nvidia-ml-py) if installed."""
    if module is not None:
        return module
    try:
        return importlib.import_module("pynvml")
    except Exception as exc:  # ImportError, or a broken install raising anything at import
        _unavailable(registry, "pynvml is not installed (pip install 'otel-ml[gpu]')", exc)
        return None


def open_source(module: object | None, selector: tuple[int | str, ...] | None, registry: SelfTelemetry, *,
                clock: Callable[[], float] = time.monotonic, max_age: float = 0.5,
                pid: Callable[[], int] = os.getpid) -> GpuSource | None:
    """Initialise NVML and find the devices to monitor; None (logged, counted) when there are none."""
    found = load_module(module, registry)
    if found is None:
        return None
    nvml = Nvml(found, registry)
    init = nvml.function("nvmlInit")
    if init is None:
        _unavailable(registry, "the NVML module has no nvmlInit")
        return None
    try:
        init()
    except Exception as exc:
        _unavailable(registry, "nvmlInit failed (no NVIDIA driver or GPU)", exc)
        return None
    try:
        devices = _devices(nvml, selector)
    except Exception as exc:  # a bug in our discovery must not leave NVML initialised
        devices = []
        registry.guard(exc)
    if not devices:
        _unavailable(registry, "no GPU to monitor" if selector is None else f"none of devices={list(selector)} found")
        shutdown = nvml.function("nvmlShutdown")
        if shutdown is not None:
            try:
                shutdown()
            except Exception:
                pass
        return None
    return GpuSource(nvml, devices, clock=clock, max_age=max_age, pid=pid)


def _devices(nvml: Nvml, selector: tuple[int | str, ...] | None) -> list[Device]:
    n = count(nvml.call(None, "count", "nvmlDeviceGetCount"))
    if n is None:
        return []
    got = nvml.call(None, "driver_version", "nvmlSystemGetDriverVersion")
    driver = text(got) if got is not ABSENT else None
    if got is not ABSENT and driver is None:
        nvml.invalid(None, "driver_version", got)
    wanted = None if selector is None else {s.lower() if isinstance(s, str) else s for s in selector}
    devices = []
    for index in range(min(n, 1024)):
        handle = nvml.call(None, f"handle.{index}", "nvmlDeviceGetHandleByIndex", index)
        if handle is ABSENT:
            continue
        device = Device(index, handle, {})
        uuid = _identity(nvml, device, "uuid", "nvmlDeviceGetUUID")
        pci = nvml.call(device, "pci", "nvmlDeviceGetPciInfo", handle)
        bus_id = text(getattr(pci, "busId", None)) if pci is not ABSENT else None
        if pci is not ABSENT and bus_id is None:
            nvml.invalid(device, "pci", pci)
        if wanted is not None and not ({index, (uuid or "").lower(), (bus_id or "").lower()} & wanted):
            continue
        model = _identity(nvml, device, "name", "nvmlDeviceGetName")
        attrs = {names.HW_ID: uuid or bus_id or f"gpu{index}", names.HW_NAME: f"gpu{index}", names.HW_TYPE: "gpu",
                 names.HW_VENDOR: VENDOR}
        if model:
            attrs[names.HW_MODEL] = model
        if driver:
            attrs[names.HW_DRIVER_VERSION] = driver
        device.attributes = attrs
        device.energy = _energy_answers(nvml, device)
        devices.append(device)
    return devices


def _identity(nvml: Nvml, device: Device, read: str, function: str) -> str | None:
    got = nvml.call(device, read, function, device.handle)
    value = text(got) if got is not ABSENT else None
    if got is not ABSENT and value is None:
        nvml.invalid(device, read, got)
    return value


def _energy_answers(nvml: Nvml, device: Device) -> bool:
    mj = nvml.call(device, "energy", "nvmlDeviceGetTotalEnergyConsumption", device.handle)
    if mj is ABSENT:
        return False
    f = number(mj)
    if f is None or f < 0:
        nvml.invalid(device, "energy", mj)
        return False
    return True
