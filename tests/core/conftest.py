from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_ml._internal import selftelemetry
from otel_ml.testing import TelemetryCapture, capture_telemetry


@pytest.fixture(autouse=True)
def _fresh_selftelemetry() -> Iterator[None]:
    selftelemetry.DEFAULT.reset()
    yield
    selftelemetry.DEFAULT.reset()


@pytest.fixture
def cap() -> Iterator[TelemetryCapture]:
    with capture_telemetry() as capture:
        yield capture
