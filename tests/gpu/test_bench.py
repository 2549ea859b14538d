"""The GPU bench (energy meter cost with NVML faked) reports every figure it documents."""

from __future__ import annotations

from otel_ml._internal import energy
from otel_ml._internal.bench import gpu


def test_bench_gpu_reports_its_figures() -> None:
    """Tiny sizes; no timing asserted, only that each figure is there and positive."""
    r = gpu.measure(calls=2_000, rounds=1)
    for key in ("meter_one_device_ns", "meter_two_devices_ns", "baseline_ns", "meter_vs_baseline",
                "inference_without_meter_ns", "inference_with_meter_ns", "threads_wall_ns_per_call"):
        assert r[key] > 0, key
    assert energy.CURRENT.meter is None  # the bench leaves the process's meter as it found it
