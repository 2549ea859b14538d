"""Turning GPU monitoring on and off per meter provider (``otel_ml.gpu.enable`` / ``disable``)."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics as otel_metrics

from otel_ml._internal import energy as energy_hook
from otel_ml._internal import env, forksafe, selftelemetry
from otel_ml._internal.gpu.instruments import instruments_for
from otel_ml._internal.gpu.source import GpuSource, check_devices, open_source

_LOCK = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_LOCK")
_ENABLED: weakref.WeakKeyDictionary[Any, GpuSource] = weakref.WeakKeyDictionary()


def energy_default() -> bool:
    """OTEL_ML_GPU_ENERGY: on unless set to false / 0 / no / off."""
    return env.choice(env.GPU_ENERGY, "true") not in ("0", "false", "no", "off")


def start(meter_provider: Any = None, *, nvml: object | None = None, devices: object = None,
          energy: bool | None = None, clock: Callable[[], float] = time.monotonic, max_age: float = 0.5,
          pid: Callable[[], int] = os.getpid) -> GpuSource | None:
    """Enable GPU monitoring on ``meter_provider``; the source, or None when there is no GPU to watch."""
    selector = check_devices(devices)
    if energy is not None and not isinstance(energy, bool):
        raise ValueError(f"energy must be a bool or None, got {energy!r}")
    provider = meter_provider if meter_provider is not None else otel_metrics.get_meter_provider()
    registry = selftelemetry.for_provider(provider)
    with _LOCK:
        existing = _ENABLED.get(provider)
        if existing is not None and not existing.closed:
            return existing
        source = open_source(nvml, selector, registry, clock=clock, max_age=max_age, pid=pid)
        if source is None:
            return None
        _ENABLED[provider] = source
        instruments_for(provider).sources.add(source)
        if energy_default() if energy is None else energy:
            meter = source.energy_meter()
            if meter is not None:
                energy_hook.set_meter(meter)
            else:
                registry.log_once("gpu_no_energy", "otel_ml: no monitored GPU reports its energy counter (Volta "
                                  "or newer needed); ml.inference.energy is not recorded")
    return source


def stop(meter_provider: Any = None) -> None:
    """Disable GPU monitoring on ``meter_provider``, or everywhere when None."""
    with _LOCK:
        if meter_provider is None:
            sources = list(_ENABLED.values())
            _ENABLED.clear()
        else:
            found = _ENABLED.pop(meter_provider, None)
            sources = [found] if found is not None else []
    for source in sources:
        if source.meter is not None and energy_hook.CURRENT.meter is source.meter:
            energy_hook.set_meter(None)
        source.close()


def enabled(meter_provider: Any = None) -> bool:
    """Whether GPU metrics are exported on ``meter_provider`` (on any provider when None)."""
    with _LOCK:
        if meter_provider is None:
            return any(not s.closed for s in _ENABLED.values())
        found = _ENABLED.get(meter_provider)
        return found is not None and not found.closed
