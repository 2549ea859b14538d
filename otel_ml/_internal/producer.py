"""Local pre-aggregation handed to the OpenTelemetry SDK's export pipeline.

Why: an SDK ``histogram.record`` with three attributes costs 7-20 us on our machines (attribute
hashing, view matching, locks, exemplar filtering), so one inference that records duration,
confidence, batch size and predicted class through SDK instruments would cost more than the span
itself. otel_ml instead keeps plain-Python aggregates whose attribute sets are prepared once per
model (a bucket increment is ~0.1 us) and turns them into OTel ``Metric`` data only when a reader
collects.

How the data reaches the SDK: the OpenTelemetry specification's *MetricProducer* is "a bridge for
pre-aggregated metrics into a MetricReader". The Python SDK has no public MetricProducer yet, so
:class:`Producer` plays that role through :func:`otel_ml._internal.sdk_seam.hook_provider`: every
reader of the provider - periodic OTLP export, a Prometheus pull reader, an
``InMemoryMetricReader`` in tests, one added later - first collects the SDK's own instruments,
then this module appends its ``ScopeMetrics`` to the same ``MetricsData``, with the reader's
preferred temporality (cumulative or delta). If the SDK internals this relies on are missing,
nothing is hooked, ``sdk_incompatible`` is counted and logged once; inference keeps working.

Any number of sources (one per live monitor, plus otel_ml's self-telemetry) feed one producer
per provider. Two sources with identical attribute sets (a monitor re-created before the old one
was closed) are merged into one point, so a reader never sees duplicate series.

Trade-off, documented for users: SDK Views do not apply to these pre-aggregated streams (bucket
boundaries are chosen per instrument here, e.g. the GenAI semconv advisory boundaries).
"""

from __future__ import annotations

import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import Exemplar, MeterProvider
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

from otel_ml._internal import forksafe, names, sdk_seam, selftelemetry
from otel_ml._internal.version import __version__

Attributes = Mapping[str, Any]
AttrKey = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class InstrumentSpec:
    """What one pre-aggregated metric stream is called, how it is bucketed, and its scope."""

    name: str
    unit: str
    description: str
    kind: str  # "histogram" | "counter"
    bounds: tuple[float, ...] = ()
    scope: str = "otel_ml.inference"


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

    def record_values(self, values: Sequence[float]) -> None:
        """Add plain values without exemplars (a batch folded from :class:`~otel_ml._internal.inference.QuickLane`)."""
        if not values:
            return
        bounds = self.bounds
        counts = self.counts
        if len(values) < 64:
            for v in values:
                counts[bisect_left(bounds, v)] += 1
            total = sum(values)
            low = min(values)
            high = max(values)
        else:
            import numpy as np

            arr = np.asarray(values, dtype=np.float64)
            binned = np.bincount(np.searchsorted(np.asarray(bounds, dtype=np.float64), arr, side="left"),
                                 minlength=len(counts)).tolist()
            for i, c in enumerate(binned):
                if c:
                    counts[i] += c
            total = float(arr.sum())
            low = float(arr.min())
            high = float(arr.max())
        self.count += len(values)
        self.sum += total
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high

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


class CounterSeries:
    """Monotonic sum for one attribute set; callers hold the source's lock."""

    __slots__ = ("attributes", "value")

    def __init__(self, attributes: Attributes) -> None:
        self.attributes = dict(attributes)
        self.value: float = 0


Series = HistogramSeries | CounterSeries


@dataclass
class _HistPoint:
    """A histogram snapshot taken under a source's lock; merged across sources by attributes."""

    count: int
    total: float
    counts: list[int]
    vmin: float
    vmax: float
    exemplars: list[tuple[float, int, int, int]]
    start: int

    def add(self, other: _HistPoint) -> None:
        self.count += other.count
        self.total += other.total
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.vmin = min(self.vmin, other.vmin)
        self.vmax = max(self.vmax, other.vmax)
        self.exemplars += other.exemplars
        self.start = min(self.start, other.start)


class MetricSource:
    """A set of pre-aggregated streams (one per model monitor, plus otel_ml's own).

    ``lock`` guards every series of the source: the hot path takes it once per inference and
    updates all its series inside, instead of one lock per instrument call.
    """

    def __init__(self, max_series_per_instrument: int = names.MAX_SERIES_PER_INSTRUMENT,
                 registry: selftelemetry.SelfTelemetry | None = None) -> None:
        self.lock = threading.Lock()
        self.start_time_ns = time.time_ns()
        self._max_series = max_series_per_instrument
        self._streams: dict[InstrumentSpec, dict[AttrKey, Series]] = {}
        self._callbacks: list[Callable[[MetricSource], None]] = []
        self._selftelemetry = registry or selftelemetry.DEFAULT
        forksafe.renew_after_fork(self, "lock")

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
            self._selftelemetry.dropped("cardinality_cap", "metrics", detail=spec.name)
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

    def snapshot(self) -> list[tuple[InstrumentSpec, list[tuple[dict[str, Any], AttrKey, Any]]]]:
        """Every non-empty series as (spec, [(attributes, key, histogram point or counter value)])."""
        for callback in list(self._callbacks):
            try:
                callback(self)
            except Exception as exc:
                self._selftelemetry.guard(exc, "metrics", "collect_callback_error")
        out: list[tuple[InstrumentSpec, list[tuple[dict[str, Any], AttrKey, Any]]]] = []
        start = self.start_time_ns
        with self.lock:
            for spec, streams in self._streams.items():
                points: list[tuple[dict[str, Any], AttrKey, Any]] = []
                for key, s in streams.items():
                    if isinstance(s, HistogramSeries):
                        if s.count:
                            points.append((s.attributes, key, _HistPoint(
                                s.count, s.sum, list(s.counts), s.min, s.max,
                                [e for e in s.exemplars if e is not None], start)))
                    else:
                        points.append((s.attributes, key, (s.value, start)))
                if points:
                    out.append((spec, points))
        return out



class Producer:
    """Bridges the :class:`MetricSource` objects of one ``MeterProvider`` into its readers."""

    def __init__(self, provider: MeterProvider) -> None:
        self._provider_ref = weakref.ref(provider)
        self._sources: weakref.WeakSet[MetricSource] = weakref.WeakSet()
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")
        # Per delta reader: the previous cumulative value of each stream.
        self._delta_state: weakref.WeakKeyDictionary[MetricReader, dict[tuple[str, AttrKey], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self.hooked = False
        self._self_source = MetricSource()
        self._self_source.on_collect(self._refresh_dropped)
        self._sources.add(self._self_source)

    @property
    def registry(self) -> selftelemetry.SelfTelemetry:
        return selftelemetry.for_provider(self._provider_ref())

    def add(self, source: MetricSource) -> None:
        with self._lock:
            self._sources.add(source)

    def remove(self, source: MetricSource) -> None:
        with self._lock:
            self._sources.discard(source)

    def hook(self) -> bool:
        """Bridge into every reader of the provider (now and later); True once hooked."""
        provider = self._provider_ref()
        if provider is None:
            return False
        if not self.hooked:
            self.hooked = sdk_seam.hook_provider(provider, self.merge)
            sdk_seam.guard_fork(provider)
            if not self.hooked:
                registry = self.registry
                registry.dropped("sdk_incompatible", "metrics", detail=sdk_seam.probe().problem or None)
                registry.log_once("sdk_incompatible:explained", "otel_ml: opentelemetry-sdk %s lacks what otel_ml's "
                                  "metric bridge needs (%s); ml.* inference metrics are not exported",
                                  sdk_seam.SDK_VERSION, sdk_seam.probe().problem)
        return self.hooked

    def merge(self, reader: MetricReader, data: MetricsData | None) -> MetricsData | None:
        """Append otel_ml's metrics to what the SDK collected for ``reader`` (never raises)."""
        try:
            scope_metrics = self.produce(reader)
        except Exception as exc:
            self.registry.guard(exc, "metrics")
            return data
        if not scope_metrics:
            return data
        if data is not None and data.resource_metrics:
            first = data.resource_metrics[0]
            merged_first = ResourceMetrics(
                resource=first.resource,
                scope_metrics=[*first.scope_metrics, *scope_metrics],
                schema_url=first.schema_url,
            )
            return MetricsData(resource_metrics=[merged_first, *data.resource_metrics[1:]])
        provider = self._provider_ref()
        if provider is None:
            return data
        return MetricsData(resource_metrics=[ResourceMetrics(
            resource=sdk_seam.resource_of(provider), scope_metrics=scope_metrics, schema_url="")])

    def produce(self, reader: MetricReader) -> list[ScopeMetrics]:
        now = time.time_ns()
        hist_temp, sum_temp = sdk_seam.temporalities(reader)
        with self._lock:
            sources = list(self._sources)
            delta_prev = self._delta_state.setdefault(reader, {})
        # spec -> attribute key -> merged point (identical attribute sets from two sources add up)
        grouped: dict[InstrumentSpec, dict[AttrKey, tuple[dict[str, Any], Any]]] = {}
        for source in sources:
            for spec, points in source.snapshot():
                bucket = grouped.setdefault(spec, {})
                for attributes, key, value in points:
                    seen = bucket.get(key)
                    if seen is None:
                        bucket[key] = (attributes, value)
                    elif spec.kind == "histogram":
                        seen[1].add(value)
                    else:
                        bucket[key] = (attributes, (seen[1][0] + value[0], min(seen[1][1], value[1])))
        by_scope: dict[str, list[Metric]] = {}
        for spec, merged in grouped.items():
            data: Histogram | Sum
            if spec.kind == "histogram":
                hist_points = [p for key, (attributes, value) in merged.items()
                               if (p := self._hist_point(spec, attributes, key, value, now, hist_temp,
                                                         delta_prev)) is not None]
                if not hist_points:
                    continue
                data = Histogram(data_points=hist_points, aggregation_temporality=hist_temp)
            else:
                sum_points = [self._sum_point(spec, attributes, key, value, now, sum_temp, delta_prev)
                              for key, (attributes, value) in merged.items()]
                data = Sum(data_points=sum_points, aggregation_temporality=sum_temp, is_monotonic=True)
            by_scope.setdefault(spec.scope, []).append(
                Metric(name=spec.name, description=spec.description, unit=spec.unit, data=data))
        return [ScopeMetrics(scope=InstrumentationScope(scope, __version__), metrics=metrics, schema_url="")
                for scope, metrics in by_scope.items()]

    @staticmethod
    def _hist_point(spec: InstrumentSpec, attributes: dict[str, Any], key: AttrKey, h: _HistPoint, now: int,
                    temporality: AggregationTemporality,
                    delta_prev: dict[tuple[str, AttrKey], Any]) -> HistogramDataPoint | None:
        state_key = (spec.name, key)
        count, total, counts, start = h.count, h.total, h.counts, h.start
        if temporality == AggregationTemporality.DELTA:
            prev = delta_prev.get(state_key)
            delta_prev[state_key] = (count, total, counts, now)
            # A source that went away (a closed monitor) can make a stream shrink: that is a
            # reset, reported from zero rather than as a negative delta.
            if prev is not None and prev[0] <= count:
                pcount, ptotal, pcounts, pstart = prev
                count, total = count - pcount, total - ptotal
                counts = [a - b for a, b in zip(counts, pcounts, strict=True)]
                start = pstart
            if count == 0:
                return None
        return HistogramDataPoint(
            attributes=attributes,
            start_time_unix_nano=start,
            time_unix_nano=now,
            count=count,
            sum=total,
            bucket_counts=counts,
            explicit_bounds=list(spec.bounds),
            # Under delta temporality min/max stay cumulative (documented): the pre-aggregated
            # series do not reset per reader.
            min=h.vmin,
            max=h.vmax,
            exemplars=[Exemplar(filtered_attributes=None, value=v, time_unix_nano=t, span_id=sid,
                                trace_id=tid) for v, t, tid, sid in h.exemplars],
        )

    @staticmethod
    def _sum_point(spec: InstrumentSpec, attributes: dict[str, Any], key: AttrKey, value: tuple[float, int],
                   now: int, temporality: AggregationTemporality,
                   delta_prev: dict[tuple[str, AttrKey], Any]) -> NumberDataPoint:
        state_key = (spec.name, key)
        total_value, start = value
        if temporality == AggregationTemporality.DELTA:
            prev = delta_prev.get(state_key)
            delta_prev[state_key] = (total_value, now)
            if prev is not None and prev[0] <= total_value:
                total_value, start = total_value - prev[0], prev[1]
        return NumberDataPoint(attributes=attributes, start_time_unix_nano=start, time_unix_nano=now,
                               value=total_value)

    def _refresh_dropped(self, source: MetricSource) -> None:
        counts = self.registry.snapshot()
        with source.lock:
            for (reason, signal), n in counts.items():
                source.series(DROPPED_SPEC, {names.REASON: reason, names.SIGNAL: signal}).value = n


DROPPED_SPEC = InstrumentSpec(
    name=names.DROPPED,
    unit="{item}",
    description="Telemetry otel_ml dropped or could not record, by reason and signal.",
    kind="counter",
    scope="otel_ml.self",
)

_PRODUCERS: weakref.WeakKeyDictionary[MeterProvider, Producer] = weakref.WeakKeyDictionary()
_PRODUCERS_LOCK = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_PRODUCERS_LOCK")


def producer_for(provider: MeterProvider) -> Producer:
    """The one :class:`Producer` of an SDK ``MeterProvider`` (created and hooked on first use)."""
    with _PRODUCERS_LOCK:
        producer = _PRODUCERS.get(provider)
        if producer is None:
            producer = _PRODUCERS[provider] = Producer(provider)
    producer.hook()
    return producer
