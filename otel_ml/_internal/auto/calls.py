"""Call nesting and the ids to join, for instrumented model calls.

Only the **outermost** instrumented call is an inference: a Pipeline's steps, a search's best
estimator, a torch module's submodules, an sklearn model calling an ONNX session - all run inside
it, and :func:`outermost` tells them apart with one context variable (threads and asyncio tasks
each have their own).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

INSIDE: ContextVar[bool] = ContextVar("otel_ml_inside_model_call", default=False)
IDS: ContextVar[Sequence[Any] | None] = ContextVar("otel_ml_prediction_ids", default=None)


@contextmanager
def prediction_ids(ids: Sequence[Any] | Any) -> Iterator[None]:
    """Join the instrumented calls in this block to ``ids`` (one per row; a single id for one row)."""
    values = [ids] if isinstance(ids, (str, bytes, int)) else ids
    token = IDS.set(values)
    try:
        yield
    finally:
        IDS.reset(token)
