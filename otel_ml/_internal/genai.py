"""LLM generations: GenAI semantic-convention metrics and spans, exact for streaming.

One :class:`Generation` records

* ``gen_ai.server.request.duration`` - request start to last token (or error),
* ``gen_ai.server.time_to_first_token`` - request start to the *real arrival* of the first
  token: the moment the wrapped iterator produced it, before the caller consumed it,
* ``gen_ai.server.time_per_output_token`` - (last token - first token) / (output tokens - 1),
* ``gen_ai.client.token.usage`` - input and output tokens (``gen_ai.token.type``),

with ``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.provider.name``, ``error.type``
and the model's ``ml.model.*`` attributes, using the semantic conventions' advisory buckets.
TTFT and TPOT are recorded for successful responses only, as the conventions specify.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from otel_ml._internal import energy, instruments, labels, names, selftelemetry, spans
from otel_ml._internal.context import ModelContext


class Generation:
    """One generation in progress. Use as a context manager, or through ``monitor.wrap_stream``.

    Args:
        operation: ``gen_ai.operation.name`` (``chat``, ``text_completion``, ``generate_content``...).
        request_model: ``gen_ai.request.model``; defaults to the monitor's model name.
        provider: ``gen_ai.provider.name`` (e.g. ``vllm``, ``openai``); omitted when None.
        input_tokens: prompt tokens, if known up front.
        response_model: ``gen_ai.response.model``, if known up front (or later via ``set_usage``).
    """

    def __init__(
        self,
        ctx: ModelContext,
        *,
        operation: str = "chat",
        request_model: str | None = None,
        provider: str | None = None,
        input_tokens: int | None = None,
        response_model: str | None = None,
        attach_context: bool = True,
    ) -> None:
        if not isinstance(operation, str) or not operation:
            raise ValueError(f"operation must be a non-empty str, got {operation!r}")
        self._ctx = ctx
        attrs: dict[str, Any] = dict(ctx.attributes)
        attrs[names.GENAI_OPERATION_NAME] = operation
        registry = ctx.selftelemetry
        attrs[names.GENAI_REQUEST_MODEL] = (_text(request_model, registry) or ctx.name)[:128]
        provider = _text(provider, registry)
        if provider:
            attrs[names.GENAI_PROVIDER_NAME] = provider[:64]
        self._attrs = attrs
        self._response_model = _text(response_model, registry)
        self.input_tokens: int | None = _tokens(input_tokens, ctx.selftelemetry)
        self.output_tokens = 0
        self._usage_output: int | None = None
        self._t0 = time.perf_counter_ns()
        self._first: int | None = None
        self._last: int | None = None
        self._span: Any = None
        self._token: Any = None
        self._model_token: Any = None
        self._attach = attach_context
        self._energy: Any = None
        self._ends_with_stream = False
        self._done = False

    # -- lifecycle
    def __enter__(self) -> Generation:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.end(exc)

    def start(self) -> None:
        ctx = self._ctx
        try:
            name = f"{self._attrs[names.GENAI_OPERATION_NAME]} {self._attrs[names.GENAI_REQUEST_MODEL]}"
            self._span = ctx.genai_spans.start(name, self._attrs)
            if self._attach:
                self._model_token, self._token = spans.enter(self._span, ctx.span_attributes)
        except Exception as exc:
            ctx.selftelemetry.dropped("span_start_error", "traces", detail=exc)
        meter = energy.CURRENT.meter
        self._energy = (meter, meter.start()) if meter is not None else None
        self._t0 = time.perf_counter_ns()

    def token(self, n: int = 1) -> None:
        """Mark ``n`` output tokens as produced now; the first call fixes time-to-first-token."""
        now = time.perf_counter_ns()
        if self._first is None:
            self._first = now
        self._last = now
        if type(n) is int and 0 <= n <= _MAX_TOKENS:
            self.output_tokens += n
        else:
            self._ctx.selftelemetry.dropped("invalid_token_count", "metrics", detail=n)

    def first_token(self) -> None:
        """Mark the first token's arrival without counting a token (for servers that count later)."""
        if self._first is None:
            self._first = time.perf_counter_ns()

    def set_usage(self, *, input_tokens: int | None = None, output_tokens: int | None = None,
                  response_model: str | None = None) -> None:
        """Exact token counts from the server's usage report (override counted tokens)."""
        registry = self._ctx.selftelemetry
        if input_tokens is not None:
            self.input_tokens = _tokens(input_tokens, registry)
        if output_tokens is not None:
            self._usage_output = _tokens(output_tokens, registry)
        response_model = _text(response_model, registry)
        if response_model:
            self._response_model = response_model

    def end(self, exc: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        registry = self._ctx.selftelemetry
        try:
            self._record(exc)
        except Exception as err:
            registry.guard(err, "metrics")  # re-raises in strict mode: the context still goes back
        finally:
            spans.restore(self._model_token, self._token, registry)

    # -- recording
    def _record(self, exc: BaseException | None) -> None:
        end = time.perf_counter_ns()
        duration = (end - self._t0) * 1e-9
        output = self._usage_output if self._usage_output is not None else self.output_tokens
        error_type = spans.error_type(type(exc)) if exc is not None else None
        trace_id = span_id = 0
        span = self._span
        if span is not None:
            end_attrs: dict[str, Any] = {"gen_ai.usage.output_tokens": output}
            if self.input_tokens is not None:
                end_attrs["gen_ai.usage.input_tokens"] = self.input_tokens
            if self._response_model:
                end_attrs[names.GENAI_RESPONSE_MODEL] = self._response_model[:128]
            trace_id, span_id = spans.end_span(span, end_attrs, error_type, exc)

        ctx = self._ctx
        source = ctx.source
        caps = labels.genai_caps(ctx, ctx.selftelemetry)  # metrics get capped values; the span keeps the real ones
        base = caps.metric_attributes(self._attrs)
        with source.lock:
            dur_attrs = base if error_type is None else {**base, names.ERROR_TYPE: caps.error_type(error_type)}
            source.series(instruments.GENAI_DURATION, dur_attrs).record(duration, trace_id, span_id)
            if error_type is None and self._first is not None:
                ttft = (self._first - self._t0) * 1e-9
                source.series(instruments.GENAI_TTFT, base).record(ttft, trace_id, span_id)
                if output > 1 and self._last is not None and self._last > self._first:
                    tpot = (self._last - self._first) * 1e-9 / (output - 1)
                    source.series(instruments.GENAI_TPOT, base).record(tpot, trace_id, span_id)
            if self.input_tokens is not None:
                source.series(instruments.GENAI_TOKENS, {**base, names.GENAI_TOKEN_TYPE: "input"}).record(
                    self.input_tokens)
            source.series(instruments.GENAI_TOKENS, {**base, names.GENAI_TOKEN_TYPE: "output"}).record(output)
        if self._energy is not None:
            meter, token = self._energy
            joules = meter.stop(token)
            if joules is not None:
                with source.lock:
                    source.series(instruments.GENERATION_ENERGY, base).record(joules, trace_id, span_id)
                    if output > 0:
                        source.series(instruments.GENERATION_ENERGY_PER_TOKEN, base).record(
                            joules / output, trace_id, span_id)

    # -- stream wrappers
    def _count(self, tokens_of: Callable[[Any], int] | None, item: Any) -> int:
        if tokens_of is None:
            return 1
        try:
            n = tokens_of(item)
        except Exception as exc:
            self._ctx.selftelemetry.dropped("invalid_token_count", "metrics", detail=exc)
            return 1
        if type(n) is int and 0 <= n <= _MAX_TOKENS:
            return n
        self._ctx.selftelemetry.dropped("invalid_token_count", "metrics", detail=type(n).__name__)
        return 1

    def wrap(self, stream: Iterable[Any], tokens_of: Callable[[Any], int] | None = None) -> Iterator[Any]:
        """Yield from ``stream``; each item is ``tokens_of(item)`` tokens (default 1).

        Inside ``with monitor.generation() as gen`` the block's end ends the generation (so a
        usage report read after the stream still counts); a stream from ``wrap_stream`` ends it
        when exhausted, closed or failed.
        """
        try:
            for item in stream:
                self.token(self._count(tokens_of, item))
                yield item
        except BaseException as exc:
            if self._ends_with_stream:
                self.end(None if isinstance(exc, GeneratorExit) else exc)
            raise
        if self._ends_with_stream:
            self.end(None)

    async def wrap_async(self, stream: AsyncIterable[Any],
                         tokens_of: Callable[[Any], int] | None = None) -> AsyncIterator[Any]:
        """Async form of :meth:`wrap`."""
        try:
            async for item in stream:
                self.token(self._count(tokens_of, item))
                yield item
        except BaseException as exc:
            if self._ends_with_stream:
                self.end(None if isinstance(exc, GeneratorExit) else exc)
            raise
        if self._ends_with_stream:
            self.end(None)


def wrap_stream(ctx: ModelContext, stream: Iterable[Any] | AsyncIterable[Any],
                tokens_of: Callable[[Any], int] | None = None, *, operation: str = "chat",
                request_model: str | None = None, provider: str | None = None,
                input_tokens: int | None = None,
                response_model: str | None = None) -> Iterator[Any] | AsyncIterator[Any]:
    # The span must not become "current" across yields: the consumer of a generator runs in
    # its own context, and attaching there would leak our span into unrelated code.
    gen = Generation(ctx, operation=operation, request_model=request_model, provider=provider,
                     input_tokens=input_tokens, response_model=response_model, attach_context=False)
    gen._ends_with_stream = True
    gen.start()
    if isinstance(stream, AsyncIterable):
        return gen.wrap_async(stream, tokens_of)
    return gen.wrap(stream, tokens_of)


_MAX_TOKENS = 10**12
"""More tokens than this in one call is not a count but garbage (and would overflow a float)."""


def _text(value: Any, registry: selftelemetry.SelfTelemetry) -> str | None:
    """A model or provider name: a str, else None (anything else is counted, never str()-ed or truth-tested)."""
    if value is None or isinstance(value, str):
        return value
    registry.dropped("invalid_model_name", "metrics", detail=type(value).__name__)
    return None


def _tokens(value: Any, registry: selftelemetry.SelfTelemetry) -> int | None:
    if value is None:
        return None
    if type(value) is int and 0 <= value <= _MAX_TOKENS:
        return value
    registry.dropped("invalid_token_count", "metrics", detail=value)
    return None
