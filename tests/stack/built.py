"""A binary ``otel-ml stack build`` makes, as a test needs it: the test is skipped when it is not built,
and fails instead when ``OTEL_ML_REQUIRE_STACK=1`` (scripts/test sets it, so CI never skips silently)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from otel_ml._internal import env


def built(path: Path) -> str:
    """``path`` as a string when the file exists; otherwise skip (or fail, under REQUIRE_STACK)."""
    if not path.is_file():
        msg = f"{path} not built (run `otel-ml stack build`)"
        if os.environ.get(env.REQUIRE_STACK) == "1":
            pytest.fail(f"{msg} ({env.REQUIRE_STACK}=1)")
        pytest.skip(msg)
    return str(path)
