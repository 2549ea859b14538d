"""The heavy stage: the torch and transformers instrumentors against the real libraries.

torch and transformers are not in ``.venv`` (scripts/install): there these tests skip.
``scripts/test_heavy`` runs them in ``.venv-heavy`` with ``OTEL_ML_REQUIRE_HEAVY=1``, where a
missing library fails the run instead of skipping it. Nothing is downloaded: every model and
tokenizer is built here from a config, with random weights (``HF_HUB_OFFLINE`` keeps it so).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

REQUIRE_ENV = "OTEL_ML_REQUIRE_HEAVY"
MISSING = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]

if MISSING and os.environ.get(REQUIRE_ENV) == "1":
    raise pytest.UsageError(f"{REQUIRE_ENV}=1 but {', '.join(MISSING)} cannot be imported: run scripts/test_heavy")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    """Every test builds its random weights from the same seed."""
    import torch

    torch.manual_seed(0)
    yield
