"""Every use of OpenTelemetry SDK internals, in one place, behind a version probe.

otel_ml needs five things the SDK does not offer publicly (yet):

1. **A MetricProducer.** The specification's MetricProducer bridges pre-aggregated metrics into
   every MetricReader; the Python SDK has none. :func:`hook_provider` wraps the provider's
   measurement consumer's ``collect`` - the one callback every reader of the provider calls,
   including readers added later with ``MeterProvider.add_metric_reader`` (which look the
   callback up on the consumer when they are added) - and re-points the readers present now.
2. **A reader's preferred temporality**, to give delta readers deltas (:func:`temporalities`).
3. **What a sampler decides without looking at attributes** (:func:`sampler_traits`): with a
   parent-based sampler that drops unsampled children no span object is needed at all, and the
   SDK's built-in samplers never read span attributes, so they need not be built before the start.
4. **Adding attributes otel_ml built itself without re-validating them** (:func:`set_trusted_attributes`);
   ``Span.set_attributes`` spends about 1 us per value re-checking types we know are valid.
5. **No fork in the middle of a collection or export** (:func:`guard_fork`): a child forked while the
   metric reader thread collects or exports would inherit the SDK's locks held forever.
6. **The current span in one lookup** (:data:`CURRENT_CONTEXT`, :data:`SPAN_KEY`): the unsampled
   fast path of instrumented calls asks it once per call; ``trace.get_current_span`` goes through
   four Python functions to read one context variable.

:func:`probe` checks, once per process, that the internals exist with the expected shapes on a
throwaway provider; where they do not, every caller falls back to public API (or, for 1, the
metrics are not exported: counted as ``sdk_incompatible`` and logged once). The probe result
and the SDK version are in :data:`PROBE`. Tested against the oldest SDK ``pyproject.toml``
allows and the newest (``scripts/test``).

Internals used, all of them: ``MeterProvider._measurement_consumer`` (its ``collect``) and
``._sdk_config.resource``; ``MetricReader._collect``, ``._set_collect_callback`` and
``._instrument_class_temporality`` keyed by the SDK's ``_Counter`` / ``_Histogram`` classes;
``PeriodicExportingMetricReader._export_lock`` (taken around ``fork()`` too);
``ParentBased``'s five delegate attributes;
``opentelemetry.context._RUNTIME_CONTEXT._current_context`` (when it is the default
``ContextVarsRuntimeContext``) and ``opentelemetry.trace.propagation._SPAN_KEY``; ``SpanContext``'s
tuple layout (checked, :data:`SPAN_CONTEXT_TUPLE`);
``MeterProvider._measurement_consumer._lock`` (taken around ``fork()`` so no collection is cut
in half, :func:`guard_fork`); a span's ``_attributes`` (``BoundedAttributes``: ``_dict``,
``maxlen``, ``max_value_len``) and ``_end_time``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, StaticSampler, TraceIdRatioBased
from opentelemetry.sdk.version import __version__ as _sdk_version

from otel_ml._internal import forksafe

Merge = Callable[[MetricReader, "MetricsData | None"], "MetricsData | None"]

_PARENT_BASED_DELEGATES = ("_root", "_remote_parent_sampled", "_remote_parent_not_sampled",
                           "_local_parent_sampled", "_local_parent_not_sampled")
_HOOK_MARK = "_otel_ml_merge"
SDK_VERSION: str = _sdk_version


def _current_context_reader() -> tuple[Callable[[], Mapping[str, Any]], str | None]:
    """(a function returning the current OTel Context, the key its span is under or None)."""
    from opentelemetry import context as otel_context

    try:
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
        from opentelemetry.trace.propagation import _SPAN_KEY

        runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
        var = getattr(runtime, "_current_context", None)
        if type(runtime) is ContextVarsRuntimeContext and var is not None and isinstance(_SPAN_KEY, str):
            return var.get, _SPAN_KEY
        return otel_context.get_current, _SPAN_KEY if isinstance(_SPAN_KEY, str) else None
    except Exception:
        return otel_context.get_current, None


# ``CURRENT_CONTEXT().get(SPAN_KEY)`` is ``trace.get_current_span()`` before its checks (None where
# no span is set); SPAN_KEY None: the SDK moved it - use ``trace.get_current_span()``.
CURRENT_CONTEXT, SPAN_KEY = _current_context_reader()


def _span_context_is_tuple() -> bool:
    """Whether ``SpanContext`` is the tuple ``(trace_id, span_id, is_remote, trace_flags,
    trace_state, is_valid)`` it has been since the API's first release: ``ctx[5]`` and
    ``ctx[3] & 1`` then read validity and sampling without two property calls."""
    from opentelemetry.trace import SpanContext, TraceFlags

    try:
        for flags, trace_id in ((TraceFlags(1), 7), (TraceFlags(0), 7), (TraceFlags(1), 0)):
            ctx = SpanContext(trace_id=trace_id, span_id=9, is_remote=True, trace_flags=flags)
            if not isinstance(ctx, tuple) or len(ctx) != 6 or ctx[5] is not ctx.is_valid \
                    or ctx[3] is not ctx.trace_flags or bool(ctx[3] & 1) != ctx.trace_flags.sampled:
                return False
        return True
    except Exception:
        return False


SPAN_CONTEXT_TUPLE = _span_context_is_tuple()


@dataclass(frozen=True)
class Probe:
    """What the running SDK offers: ``producer_ok`` False means metrics cannot be bridged."""

    sdk_version: str
    producer_ok: bool
    temporality_ok: bool
    span_attributes_ok: bool
    sampler_ok: bool
    problem: str = ""


def _probe() -> Probe:
    problems: list[str] = []
    producer_ok = temporality_ok = span_ok = sampler_ok = False
    try:
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
        consumer = provider._measurement_consumer
        producer_ok = (callable(getattr(consumer, "collect", None))
                       and callable(getattr(reader, "_set_collect_callback", None))
                       and callable(getattr(reader, "_collect", None))
                       and isinstance(provider._sdk_config.resource, Resource))
        if not producer_ok:
            problems.append("no measurement consumer collect / reader collect callback")
        _counter, _histogram = _sdk_instrument_classes()
        table = getattr(reader, "_instrument_class_temporality", None)
        temporality_ok = isinstance(table, dict) and _counter in table and _histogram in table
        if not temporality_ok:
            problems.append("no per-instrument temporality on readers")
        lock = getattr(consumer, "_lock", None)
        if not (callable(getattr(lock, "acquire", None)) and callable(getattr(lock, "release", None))):
            problems.append("no measurement consumer lock (fork guard off)")
        provider.shutdown()
    except Exception as exc:  # anything unexpected: treat the internals as absent
        problems.append(f"metrics: {type(exc).__name__}: {exc}")
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        sampler = ParentBased(ALWAYS_ON)
        sampler_ok = all(hasattr(sampler, d) for d in _PARENT_BASED_DELEGATES)
        tracer_provider = TracerProvider(shutdown_on_exit=False)
        span = tracer_provider.get_tracer("otel_ml.probe").start_span("probe")
        bounded = getattr(span, "_attributes", None)
        span_ok = (type(getattr(bounded, "_dict", None)) is dict and hasattr(bounded, "maxlen")
                   and hasattr(bounded, "max_value_len") and getattr(span, "_end_time", 0) is None)
        span.end()
        tracer_provider.shutdown()
    except Exception as exc:
        problems.append(f"traces: {type(exc).__name__}: {exc}")
    return Probe(SDK_VERSION, producer_ok, temporality_ok, span_ok, sampler_ok, "; ".join(problems))


def _sdk_instrument_classes() -> tuple[type, type]:
    from opentelemetry.sdk.metrics._internal.instrument import _Counter, _Histogram

    return _Counter, _Histogram


_probe_lock = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_probe_lock")
_probe_result: Probe | None = None


def probe() -> Probe:
    """The probe result, computed on first call."""
    global _probe_result
    if _probe_result is None:
        with _probe_lock:
            if _probe_result is None:
                _probe_result = _probe()
    return _probe_result


# --- 1. the MetricProducer bridge ---------------------------------------------------------

def hook_provider(provider: MeterProvider, merge: Merge) -> bool:
    """Make every reader of ``provider``, now and added later, pass its data through ``merge``.

    Idempotent per provider. False when the SDK internals are missing (nothing is changed).
    """
    if not probe().producer_ok:
        return False
    try:
        consumer = provider._measurement_consumer
        current = consumer.collect
        if getattr(current, _HOOK_MARK, None) == merge:  # bound methods compare equal, not identical
            return True
        original = getattr(current, "_otel_ml_original", current)

        def collect(reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
            data: MetricsData | None = original(reader, timeout_millis=timeout_millis)
            return merge(reader, data)

        collect._otel_ml_merge = merge  # type: ignore[attr-defined]
        collect._otel_ml_original = original  # type: ignore[attr-defined]
        # An instance attribute shadows the method: readers added later pick it up.
        setattr(consumer, "collect", collect)  # noqa: B010 - assigning a method needs setattr for mypy
        for reader in list(consumer._reader_storages):
            if reader._collect is not None:
                reader._set_collect_callback(cast(Any, collect))
        return True
    except Exception:
        return False


# --- 5. collection and fork() ----------------------------------------------------------------
# The SDK's measurement consumer holds its lock for a whole collection (every asynchronous
# callback - process metrics read psutil for milliseconds - and every aggregation's own lock). A
# process that forks while its metric reader thread collects (gunicorn --preload, uvicorn
# --workers) hands the child that lock, and the aggregations' locks, held by a thread the child
# does not have: the child's first collection waits forever and its metrics never leave. The same
# holds for a PeriodicExportingMetricReader's ``_export_lock``, held for the whole export that
# follows each collection (milliseconds against a live collector): a child forked then never
# exports a metric again (seen as one gunicorn --preload worker in 5-15 missing from Prometheus
# while its spans arrived). The SDK renews its providers' own locks after fork, not these. So,
# before a fork, wait (bounded) for a collection and an export in progress to end by taking those
# locks, and release them on both sides after; an export lock still busy when the wait ends is
# replaced by a fresh one in the child.

_GUARDED: weakref.WeakSet[MeterProvider] = weakref.WeakSet()
_HELD: list[Any] = []
_BUSY_EXPORTS: list[Any] = []
FORK_WAIT_S = 5.0
EXPORT_WAIT_S = 2.0


def guard_fork(provider: MeterProvider) -> None:
    """No fork happens in the middle of one of ``provider``'s collections or exports (bounded wait)."""
    try:
        _GUARDED.add(provider)
    except TypeError:
        pass


def _export_locked_readers(provider: MeterProvider) -> list[Any]:
    consumer = getattr(provider, "_measurement_consumer", None)
    readers = list(getattr(consumer, "_reader_storages", None) or ())
    return [r for r in readers if hasattr(r, "_export_lock")]


def _before_fork() -> None:
    for provider in list(_GUARDED):
        try:
            lock = getattr(getattr(provider, "_measurement_consumer", None), "_lock", None)
            if lock is not None and lock.acquire(timeout=FORK_WAIT_S):
                _HELD.append(lock)
            for reader in _export_locked_readers(provider):
                export_lock = reader._export_lock
                if export_lock.acquire(timeout=EXPORT_WAIT_S):
                    _HELD.append(export_lock)
                else:
                    _BUSY_EXPORTS.append(reader)
        except Exception:
            continue


def _after_fork_in_parent() -> None:
    _BUSY_EXPORTS.clear()
    _release_held()


def _after_fork_in_child() -> None:
    while _BUSY_EXPORTS:
        try:
            _BUSY_EXPORTS.pop()._export_lock = threading.Lock()
        except Exception:
            continue
    _release_held()


def _release_held() -> None:
    while _HELD:
        try:
            _HELD.pop().release()
        except Exception:
            continue


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


def resource_of(provider: MeterProvider) -> Resource:
    resource: Resource = provider._sdk_config.resource
    return resource


# --- 2. temporality ------------------------------------------------------------------------

def temporalities(reader: MetricReader) -> tuple[AggregationTemporality, AggregationTemporality]:
    """(histogram, counter) temporality the reader prefers; cumulative when unknown."""
    cumulative = AggregationTemporality.CUMULATIVE
    if not probe().temporality_ok:
        return cumulative, cumulative
    _counter, _histogram = _sdk_instrument_classes()
    table: Mapping[type, AggregationTemporality] = getattr(reader, "_instrument_class_temporality", {})
    return table.get(_histogram, cumulative), table.get(_counter, cumulative)


# --- 3. samplers -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SamplerTraits:
    drops_unsampled_children: bool  # parent-based, and an unsampled parent means no span
    ignores_attributes: bool  # the decision never depends on span attributes


def sampler_traits(sampler: Sampler | None) -> SamplerTraits:
    if sampler is None or not probe().sampler_ok:
        return SamplerTraits(False, False)
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    drops = isinstance(sampler, ParentBased) and all(
        getattr(sampler, d, None) is ALWAYS_OFF
        for d in ("_remote_parent_not_sampled", "_local_parent_not_sampled"))
    return SamplerTraits(drops, _ignores_attributes(sampler))


def _ignores_attributes(sampler: object) -> bool:
    if isinstance(sampler, (StaticSampler, TraceIdRatioBased)):
        return True
    if isinstance(sampler, ParentBased):
        return all(_ignores_attributes(getattr(sampler, d, None)) for d in _PARENT_BASED_DELEGATES)
    return False


# --- 4. trusted span attributes ------------------------------------------------------------

_span_internals_ok: bool | None = None  # probed on first use, not at import


def set_trusted_attributes(span: Any, attributes: dict[str, Any]) -> None:
    """Add attributes otel_ml built itself (str, int, float, bool values) to a live span.

    On the SDK's span they go straight into its bounded attribute map when it has room and no
    value-length limit; any other span, or a full map, takes the public API.
    """
    global _span_internals_ok
    if _span_internals_ok is None:
        _span_internals_ok = probe().span_attributes_ok
    if _span_internals_ok:
        bounded = getattr(span, "_attributes", None)
        target = getattr(bounded, "_dict", None)
        if (
            type(target) is dict
            and getattr(bounded, "max_value_len", 0) is None
            and getattr(span, "_end_time", 0) is None
            and len(target) + len(attributes) <= (getattr(bounded, "maxlen", None) or 128)
        ):
            target.update(attributes)
            return
    span.set_attributes(attributes)


