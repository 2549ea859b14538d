"""otel_ml.gpu's public surface is small and pinned; its names live in names.py and env.py."""

from __future__ import annotations

import inspect

import otel_ml.gpu
from otel_ml._internal import env, names
from otel_ml._internal.gpu import instruments


def test_public_names_are_pinned() -> None:
    """otel_ml.gpu exports exactly enable, disable and enabled."""
    assert sorted(otel_ml.gpu.__all__) == ["disable", "enable", "enabled"]
    assert list(inspect.signature(otel_ml.gpu.enable).parameters) == ["meter_provider", "nvml", "devices", "energy"]


def test_every_instrument_is_named_in_names_py() -> None:
    """Each GPU instrument is created from a names.py constant (the one list of metric names)."""
    created: list[str] = []

    class Meter:
        def __getattr__(self, kind: str) -> object:
            return lambda name, *args, **kwargs: created.append(name)

    class Provider:
        def get_meter(self, *args: object, **kwargs: object) -> Meter:
            return Meter()

    instruments.ProviderGpu(Provider())
    listed = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    assert len(created) == 10 and set(created) <= listed


def test_gpu_variables_are_declared() -> None:
    """OTEL_ML_GPU and OTEL_ML_GPU_ENERGY are constants of env.py."""
    assert (env.GPU, env.GPU_ENERGY) == ("OTEL_ML_GPU", "OTEL_ML_GPU_ENERGY")


def test_the_manual_lists_every_prometheus_name() -> None:
    """The module docstring (the user manual) names each metric as Prometheus shows it."""
    doc = otel_ml.gpu.__doc__ or ""
    for prom in ("hw_gpu_utilization_ratio", "hw_gpu_memory_usage_bytes", "hw_gpu_memory_limit_bytes",
                 "hw_gpu_memory_utilization_ratio", "hw_power_watts", "hw_energy_joules_total",
                 "hw_temperature_celsius", "hw_errors_total", "hw_status", "process_gpu_memory_usage_bytes",
                 "ml_inference_energy_joules", "ml_generation_energy_per_token_joules"):
        assert prom in doc, prom
