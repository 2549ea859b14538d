"""Helpers for the QuickLane tests of every instrumentor: calls under an unsampled parent take the
lane (one append per call, folded later), and must add exactly what the full path adds.
:func:`same_either_way` runs the same calls sampled (the full path, which each framework's own tests
check against the library) and then unsampled, and compares what each pass added to every series
of the model - counts, sums, every bucket, class counts, dropped counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import otel_ml.auto
from otel_ml._internal import selftelemetry
from otel_ml.testing import TelemetryCapture


@contextmanager
def unsampled_parent(trace_id: int = 0x51) -> Iterator[None]:
    """What an HTTP server span looks like when upstream did not sample the trace."""
    parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        trace_id=trace_id, span_id=0x77, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))))
    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)


def series(cap: TelemetryCapture) -> dict[tuple[str, frozenset[tuple[str, Any]]], tuple[Any, ...]]:
    """Every point of every otel_ml metric, as the additive figures two passes can be compared by
    (duration: only the count - time differs; min/max are not additive)."""
    out: dict[tuple[str, frozenset[tuple[str, Any]]], tuple[Any, ...]] = {}
    for p in cap.metrics():
        if not p.name.startswith("ml."):
            continue
        key = (p.name, frozenset(p.attributes.items()))
        point = p.point
        if hasattr(point, "bucket_counts"):
            figures: tuple[Any, ...] = (point.count,) if p.name == "ml.inference.duration" else (
                point.count, round(point.sum, 9), tuple(point.bucket_counts))
        else:
            figures = (point.value,)
        out[key] = figures
    return out


def _sub(a: Any, b: Any) -> Any:
    return tuple(x - y for x, y in zip(a, b, strict=True)) if isinstance(a, tuple) else a - b


def delta(after: dict[Any, tuple[Any, ...]], before: dict[Any, tuple[Any, ...]]) -> dict[Any, tuple[Any, ...]]:
    """What happened to each series between two snapshots (series that did not change left out)."""
    changed = {}
    for key, figures in after.items():
        old = before.get(key)
        diff = figures if old is None else tuple(_sub(a, b) for a, b in zip(figures, old, strict=True))
        if any(any(d) if isinstance(d, tuple) else d for d in diff):
            changed[key] = diff
    return changed


def approx(delta: dict[Any, tuple[Any, ...]]) -> dict[Any, Any]:
    """Sums compared to 1e-9: the lane adds a batch of values where the full path adds them one by
    one, and each pass's sum is the difference of two snapshots rounded to 1e-9 (so up to 2e-9 apart
    for the very same values)."""
    return {k: tuple(pytest.approx(v, rel=1e-9, abs=2.5e-9) if isinstance(v, float) else v for v in figures)
            for k, figures in delta.items()}


def dropped(cap: TelemetryCapture) -> dict[tuple[str, str], int]:
    """Drop counts by (reason, signal): the capture's registry (its monitors') and the default one."""
    counts = dict(cap.selftelemetry.snapshot())
    for key, n in selftelemetry.DEFAULT.snapshot().items():
        counts[key] = counts.get(key, 0) + n
    return counts


def same_either_way(cap: TelemetryCapture, calls: Callable[[], None]) -> dict[Any, tuple[Any, ...]]:
    """Run ``calls`` sampled, then unsampled: the two passes add the same figures (and the same
    dropped counts); the unsampled pass makes no span. Returns what one pass adds."""
    s0, d0 = series(cap), dropped(cap)
    spans_before = len(cap.spans())
    calls()
    s1, d1 = series(cap), dropped(cap)
    assert len(cap.spans()) > spans_before
    spans_sampled = len(cap.spans())
    with unsampled_parent():
        calls()
    s2, d2 = series(cap), dropped(cap)
    assert len(cap.spans()) == spans_sampled  # the lane makes no span
    sampled, unsampled = delta(s1, s0), delta(s2, s1)
    assert sampled, "the sampled pass recorded nothing"
    assert unsampled == approx(sampled)
    dropped_sampled = {k: d1.get(k, 0) - d0.get(k, 0) for k in d1 if d1.get(k, 0) != d0.get(k, 0)}
    dropped_unsampled = {k: d2.get(k, 0) - d1.get(k, 0) for k in d2 if d2.get(k, 0) != d1.get(k, 0)}
    assert dropped_unsampled == dropped_sampled
    return sampled


def lane(model: Any) -> Any:
    """The QuickLane of an instrumented model's monitor."""
    monitor = otel_ml.auto.monitor_of(model)
    assert monitor is not None
    found = monitor.quick_lane()
    assert found is not None
    return found


def predicted_classes(added: dict[Any, tuple[Any, ...]]) -> dict[str, int]:
    """Predictions per class in what :func:`same_either_way` returned (all models together)."""
    counts: dict[str, int] = {}
    for (name, attributes), figures in added.items():
        if name == "ml.predictions":
            label = dict(attributes)["ml.prediction.class"]
            counts[label] = counts.get(label, 0) + figures[0]
    return counts


def calls_and_rows(added: dict[Any, tuple[Any, ...]]) -> tuple[int, float]:
    """Calls and rows (``ml.inference.batch.size`` count and sum) in what :func:`same_either_way`
    returned, over every model (one series each)."""
    batches = [figures for (name, _), figures in added.items() if name == "ml.inference.batch.size"]
    return sum(f[0] for f in batches), sum(f[1] for f in batches)
