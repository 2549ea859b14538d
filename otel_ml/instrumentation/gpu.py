"""Zero-code GPU metrics: ``opentelemetry-instrument`` turns on :mod:`otel_ml.gpu`.

With ``pip install 'otel-ml[gpu,auto]'`` (``nvidia-ml-py``, which provides ``pynvml``), every
service started with ``opentelemetry-instrument`` exports the GPUs' ``hw.*`` metrics and records
energy per inference on the meter provider the distro installed - no ``configure(gpu=True)``
needed. Without ``nvidia-ml-py`` the instrumentor is skipped (a dependency it lacks); without a
driver or GPU it logs one line and exports nothing (absent, not zero).
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_gpu`` turns it off, ``OTEL_ML_GPU_ENERGY=false``
keeps the metrics and leaves energy per inference off.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_ml._internal.auto.registry import export_self_telemetry
from otel_ml._internal.gpu import control

_instruments = ("nvidia-ml-py >= 12",)


class GpuInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """GPU monitoring on the instrumented process's meter provider (``nvml=`` for a stand-in NVML)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        self._provider = kwargs.get("meter_provider")
        export_self_telemetry(self._provider)  # otel_ml.dropped, e.g. gpu_unavailable
        control.start(self._provider, nvml=kwargs.get("nvml"))

    def _uninstrument(self, **kwargs: Any) -> None:
        control.stop(getattr(self, "_provider", None))
