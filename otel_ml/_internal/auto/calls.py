"""Call nesting and the ids to join, for instrumented model calls.

Only the **outermost** instrumented call is an inference: a Pipeline's steps, a search's best
estimator, a torch module's submodules, an sklearn model calling an ONNX session - all run inside
it, and :func:`outermost` tells them apart with one context variable (threads and asyncio tasks
each have their own).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter_ns
from typing import Any, Generic, TypeVar

from otel_ml._internal.logs import CURRENT_MODEL, READERS

INSIDE: ContextVar[bool] = ContextVar("otel_ml_inside_model_call", default=False)
T = TypeVar("T")
IDS: ContextVar[Sequence[Any] | None] = ContextVar("otel_ml_prediction_ids", default=None)


def quick_call(quick: Any, fn: Callable[..., Any], obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
               call: Any, add: Callable[[Any, Any, Any, int], bool],
               late: Callable[[Any, int, Any, BaseException | None], None]) -> Any:
    """Run one outermost model call whose parent span is unsampled (``quick.open()`` said so).

    A one-row result goes to the model's QuickLane as one append: ``add(quick, call, result,
    duration_ns)`` returns False where it does not take the result, and an exception from the
    model is re-raised as it came; both are then recorded through the full path by
    ``late(call, t0, result, exc)``, timed from the same start. ``call`` is what those two need of
    this call (the instrumentor's own tuple). While the model runs, logs carry its attributes where
    a log filter reads them, as on the full path.
    """
    model_token = CURRENT_MODEL.set(quick.model_attributes) if READERS.model_filter else None
    t0 = perf_counter_ns()
    try:
        result = fn(obj, *args, **kwargs)
    except BaseException as exc:
        if model_token is not None:
            CURRENT_MODEL.reset(model_token)
            model_token = None
        late(call, t0, None, exc)
        raise
    finally:
        if model_token is not None:
            CURRENT_MODEL.reset(model_token)
    duration = perf_counter_ns() - t0
    if not add(quick, call, result, duration):
        late(call, t0, result, None)
    return result


def record_late(monitor: Any, batch_size: int | None, method: str, t0: int, result: Any,
                exc: BaseException | None, record: Callable[[Any, Any], None] | None) -> None:
    """Record a call that already ran (from ``t0``, ``perf_counter_ns``) as the full path would
    have: ``record(inference, result)`` reads its output, ``exc`` is what it raised. No span is
    made: this is for calls :func:`quick_call` ran under an unsampled parent."""
    inference = monitor.inference(batch_size=batch_size, method=method)
    inf = inference.__enter__()
    inf.started_at(t0)
    if exc is None:
        if record is not None:
            record(inf, result)
        inference.__exit__(None, None, None)
    else:
        inference.__exit__(type(exc), exc, exc.__traceback__)


@contextmanager
def prediction_ids(ids: Sequence[Any] | Any) -> Iterator[None]:
    """Join the instrumented calls in this block to ``ids`` (one per row; a single id for one row)."""
    values = [ids] if isinstance(ids, (str, bytes, int)) else ids
    token = IDS.set(values)
    try:
        yield
    finally:
        IDS.reset(token)


class ObjectCache(Generic[T]):
    """What an instrumented object's calls need, found with one dictionary lookup per call.

    Keyed by ``id(obj)`` with a weak reference beside the value: the entry goes when its object is
    collected, and a new object that reuses the id is not mistaken for the old one. Objects that
    cannot be weakly referenced are not kept (their callers resolve them again each call).
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref[Any], T]] = {}

    def get(self, obj: Any) -> T | None:
        kept = self._items.get(id(obj))
        return kept[1] if kept is not None and kept[0]() is obj else None

    def put(self, obj: Any, value: T) -> None:
        key = id(obj)
        try:
            self._items[key] = (weakref.ref(obj, functools.partial(self._forget, key)), value)
        except TypeError:
            pass

    def _forget(self, key: int, ref: weakref.ref[Any]) -> None:
        entry = self._items.get(key)
        if entry is not None and entry[0] is ref:
            del self._items[key]

    def clear(self) -> None:
        self._items.clear()
