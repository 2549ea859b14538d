"""Span handling shared by inferences and generations: start cheaply, end with trusted attributes.

:class:`SpanFactory` resolves the tracer per call (so a tracer provider installed after the
monitor is picked up), and learns once per provider what its sampler decides without a span:
under a parent-based sampler whose unsampled-parent branches are ``ALWAYS_OFF``, a child of an
unsampled parent would be a non-recording span, so none is created at all; with the SDK's
built-in samplers, which never read attributes, the model attributes are added after the start
without re-validation instead of being passed to ``start_span``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_ml._internal import sdk_seam, selftelemetry
from otel_ml._internal.logs import CURRENT_MODEL, READERS
from otel_ml._internal.version import __version__

_CURRENT_CONTEXT = sdk_seam.CURRENT_CONTEXT
_SPAN_KEY = sdk_seam.SPAN_KEY
_TUPLE = sdk_seam.SPAN_CONTEXT_TUPLE


class SpanFactory:
    """Starts spans of one instrumentation scope with a model's attributes."""

    __slots__ = ("_explicit", "_seen", "_skip_unsampled", "_start_attributes", "_tracer", "attributes",
                 "scope")

    def __init__(self, scope: str, attributes: Mapping[str, Any],
                 tracer_provider: trace.TracerProvider | None) -> None:
        self.scope = scope
        self.attributes = dict(attributes)
        self._explicit = tracer_provider
        self._seen: object = None
        self._tracer: trace.Tracer = trace.NoOpTracer()
        self._skip_unsampled = False
        # Attributes handed to start_span (seen by the sampler); None when the sampler never
        # reads them - they are then added right after the start (see set_trusted_attributes).
        self._start_attributes: dict[str, Any] | None = self.attributes

    def _resolve(self) -> trace.Tracer:
        provider = self._explicit or trace.get_tracer_provider()
        if provider is not self._seen:
            self._seen = provider
            self._tracer = provider.get_tracer(self.scope, __version__)
            sampler = provider.sampler if isinstance(provider, SdkTracerProvider) else None
            traits = sdk_seam.sampler_traits(sampler)
            self._skip_unsampled = traits.drops_unsampled_children
            self._start_attributes = None if traits.ignores_attributes else self.attributes
        return self._tracer

    def skips_now(self) -> bool:
        """True when :meth:`start` would return None here: the current span is a valid, unsampled
        parent and the sampler is parent-based with ``ALWAYS_OFF`` for such children."""
        if (self._explicit or trace.get_tracer_provider()) is not self._seen:
            self._resolve()
        if not self._skip_unsampled:
            return False
        current: Any = _CURRENT_CONTEXT().get(_SPAN_KEY) if _SPAN_KEY is not None else trace.get_current_span()
        try:
            parent = current.get_span_context()
            if _TUPLE:
                return parent[5] is True and not parent[3] & 1
            return bool(parent.is_valid) and not parent.trace_flags & 1
        except Exception:  # no span (None) or something else under the key
            return False

    def start(self, name: str, extra: Mapping[str, Any] | None = None) -> Any:
        """A span under the current one, or None where a parent-based sampler would drop it."""
        tracer = self._resolve()
        parent = trace.get_current_span().get_span_context()
        if self._skip_unsampled and parent.is_valid and not parent.trace_flags.sampled:
            return None
        start = self._start_attributes
        if extra:
            start = {**self.attributes, **extra} if start is not None else dict(extra)
        span = tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=start,
                                 record_exception=False, set_status_on_exception=False)
        if self._start_attributes is None and span.is_recording():
            sdk_seam.set_trusted_attributes(span, self.attributes)
        return span


def end_span(span: Any, end_attributes: dict[str, Any], error_type: str | None,
             exc: BaseException | None) -> tuple[int, int]:
    """Finish ``span``; (trace id, span id) for an exemplar when it was sampled, else (0, 0)."""
    trace_id = span_id = 0
    ctx = span.get_span_context()
    if ctx.trace_flags & 1:
        trace_id, span_id = ctx.trace_id, ctx.span_id
    if span.is_recording():
        if error_type is not None:
            end_attributes["error.type"] = error_type
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__ if exc is not None else None))
            if exc is not None:
                span.record_exception(exc)
        if end_attributes:
            sdk_seam.set_trusted_attributes(span, end_attributes)
    span.end()
    return trace_id, span_id


def enter(span: Any, model_attributes: dict[str, str] | None) -> tuple[Any, Any]:
    """Make ``span`` current and the model the one logs are attributed to; (model, context) tokens."""
    ctx_token = otel_context.attach(trace.set_span_in_context(span)) if span is not None else None
    model_token = CURRENT_MODEL.set(model_attributes) if model_attributes is not None and READERS.model_filter \
        else None
    return model_token, ctx_token


def restore(model_token: Any, ctx_token: Any, registry: selftelemetry.SelfTelemetry) -> None:
    """Undo what :func:`enter` set (never raises)."""
    try:
        if model_token is not None:
            CURRENT_MODEL.reset(model_token)
        if ctx_token is not None:
            otel_context.detach(ctx_token)
    except Exception as err:
        registry.dropped("context_error", "traces", detail=err)


def error_type(exc_type: type[BaseException]) -> str:
    """``error.type`` for an exception class: its qualified name, module-prefixed outside builtins."""
    module = exc_type.__module__
    if module in ("builtins", "__main__"):
        return exc_type.__qualname__
    return f"{module}.{exc_type.__qualname__}"
