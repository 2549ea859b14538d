"""Fixtures for tests against the local stack (``otel-ml stack up``).

``backends`` is session-scoped: it checks every component's health once and skips the e2e tests
when the stack is down, or fails them when ``OTEL_ML_REQUIRE_STACK=1`` (scripts/test sets it, so
a broken stack fails CI instead of silently skipping).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from otel_ml._internal.stack import processes
from otel_ml._internal.stack.components import components
from otel_ml._internal.stack.paths import StackPaths
from tests.stack.backends import Backends

REPO = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "OTEL_ML_REQUIRE_STACK"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def backends() -> Backends:
    paths = StackPaths(REPO)
    down = [c for c in components(paths) if not processes.healthy(c.health_url)]
    if down:
        why = ", ".join(f"{c.name} ({c.health_url})" for c in down)
        msg = f"local stack not healthy: {why}; run `otel-ml stack up`"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{msg} ({REQUIRE_ENV}=1)")
        pytest.skip(msg)
    return Backends()
