from __future__ import annotations

from collections.abc import Iterator

import pytest

import otel_ml.gpu
from otel_ml._internal import energy, selftelemetry
from otel_ml.testing import TelemetryCapture, capture_telemetry
from tests.gpu.fake_nvml import FakeNvml, recorded


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    """Each test starts and ends with GPU monitoring off, no energy meter and fresh self-telemetry."""
    selftelemetry.DEFAULT.reset()
    yield
    otel_ml.gpu.disable()
    energy.set_meter(None)
    selftelemetry.DEFAULT.reset()


@pytest.fixture
def nvml() -> FakeNvml:
    return recorded()


@pytest.fixture
def cap() -> Iterator[TelemetryCapture]:
    with capture_telemetry() as capture:
        yield capture
