"""Stands in for the ``pynvml`` module in zero-code subprocess tests (this folder is put first on
PYTHONPATH): NVML with the recorded H100 + A10 of tests/gpu/fake_nvml.py."""

import sys

from tests.gpu.fake_nvml import recorded

sys.modules[__name__] = recorded()  # type: ignore[assignment]
