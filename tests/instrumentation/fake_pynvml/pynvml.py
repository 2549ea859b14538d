"""Stands in for the ``pynvml`` module in subprocess tests (this folder is put first on PYTHONPATH):
NVML with the recorded H100 + A10 of tests/gpu/fake_nvml.py, live - the energy counters advance at
the recorded power draw and utilisation moves - so rates and energy per inference are not zero."""

import math
import sys
import time

from tests.gpu.fake_nvml import FakeNvml, recorded

_START = time.monotonic()


class _Live(FakeNvml):
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> object:
        d = self._device(handle)
        return d.energy_mj + int(d.power_mw * (time.monotonic() - _START))  # mW x s = mJ

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> object:
        got = super().nvmlDeviceGetUtilizationRates(handle)
        swing = int(10 * math.sin(time.monotonic() - _START))
        got.gpu = max(0, min(100, got.gpu + swing))
        return got


_fake = recorded()
live = _Live(_fake.devices, driver=_fake.driver)
sys.modules[__name__] = live  # type: ignore[assignment]
