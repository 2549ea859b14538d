"""The in-memory capture every instrumentor test runs under (tests/instrumentation, tests/heavy)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from otel_ml._internal import env, selftelemetry
from otel_ml.testing import TelemetryCapture, capture_telemetry

# Identity and capture settings a developer's shell may have set: each test starts without them.
IDENTITY_ENV = (env.MODEL_NAME, env.MODEL_VERSION, env.MODEL_VARIANT, env.CLASS_NAMES, env.MODEL_MAP,
                env.REFERENCE_PROFILE, env.SKLEARN_TRANSFORM, env.CAPTURE_CONTENT)


@contextmanager
def instrumented(monkeypatch: pytest.MonkeyPatch, *instrumentors: Any,
                 none_of: tuple[str, ...] = ()) -> Iterator[TelemetryCapture]:
    """``instrumentors`` instrumented on a fresh capture, uninstrumented after; afterwards no
    ``internal_error`` was counted, nor any of the reasons in ``none_of``."""
    for name in IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)
    with capture_telemetry() as capture:
        for instrumentor in instrumentors:
            instrumentor.instrument(tracer_provider=capture.tracer_provider, meter_provider=capture.meter_provider)
        # The monitors are made by the instrumentors: they count into the default registry.
        selftelemetry.DEFAULT.reset()
        try:
            yield capture
        finally:
            for instrumentor in instrumentors:
                instrumentor.uninstrument()
    for reason in (selftelemetry.INTERNAL_ERROR, *none_of):
        assert selftelemetry.DEFAULT.count(reason) == 0, reason
