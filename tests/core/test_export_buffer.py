"""The bounded retry buffer in front of configure()'s OTLP exporters: an outage loses nothing within
the bound, and every item beyond it is counted in otel_ml.dropped.

The inner exporter is a fake that fails while ``up`` is False (as an OTLP exporter does when the
collector is down) and records what it delivered; the probe is the same flag, so the circuit
breaker's TCP connect is not needed here (tests/stack/test_outage.py runs the real one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_ml._internal import export_buffer, selftelemetry
from otel_ml._internal.export_buffer import (
    BUFFER_FULL,
    LOST_AT_SHUTDOWN,
    BufferedLogExporter,
    BufferedSpanExporter,
    CountingBatchSpanProcessor,
)


class FlakyExporter(SpanExporter):
    """Delivers while ``up``; fails (or raises, with ``explode``) while down."""

    def __init__(self) -> None:
        self.up = True
        self.explode = False
        self.delivered: list[Any] = []
        self.calls = 0
        self.shut = False

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.calls += 1
        if not self.up:
            if self.explode:
                raise ConnectionError("collector gone")
            return SpanExportResult.FAILURE
        self.delivered.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every try may go at once: the tests drive the outage, not the clock.
    monkeypatch.setattr(export_buffer, "_BACKOFF_MIN_S", 0.0)
    monkeypatch.setattr(export_buffer, "_BACKOFF_MAX_S", 0.0)
    # The resender thread stays asleep unless a test is about it: the tests drive the sends.
    monkeypatch.setattr(export_buffer, "_RESEND_EVERY_S", 3600.0)


def _make(capacity: int) -> tuple[FlakyExporter, BufferedSpanExporter, selftelemetry.SelfTelemetry]:
    inner = FlakyExporter()
    registry = selftelemetry.SelfTelemetry()
    return inner, BufferedSpanExporter(inner, capacity, registry, probe=lambda: inner.up), registry


def _batches(n: int, size: int, start: int = 0) -> list[list[int]]:
    return [list(range(start + i * size, start + (i + 1) * size)) for i in range(n)]


def test_outage_within_the_bound_loses_nothing_and_keeps_order() -> None:
    inner, exporter, registry = _make(capacity=1000)
    sent: list[int] = []
    for i, batch in enumerate(_batches(30, 10)):
        inner.up = not 5 <= i < 25  # collector down for batches 5..24
        exporter.export(batch)  # type: ignore[arg-type]
        sent.extend(batch)
    assert inner.delivered == sent  # everything, oldest first
    assert exporter.buffer.buffered == 0
    assert registry.count() == 0


def test_outage_beyond_the_bound_counts_every_dropped_item() -> None:
    inner, exporter, registry = _make(capacity=55)
    inner.up = False
    sent: list[int] = []
    for batch in _batches(20, 10):
        exporter.export(batch)  # type: ignore[arg-type]
        sent.extend(batch)
    assert exporter.buffer.buffered == 55
    inner.up = True
    exporter.export([1000, 1001])  # type: ignore[list-item]
    sent.extend([1000, 1001])
    dropped = registry.count(BUFFER_FULL, "traces")
    assert len(inner.delivered) + dropped == len(sent)
    assert dropped == 202 - 55  # the bound held at every export, the last one's included
    # The oldest went; what was kept arrived in order, the newest batch last.
    assert inner.delivered == sent[dropped:]


def _wait_for(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def test_an_idle_service_sends_what_it_held_once_the_collector_is_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """No export call comes after the outage (the service went idle): the resender thread, which
    runs only while something is held, delivers the batches in order and then ends."""
    monkeypatch.setattr(export_buffer, "_RESEND_EVERY_S", 0.05)
    inner, exporter, registry = _make(capacity=1000)
    inner.up = False
    exporter.export([1, 2, 3])  # type: ignore[list-item]
    exporter.export([4, 5])  # type: ignore[list-item]
    assert exporter.buffer.buffered == 5
    resender = exporter.buffer._resender
    assert resender is not None and resender.is_alive()
    time.sleep(0.3)  # still down: held, nothing sent, the same single thread
    assert inner.delivered == [] and exporter.buffer.buffered == 5 and exporter.buffer._resender is resender
    inner.up = True
    assert _wait_for(lambda: inner.delivered == [1, 2, 3, 4, 5])
    assert _wait_for(lambda: not resender.is_alive() and exporter.buffer._resender is None)
    assert registry.count() == 0
    # The next outage starts a new one; shutdown ends it.
    inner.up = False
    exporter.export([6])  # type: ignore[list-item]
    second = exporter.buffer._resender
    assert second is not None and second is not resender
    exporter.shutdown(timeout_millis=50)
    assert _wait_for(lambda: not second.is_alive())
    assert registry.count(LOST_AT_SHUTDOWN, "traces") == 1


def test_no_resender_while_the_collector_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches delivered at once leave nothing held: no thread is started for them."""
    monkeypatch.setattr(export_buffer, "_RESEND_EVERY_S", 0.05)
    inner, exporter, _ = _make(capacity=1000)
    before = {t.name for t in threading.enumerate()}
    for batch in _batches(50, 4):
        exporter.export(batch)  # type: ignore[arg-type]
    assert len(inner.delivered) == 200 and exporter.buffer._resender is None
    assert not [t for t in threading.enumerate() if t.name.startswith("otel_ml-resend") and t.name not in before]


def test_force_flush_delivers_the_buffer_once_the_collector_is_back() -> None:
    inner, exporter, registry = _make(capacity=1000)
    inner.up = False
    exporter.export([1, 2, 3])  # type: ignore[list-item]
    assert exporter.force_flush(1000) is False  # still down: not flushed, still held
    assert exporter.buffer.buffered == 3
    inner.up = True
    assert exporter.force_flush(1000) is True
    assert inner.delivered == [1, 2, 3]
    assert registry.count() == 0


def test_shutdown_delivers_if_it_can_and_counts_what_it_cannot() -> None:
    inner, exporter, registry = _make(capacity=1000)
    inner.up = False
    exporter.export([1, 2, 3])  # type: ignore[list-item]
    exporter.export([4, 5])  # type: ignore[list-item]
    exporter.shutdown()
    assert inner.shut is True
    assert inner.delivered == []
    assert registry.count(LOST_AT_SHUTDOWN, "traces") == 5
    # After shutdown nothing is held and every late item is counted, not kept.
    assert exporter.export([6]) == SpanExportResult.FAILURE  # type: ignore[list-item]
    assert registry.count(LOST_AT_SHUTDOWN, "traces") == 6
    assert exporter.buffer.buffered == 0

    inner2, exporter2, registry2 = _make(capacity=1000)
    inner2.up = False
    exporter2.export([1, 2])  # type: ignore[list-item]
    inner2.up = True
    exporter2.shutdown()
    assert inner2.delivered == [1, 2]
    assert registry2.count() == 0


def test_an_exporter_that_raises_is_a_failure_not_an_exception() -> None:
    inner, exporter, registry = _make(capacity=1000)
    inner.up, inner.explode = False, True
    assert exporter.export([1, 2]) == SpanExportResult.SUCCESS  # type: ignore[list-item]  # held
    inner.up = True
    exporter.export([3])  # type: ignore[list-item]
    assert inner.delivered == [1, 2, 3]
    assert registry.count() == 0


def test_while_down_batches_do_not_reach_the_inner_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The circuit breaker: once a send failed, later batches wait for the probe, not for a full
    OTLP retry each (which would block the processor's worker and overflow its queue)."""
    monkeypatch.setattr(export_buffer, "_BACKOFF_MIN_S", 60.0)
    monkeypatch.setattr(export_buffer, "_BACKOFF_MAX_S", 60.0)
    inner, exporter, _ = _make(capacity=1000)
    inner.up = False
    for batch in _batches(10, 5):
        exporter.export(batch)  # type: ignore[arg-type]
    assert inner.calls == 1
    assert exporter.buffer.buffered == 50
    inner.up = True
    assert exporter.force_flush(1000) is True  # a flush tries at once, past the backoff
    assert len(inner.delivered) == 50


def test_a_batch_refused_while_reachable_is_dropped_after_a_few_tries() -> None:
    """A collector that answers but keeps refusing one batch (too large, malformed) does not hold
    back the ones behind it for good; the refused items are counted."""
    inner, exporter, registry = _make(capacity=1000)
    refuse = {"poison"}
    real_export = inner.export

    def export(spans: Sequence[Any]) -> SpanExportResult:
        if refuse & set(spans):
            return SpanExportResult.FAILURE
        return real_export(spans)

    inner.export = export  # type: ignore[method-assign]
    exporter.export(["poison", "x"])  # type: ignore[list-item]
    for i in range(10):
        exporter.export([i])  # type: ignore[list-item]
    assert inner.delivered == list(range(10))
    assert registry.count(export_buffer.REJECTED, "traces") == 2


def test_failures_during_the_outage_do_not_count_towards_refusal() -> None:
    """A batch that waited through a long outage is not dropped as refused when the first send after
    the collector is reachable again fails once (a channel still reconnecting)."""
    inner = FlakyExporter()
    registry = selftelemetry.SelfTelemetry()
    reachable = {"now": False}
    exporter = BufferedSpanExporter(inner, 1000, registry, probe=lambda: reachable["now"])
    inner.up = False
    for i in range(20):
        exporter.export([i])  # type: ignore[list-item]
    reachable["now"] = True
    exporter.export([20])  # type: ignore[list-item]  # reachable, but this send still fails
    inner.up = True
    exporter.export([21])  # type: ignore[list-item]
    assert inner.delivered == list(range(22))
    assert registry.count() == 0


def test_concurrent_exports_lose_nothing() -> None:
    inner, exporter, registry = _make(capacity=100_000)
    inner.up = False
    def produce(k: int) -> None:
        for i in range(200):
            exporter.export([(k, i)])  # type: ignore[list-item]

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    inner.up = True
    assert exporter.force_flush(5000) is True
    assert sorted(inner.delivered) == sorted((k, i) for k in range(4) for i in range(200))
    assert registry.count() == 0


def test_log_exporter_buffers_too() -> None:
    class FlakyLogs:
        def __init__(self) -> None:
            self.up = False
            self.delivered: list[Any] = []

        def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
            if not self.up:
                return LogRecordExportResult.FAILURE
            self.delivered.extend(batch)
            return LogRecordExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    inner = FlakyLogs()
    registry = selftelemetry.SelfTelemetry()
    exporter = BufferedLogExporter(inner, 3, registry, probe=lambda: inner.up)  # type: ignore[arg-type]
    exporter.export(["a", "b"])
    exporter.export(["c", "d"])
    inner.up = True
    exporter.export(["e"])
    assert inner.delivered == ["c", "d", "e"]  # the newest 3: "e" pushed "b" out on arrival
    assert registry.count(BUFFER_FULL, "logs") == 2


def test_processor_counts_what_its_full_queue_drops() -> None:
    """Spans the SDK's own queue drops (a worker blocked on a slow export) are counted too."""
    release = threading.Event()

    class Blocking(FlakyExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            release.wait(10)
            return super().export(spans)

    inner = Blocking()
    before = selftelemetry.DEFAULT.count(export_buffer.QUEUE_FULL, "traces")
    processor = CountingBatchSpanProcessor(inner, max_queue_size=10, max_export_batch_size=5,
                                           schedule_delay_millis=10)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    try:
        for _ in range(100):
            tracer.start_span("s").end()
    finally:
        release.set()
        provider.shutdown()
    dropped = selftelemetry.DEFAULT.count(export_buffer.QUEUE_FULL, "traces") - before
    assert dropped > 0
    assert len(inner.delivered) + dropped == 100


def test_configure_wraps_its_otlp_exporters_only() -> None:
    """configure() buffers its own OTLP span/log exporters (unless the size is 0); exporters the
    caller passes are used as given."""
    code = textwrap.dedent("""
        import json, otel_ml
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        mine = InMemorySpanExporter()
        t = otel_ml.configure(service_name="x", endpoint="http://127.0.0.1:9", span_exporters=[mine],
                              system_metrics=False)
        sp = [p._batch_processor._exporter for p in t.tracer_provider._active_span_processor._span_processors]
        lp = [p._batch_processor._exporter
              for p in t.logger_provider._multi_log_record_processor._log_record_processors]
        print(json.dumps({"spans": [type(e).__name__ for e in sp], "mine": sp[0] is mine,
                          "logs": [type(e).__name__ for e in lp]}))
    """)
    def run(**extra: str) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(extra)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             timeout=60, check=True)
        import json

        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    got = run()
    assert got == {"spans": ["InMemorySpanExporter", "BufferedSpanExporter"], "mine": True,
                   "logs": ["BufferedLogExporter"]}
    off = run(OTEL_ML_EXPORT_BUFFER_SPANS="0", OTEL_ML_EXPORT_BUFFER_LOGS="0")
    assert off["spans"] == ["InMemorySpanExporter", "OTLPSpanExporter"]
    assert off["logs"] == ["OTLPLogExporter"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_with_fresh_locks_and_an_empty_buffer() -> None:
    """A fork while another thread is mid-export (send lock held) does not hang the child's exports,
    and the child does not re-send the parent's buffered batches (they are the parent's)."""
    inner, exporter, _ = _make(capacity=1000)
    inner.up = False
    exporter.export([1, 2, 3])  # type: ignore[list-item]
    exporter.buffer._send_lock.acquire()  # as if the worker were blocked in an export
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                inner.up = True
                exporter.export([4])  # type: ignore[list-item]
                os.write(write, repr(inner.delivered).encode())
            finally:
                os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        child = os.read(read, 1000).decode()
    finally:
        exporter.buffer._send_lock.release()
    assert status == 0
    assert child == "[4]"
    assert exporter.buffer.buffered == 3  # the parent still holds its own
