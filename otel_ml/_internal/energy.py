"""Where energy per inference comes from: one process-wide meter, set when GPU monitoring is on.

An :class:`EnergyMeter` (``otel_ml.gpu`` provides the NVML one) reads the accelerators' energy
counters when a call starts and ends and says how many joules that call gets. Inferences and
generations ask the meter set here; with none set (no GPU, GPU monitoring off) they skip it at
the cost of one attribute read, and no energy metric exists (absent, not zero).
"""

from __future__ import annotations

from typing import Protocol


class EnergyMeter(Protocol):
    def start(self) -> object:
        """A token for a call beginning now (never raises)."""

    def stop(self, token: object) -> float | None:
        """Joules attributed to the call that began with ``token``, or None when unknown (never raises)."""


class _Current:
    meter: EnergyMeter | None = None


CURRENT = _Current()


def set_meter(meter: EnergyMeter | None) -> None:
    """Install (or remove, with None) the process's energy meter."""
    CURRENT.meter = meter
