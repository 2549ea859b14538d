"""``@monitor.observe``: one inference (or generation) per call of a predict function.

Works on plain functions, coroutines, generators and async generators. A generator of a
``generation`` model is a token stream: each yielded item is one output token (GenAI metrics);
any other generator is one inference spanning its iteration.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol, TypeVar, cast

from otel_ml._internal.inference import Inference, Outputs

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_KINDS = ("labels", "proba", "scores")


class Observed(Protocol):
    """The part of a monitor the decorator uses."""

    @property
    def task(self) -> str: ...

    def inference(self) -> Inference: ...

    def wrap_stream(self, stream: Any) -> Any: ...


def check_outputs(outputs: Outputs) -> None:
    if outputs is not None and not callable(outputs) and outputs not in OUTPUT_KINDS:
        raise ValueError(f"outputs must be one of {OUTPUT_KINDS} or a callable, got {outputs!r}")


def decorate(model: Observed, fn: F, outputs: Outputs) -> F:
    if not callable(fn):
        raise TypeError(f"observe() decorates a callable, got {type(fn).__name__}")
    if inspect.isasyncgenfunction(fn):
        return cast(F, _async_gen(model, fn))
    if inspect.isgeneratorfunction(fn):
        return cast(F, _gen(model, fn))
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with model.inference() as inf:
                result = await fn(*args, **kwargs)
                inf.record_output(result, outputs)
                return result

        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with model.inference() as inf:
            result = fn(*args, **kwargs)
            inf.record_output(result, outputs)
            return result

    return cast(F, wrapper)


def _gen(model: Observed, fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        if model.task == "generation":
            return cast(Iterator[Any], model.wrap_stream(fn(*args, **kwargs)))
        return _iterate(model, fn(*args, **kwargs))

    return wrapper


def _iterate(model: Observed, it: Iterator[Any]) -> Iterator[Any]:
    with model.inference():
        yield from it


def _async_gen(model: Observed, fn: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if model.task == "generation":
            return cast(AsyncIterator[Any], model.wrap_stream(fn(*args, **kwargs)))
        return _aiterate(model, fn(*args, **kwargs))

    return wrapper


async def _aiterate(model: Observed, it: AsyncIterator[Any]) -> AsyncIterator[Any]:
    with model.inference():
        async for item in it:
            yield item
