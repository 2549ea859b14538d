"""Local pre-aggregation handed to the OpenTelemetry SDK's export pipeline.

Why: an SDK ``histogram.record`` with three attributes costs 7-20 us on our machines (attribute
hashing, view matching, locks, exemplar filtering), so one inference that records duration,
confidence, batch size and predicted class through SDK instruments would cost more than the span
itself. otel_ml instead keeps plain-Python aggregates whose attribute sets are prepared once per
model (a bucket increment is ~0.1 us) and turns them into OTel ``Metric`` data only when a reader
collects.

How the data reaches the SDK: the OpenTelemetry specification's *MetricProducer* is "a bridge for
pre-aggregated metrics into a MetricReader". The Python SDK has no public MetricProducer yet, so
:class:`Producer` plays that role by wrapping each reader's collect callback: the reader first
collects the SDK's own instruments, then this module appends its ``ScopeMetrics`` to the same
``MetricsData``. Every reader of the provider - periodic OTLP export, a Prometheus pull reader, an
``InMemoryMetricReader`` in tests - therefore sees otel_ml metrics, with the reader's preferred
temporality (cumulative or delta), and nothing is replaced. If the SDK internals this relies on
are missing, the hook is skipped, counted in ``otel_ml.dropped`` (reason ``sdk_incompatible``) and
logged once; inference keeps working.

Trade-off, documented for users: SDK Views do not apply to these pre-aggregated streams (bucket
boundaries are chosen per instrument here, e.g. the GenAI semconv advisory boundaries).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider

# A reader's preferred temporality is keyed by the SDK's internal instrument classes.
from opentelemetry.sdk.metrics._internal.instrument import _Counter as _SdkCounter
from opentelemetry.sdk.metrics._internal.instrument import _Histogram as _SdkHistogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_ml._internal import names, selftelemetry
from otel_ml._internal.version import __version__

Attributes = Mapping[str, Any]
AttrKey = tuple[tuple[str, Any], ...]

try:  # the SDK's exemplar type; present since exemplars landed (1.26)
    from opentelemetry.sdk.metrics._internal.exemplar import Exemplar as _Exemplar
except ImportError:  # pragma: no cover - exercised only on SDKs we do not support
    _Exemplar = None  # type: ignore[assignment,misc]

SCOPE = InstrumentationScope("otel_ml", __version__)


@dataclass(frozen=True)
class InstrumentSpec:
    """What one pre-aggregated metric stream is called and how it is bucketed."""

    name: str
    unit: str
    description: str
    kind: str  # "histogram" | "counter"
    bounds: tuple[float, ...] = ()


class HistogramSeries:
    """Explicit-bucket histogram for one attribute set; callers hold the source's lock.

    Buckets follow the OTel data model: bucket ``i`` counts values in ``(bounds[i-1], bounds[i]]``,
    the last one ``(bounds[-1], +inf)``. One exemplar (the latest sampled-trace measurement) is
    kept per bucket, like the SDK's aligned-histogram reservoir, so Grafana can jump from a slow
    bucket to its trace.
    """

    __slots__ = ("attributes", "bounds", "count", "counts", "exemplars", "max", "min", "sum")

    def __init__(self, bounds: tuple[float, ...], attributes: Attributes) -> None:
        self.bounds = bounds
        self.attributes = dict(attributes)
        self.counts = [0] * (len(bounds) + 1)
        self.exemplars: list[tuple[float, int, int, int] | None] = [None] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def record(self, value: float, trace_id: int = 0, span_id: int = 0) -> None:
        i = bisect_left(self.bounds, value)
        self.counts[i] += 1
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if trace_id:
            self.exemplars[i] = (value, time.time_ns(), trace_id, span_id)

    def record_many(self, counts: Sequence[int], total: float, vmin: float, vmax: float) -> None:
        """Add pre-binned values (``counts`` aligned with this series' buckets)."""
        n = 0
        for i, c in enumerate(counts):
            if c:
                self.counts[i] += int(c)
                n += int(c)
        self.count += n
        self.sum += total
        if vmin < self.min:
            self.min = vmin
        if vmax > self.max:
            self.max = vmax

    def snapshot(self) -> tuple[int, float, list[int], float, float, list[tuple[float, int, int, int]]]:
        return (
            self.count,
            self.sum,
            list(self.counts),
            self.min,
            self.max,
            [e for e in self.exemplars if e is not None],
        )


class CounterSeries:
    """Monotonic sum for one attribute set; callers hold the source's lock."""

    __slots__ = ("attributes", "value")

    def __init__(self, attributes: Attributes) -> None:
        self.attributes = dict(attributes)
        self.value: float = 0


Series = HistogramSeries | CounterSeries


class MetricSource:
    """A set of pre-aggregated streams (one per model monitor, plus otel_ml's own).

    ``lock`` guards every series of the source: the hot path takes it once per inference and
    updates all its series inside, instead of one lock per instrument call.
    """

    def __init__(self, max_series_per_instrument: int = 2000) -> None:
        self.lock = threading.Lock()
        self.start_time_ns = time.time_ns()
        self._max_series = max_series_per_instrument
        self._streams: dict[InstrumentSpec, dict[AttrKey, Series]] = {}
        self._callbacks: list[Callable[[MetricSource], None]] = []
        _SOURCES_FOR_FORK.add(self)

    def series(self, spec: InstrumentSpec, attributes: Attributes) -> Any:
        """The series for ``attributes``, created on first use. Caller holds ``lock``.

        Past the cardinality cap, further attribute sets share one overflow series marked
        ``otel.metric.overflow=true`` (the SDK's convention), so memory stays bounded.
        """
        streams = self._streams.get(spec)
        if streams is None:
            streams = self._streams[spec] = {}
        key = tuple(sorted(attributes.items()))
        found = streams.get(key)
        if found is not None:
            return found
        if len(streams) >= self._max_series:
            selftelemetry.dropped("cardinality_cap", "metrics", detail=spec.name)
            attributes = {"otel.metric.overflow": True}
            key = (("otel.metric.overflow", True),)
            found = streams.get(key)
            if found is not None:
                return found
        created: Series = (
            HistogramSeries(spec.bounds, attributes) if spec.kind == "histogram" else CounterSeries(attributes)
        )
        streams[key] = created
        return created

    def on_collect(self, callback: Callable[[MetricSource], None]) -> None:
        """Run ``callback(self)`` before each collection (without the lock held)."""
        self._callbacks.append(callback)

    def snapshot(self) -> list[tuple[InstrumentSpec, list[tuple[dict[str, Any], Any]]]]:
        for callback in list(self._callbacks):
            try:
                callback(self)
            except Exception as exc:
                selftelemetry.dropped("collect_callback_error", "metrics", detail=exc)
        out: list[tuple[InstrumentSpec, list[tuple[dict[str, Any], Any]]]] = []
        with self.lock:
            for spec, streams in self._streams.items():
                points: list[tuple[dict[str, Any], Any]] = []
                for s in streams.values():
                    if isinstance(s, HistogramSeries):
                        if s.count:
                            points.append((s.attributes, s.snapshot()))
                    else:
                        points.append((s.attributes, s.value))
                if points:
                    out.append((spec, points))
        return out

    def _after_fork(self) -> None:
        # A lock held by another thread at fork time would stay locked forever in the child.
        self.lock = threading.Lock()


_SOURCES_FOR_FORK: weakref.WeakSet[MetricSource] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for source in list(_SOURCES_FOR_FORK):
        source._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


class Producer:
    """Bridges the :class:`MetricSource` objects of one ``MeterProvider`` into its readers."""

    def __init__(self, provider: MeterProvider) -> None:
        self._provider_ref = weakref.ref(provider)
        self._sources: weakref.WeakSet[MetricSource] = weakref.WeakSet()
        self._lock = threading.Lock()
        # Per delta reader: the previous cumulative value of each stream.
        self._delta_state: weakref.WeakKeyDictionary[MetricReader, dict[tuple[str, AttrKey], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self.hooked = False

    def add(self, source: MetricSource) -> None:
        with self._lock:
            self._sources.add(source)

    def hook_readers(self) -> bool:
        """Wrap the collect callback of every reader of the provider; True if all are hooked."""
        provider = self._provider_ref()
        if provider is None:
            return False
        try:
            consumer = provider._measurement_consumer
            readers = list(consumer._reader_storages.keys())
        except AttributeError as exc:
            selftelemetry.dropped("sdk_incompatible", "metrics", detail=exc)
            return False
        ok = True
        for reader in readers:
            ok = _hook(reader, self) and ok
        self.hooked = ok
        return ok

    def merge(self, reader: MetricReader, data: MetricsData | None) -> MetricsData | None:
        metrics = self.produce(reader)
        if not metrics:
            return data
        scope_metrics = ScopeMetrics(scope=SCOPE, metrics=metrics, schema_url="")
        if data is not None and data.resource_metrics:
            first = data.resource_metrics[0]
            merged_first = ResourceMetrics(
                resource=first.resource,
                scope_metrics=[*first.scope_metrics, scope_metrics],
                schema_url=first.schema_url,
            )
            return MetricsData(resource_metrics=[merged_first, *data.resource_metrics[1:]])
        provider = self._provider_ref()
        if provider is None:
            return data
        resource = provider._sdk_config.resource
        return MetricsData(
            resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[scope_metrics], schema_url="")]
        )

    def produce(self, reader: MetricReader) -> list[Metric]:
        now = time.time_ns()
        temporality_of = getattr(reader, "_instrument_class_temporality", {})
        hist_temp = temporality_of.get(_SdkHistogram, AggregationTemporality.CUMULATIVE)
        sum_temp = temporality_of.get(_SdkCounter, AggregationTemporality.CUMULATIVE)
        grouped: dict[InstrumentSpec, list[Any]] = {}
        with self._lock:
            sources = list(self._sources)
            delta_prev = self._delta_state.setdefault(reader, {})
        for source in sources:
            for spec, points in source.snapshot():
                bucket = grouped.setdefault(spec, [])
                for attributes, value in points:
                    bucket.append(
                        self._point(spec, attributes, value, source.start_time_ns, now, hist_temp, sum_temp,
                                    delta_prev)
                    )
        metrics: list[Metric] = []
        for spec, data_points in grouped.items():
            data_points = [p for p in data_points if p is not None]
            if not data_points:
                continue
            data: Histogram | Sum
            if spec.kind == "histogram":
                data = Histogram(data_points=data_points, aggregation_temporality=hist_temp)
            else:
                data = Sum(data_points=data_points, aggregation_temporality=sum_temp, is_monotonic=True)
            metrics.append(Metric(name=spec.name, description=spec.description, unit=spec.unit, data=data))
        return metrics

    def _point(self, spec: InstrumentSpec, attributes: dict[str, Any], value: Any, start: int, now: int,
               hist_temp: AggregationTemporality, sum_temp: AggregationTemporality,
               delta_prev: dict[tuple[str, AttrKey], Any]) -> HistogramDataPoint | NumberDataPoint | None:
        key = (spec.name, tuple(sorted(attributes.items())))
        if spec.kind == "histogram":
            count, total, counts, vmin, vmax, exemplars = value
            point_start = start
            if hist_temp == AggregationTemporality.DELTA:
                prev = delta_prev.get(key)
                delta_prev[key] = (count, total, counts, now)
                if prev is not None:
                    pcount, ptotal, pcounts, pstart = prev
                    count, total = count - pcount, total - ptotal
                    counts = [a - b for a, b in zip(counts, pcounts, strict=True)]
                    point_start = pstart
                if count == 0:
                    return None
            return HistogramDataPoint(
                attributes=attributes,
                start_time_unix_nano=point_start,
                time_unix_nano=now,
                count=count,
                sum=total,
                bucket_counts=counts,
                explicit_bounds=list(spec.bounds),
                # Under delta temporality min/max stay cumulative (documented): the pre-aggregated
                # series do not reset per reader.
                min=vmin,
                max=vmax,
                exemplars=_exemplars(exemplars),
            )
        point_start = start
        if sum_temp == AggregationTemporality.DELTA:
            prev = delta_prev.get(key)
            delta_prev[key] = (value, now)
            if prev is not None:
                value, point_start = value - prev[0], prev[1]
        return NumberDataPoint(attributes=attributes, start_time_unix_nano=point_start, time_unix_nano=now,
                               value=value)


def _exemplars(raw: Iterable[tuple[float, int, int, int]]) -> list[Any]:
    if _Exemplar is None:
        return []
    return [
        _Exemplar(filtered_attributes=None, value=v, time_unix_nano=t, span_id=sid, trace_id=tid)
        for v, t, tid, sid in raw
    ]


def _hook(reader: MetricReader, producer: Producer) -> bool:
    if getattr(reader, "_otel_ml_producer", None) is producer:
        return True
    original = getattr(reader, "_collect", None)
    setter = getattr(reader, "_set_collect_callback", None)
    if original is None or setter is None:
        selftelemetry.dropped("sdk_incompatible", "metrics", detail=type(reader).__name__)
        return False

    def collect(r: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
        data: MetricsData | None = original(r, timeout_millis=timeout_millis)
        try:
            return producer.merge(r, data)
        except Exception as exc:
            selftelemetry.dropped("producer_error", "metrics", detail=exc)
            return data

    setter(collect)
    reader._otel_ml_producer = producer  # type: ignore[attr-defined]
    return True


_PRODUCERS: weakref.WeakKeyDictionary[MeterProvider, Producer] = weakref.WeakKeyDictionary()
_PRODUCERS_LOCK = threading.Lock()


def producer_for(provider: MeterProvider) -> Producer:
    """The one :class:`Producer` of an SDK ``MeterProvider`` (created and hooked on first use)."""
    with _PRODUCERS_LOCK:
        producer = _PRODUCERS.get(provider)
        if producer is None:
            producer = _PRODUCERS[provider] = Producer(provider)
            producer.add(_SELF_SOURCE)
    if not producer.hooked:
        producer.hook_readers()
    return producer


# otel_ml's own telemetry (what it dropped), exported beside every model's metrics.
_SELF_SOURCE = MetricSource()
_DROPPED_SPEC = InstrumentSpec(
    name=names.DROPPED,
    unit="{item}",
    description="Telemetry otel_ml dropped or could not record, by reason and signal.",
    kind="counter",
)


def _refresh_dropped(source: MetricSource) -> None:
    counts = selftelemetry.snapshot()
    with source.lock:
        for (reason, signal), n in counts.items():
            source.series(_DROPPED_SPEC, {names.REASON: reason, names.SIGNAL: signal}).value = n


_SELF_SOURCE.on_collect(_refresh_dropped)
