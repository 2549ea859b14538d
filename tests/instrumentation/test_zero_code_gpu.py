"""GPU metrics with no code change: ``opentelemetry-instrument`` loads otel_ml_gpu (entry point),
which exports the hw.* metrics of the GPUs NVML reports - here a fake NVML module put in place of
pynvml - and nothing at all where NVML has no GPU."""

from __future__ import annotations

from tests.instrumentation.zero_code import ROOT, run

FAKE = str(ROOT / "tests" / "instrumentation" / "fake_pynvml")
SCRIPT = "import time; time.sleep(0.1)"


def test_instrumentor_exports_hw_metrics_from_nvml() -> None:
    out = run(SCRIPT, env={"PYTHONPATH": f"{FAKE}:{ROOT}"})
    util = out.final("hw.gpu.utilization", **{"hw.name": "gpu0", "hw.gpu.task": "general"})
    assert len(util) == 1 and 0 <= util[0]["point"]["value"] <= 1
    assert util[0]["unit"] == "1" and util[0]["scope"] == "otel_ml.gpu"
    attrs = util[0]["attributes"]
    assert attrs["hw.type"] == "gpu" and attrs["hw.vendor"] == "NVIDIA"
    assert attrs["hw.model"] == "NVIDIA H100 80GB HBM3" and attrs["hw.driver_version"] == "550.54.15"
    assert attrs["hw.id"].startswith("GPU-")
    assert {m["attributes"]["hw.name"] for m in out.final("hw.gpu.memory.limit")} == {"gpu0", "gpu1"}
    assert [m["unit"] for m in out.final("hw.power", **{"hw.name": "gpu0"})] == ["W"]
    assert [m["unit"] for m in out.final("hw.energy", **{"hw.name": "gpu0"})] == ["J"]
    assert [m["unit"] for m in out.final("hw.temperature", **{"hw.name": "gpu1"})] == ["Cel"]


def test_disabled_or_without_gpu_nothing_is_exported() -> None:
    disabled = run(SCRIPT, env={"PYTHONPATH": f"{FAKE}:{ROOT}",
                                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otel_ml_gpu"})
    assert not [m for m in disabled.metrics if m["name"].startswith("hw.")]
    # The real pynvml on a machine without a GPU or driver: absent, not zero, and said once.
    real = run(SCRIPT)
    assert not [m for m in real.metrics if m["name"].startswith("hw.")]
    assert real.stderr.count("gpu_unavailable") == 1
    dropped = real.final("otel_ml.dropped", **{"otel_ml.reason": "gpu_unavailable"})
    assert [m["point"]["value"] for m in dropped] == [1]
