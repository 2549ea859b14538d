from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_ml._internal.selftelemetry import INTERNAL_ERROR, SelfTelemetry


@pytest.fixture
def tel() -> Iterator[SelfTelemetry]:
    """A fresh self-telemetry registry per test; no test may leave an internal error counted."""
    registry = SelfTelemetry()
    yield registry
    assert registry.count(INTERNAL_ERROR) == 0, registry.snapshot()
