"""The GPU instruments of one meter provider: created once, each callback walking the live sources.

As in ``wiring.py``, the SDK keeps the first instrument of a name on a meter and drops later
callbacks, so instruments are made once per provider and read every :class:`GpuSource` linked to
it (weakly: a disabled or collected source disappears). Every value comes from the source's
latest sample, read when the reader collects; a value the sample lacks yields no observation.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from otel_ml._internal import forksafe, names
from otel_ml._internal.gpu.sample import DeviceSample
from otel_ml._internal.gpu.source import GpuSource
from otel_ml._internal.version import __version__

SCOPE = "otel_ml.gpu"
STATES = ("ok", "degraded", "failed")

Point = tuple[float, dict[str, Any]]
Gen = Callable[[DeviceSample], Iterable[Point]]


def _utilization(s: DeviceSample) -> Iterator[Point]:
    for task, ratio in s.utilization.items():
        yield ratio, {**s.device.attributes, names.GPU_TASK: task}


def _memory_usage(s: DeviceSample) -> Iterator[Point]:
    if s.memory_used is not None:
        yield s.memory_used, s.device.attributes


def _memory_limit(s: DeviceSample) -> Iterator[Point]:
    if s.memory_total is not None:
        yield s.memory_total, s.device.attributes


def _memory_utilization(s: DeviceSample) -> Iterator[Point]:
    if s.memory_used is not None and s.memory_total:
        yield s.memory_used / s.memory_total, s.device.attributes


def _power(s: DeviceSample) -> Iterator[Point]:
    if s.power is not None:
        yield s.power, s.device.attributes


def _energy(s: DeviceSample) -> Iterator[Point]:
    if s.energy is not None:
        yield s.energy, s.device.attributes


def _temperature(s: DeviceSample) -> Iterator[Point]:
    if s.temperature is not None:
        yield s.temperature, s.device.attributes


def _errors(s: DeviceSample) -> Iterator[Point]:
    for error_type, n in s.errors.items():
        yield n, {**s.device.attributes, names.ERROR_TYPE: error_type}


def _status(s: DeviceSample) -> Iterator[Point]:
    if s.state is not None:
        for state in STATES:
            yield int(state == s.state), {**s.device.attributes, names.HW_STATE: state}


def _process_memory(s: DeviceSample) -> Iterator[Point]:
    if s.process_memory is not None:
        yield s.process_memory, s.device.attributes


class _Sources:
    """Live sources in the order they were linked (weakly held)."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[GpuSource]] = {}
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")

    def add(self, source: GpuSource) -> None:
        key = id(source)

        def gone(_: object, key: int = key) -> None:
            with self._lock:
                self._refs.pop(key, None)

        with self._lock:
            self._refs[key] = weakref.ref(source, gone)

    def discard(self, source: GpuSource) -> None:
        with self._lock:
            ref = self._refs.get(id(source))
            if ref is not None and ref() is source:
                del self._refs[id(source)]

    def __iter__(self) -> Iterator[GpuSource]:
        with self._lock:
            refs = list(self._refs.values())
        for ref in refs:
            source = ref()
            if source is not None and not source.closed:
                yield source


class ProviderGpu:
    """The GPU instruments of one meter provider, created once."""

    def __init__(self, provider: Any) -> None:
        self.sources = _Sources()
        observe = self._observe
        meter = provider.get_meter(SCOPE, __version__)
        meter.create_observable_gauge(
            names.GPU_UTILIZATION, [observe(_utilization)], unit="1",
            description="Fraction of time the GPU spent on a task (general: kernels running; encoder; decoder; "
                        "memory_controller: device memory being read or written)")
        meter.create_observable_up_down_counter(names.GPU_MEMORY_USAGE, [observe(_memory_usage)], unit="By",
                                                description="GPU memory used")
        meter.create_observable_up_down_counter(names.GPU_MEMORY_LIMIT, [observe(_memory_limit)], unit="By",
                                                description="Size of the GPU memory")
        meter.create_observable_gauge(names.GPU_MEMORY_UTILIZATION, [observe(_memory_utilization)], unit="1",
                                      description="Fraction of GPU memory used")
        meter.create_observable_gauge(names.HW_POWER, [observe(_power)], unit="W",
                                      description="Instantaneous power drawn by the GPU")
        meter.create_observable_counter(names.HW_ENERGY, [observe(_energy)], unit="J",
                                        description="Energy consumed by the GPU since its driver loaded")
        meter.create_observable_gauge(names.HW_TEMPERATURE, [observe(_temperature)], unit="Cel",
                                      description="GPU core temperature")
        meter.create_observable_counter(names.HW_ERRORS, [observe(_errors)], unit="{error}",
                                        description="ECC errors of the GPU since its driver loaded")
        meter.create_observable_up_down_counter(
            names.HW_STATUS, [observe(_status)], unit="1",
            description="Operational status: 1 for the GPU's current state (ok, degraded, failed), 0 for the others")
        meter.create_observable_up_down_counter(names.PROCESS_GPU_MEMORY_USAGE, [observe(_process_memory)],
                                                unit="By", description="GPU memory used by this process")

    def _observe(self, gen: Gen) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            out: list[Observation] = []
            for source in self.sources:
                try:
                    for s in source.samples():
                        out.extend(Observation(value, attrs) for value, attrs in gen(s))
                except Exception as exc:
                    source.registry.guard(exc, "metrics")
            return out

        return callback


_INSTRUMENTS: weakref.WeakKeyDictionary[Any, ProviderGpu] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_LOCK")


def instruments_for(provider: Any) -> ProviderGpu:
    with _LOCK:
        found = _INSTRUMENTS.get(provider)
        if found is None:
            found = _INSTRUMENTS[provider] = ProviderGpu(provider)
        return found
