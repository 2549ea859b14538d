"""configure(gpu=True) / OTEL_ML_GPU=true turn GPU metrics on; off by default. Global providers can
be set once per process, so each case runs in a fresh interpreter (with the fake NVML as pynvml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROGRAM = """
    import json, sys
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    if {fake}:
        from tests.gpu.fake_nvml import recorded
        sys.modules["pynvml"] = recorded()
    import otel_ml
    from otel_ml._internal import energy
    reader = InMemoryMetricReader()
    otel_ml.configure(service_name="gpu-test", metric_readers=[reader], logging_handler=False{gpu})
    m = otel_ml.ModelMonitor("clf", version="1")
    with m.inference() as inf:
        inf.record(predictions="a", confidence=0.5)
    data = reader.get_metrics_data()
    names = sorted({{x.name for rm in data.resource_metrics for sm in rm.scope_metrics for x in sm.metrics}})
    print(json.dumps({{"names": names, "meter": energy.CURRENT.meter is not None}}))
"""


def _run(*, fake: bool, gpu: str = "", **env: str) -> dict[str, object]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update({"OTEL_ML_EXPORTER": "none", **env})
    code = textwrap.dedent(_PROGRAM.format(fake=fake, gpu=gpu))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, cwd=ROOT,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_configure_gpu_true_exports_gpu_metrics_and_energy() -> None:
    """configure(gpu=True): hw.* metrics on the configured provider and energy per inference."""
    got = _run(fake=True, gpu=", gpu=True")
    names = got["names"]
    assert isinstance(names, list)
    assert {"hw.gpu.utilization", "hw.gpu.memory.usage", "hw.power", "hw.energy", "ml.inference.energy"} <= set(names)
    assert got["meter"] is True


def test_env_turns_it_on_and_it_is_off_by_default() -> None:
    """OTEL_ML_GPU=true turns GPU metrics on; without it (or with gpu=False) there are none."""
    assert "hw.power" in _run(fake=True, OTEL_ML_GPU="true")["names"]  # type: ignore[operator]
    off = _run(fake=True)
    assert not [n for n in off["names"] if n.startswith("hw.")]  # type: ignore[union-attr]
    assert off["meter"] is False
    assert "hw.power" not in _run(fake=True, gpu=", gpu=False", OTEL_ML_GPU="true")["names"]  # type: ignore[operator]


def test_configure_gpu_without_a_gpu_runs_on() -> None:
    """configure(gpu=True) with the real pynvml and no GPU (or no pynvml): no hw.* metric, no exception."""
    got = _run(fake=False, gpu=", gpu=True")
    names = got["names"]
    assert isinstance(names, list)
    assert "ml.inference.duration" in names
    assert not [n for n in names if n.startswith("hw.")] or os.path.exists("/dev/nvidiactl")
