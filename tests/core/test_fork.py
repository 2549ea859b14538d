"""Pre-fork servers: a lock another thread holds when the process forks must not hang the child.

CI caught it for real: under ``gunicorn --preload`` the SDK's metric reader thread in the master
collected otel_ml's series every second, holding the producer's lock; a worker forked at that
moment waited on it forever at its first inference. Here a thread holds *every* lock otel_ml
registers for renewal while the process forks; the child must record an inference, collect it and
exit within seconds.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

import otel_ml
from otel_ml._internal import forksafe
from otel_ml._internal.producer import producer_for
from otel_ml.testing import capture_telemetry


def _registered_locks() -> list[threading.Lock]:
    import sys

    locks = []
    for ref, names in list(forksafe._objects.values()):
        obj = ref()
        if obj is not None:
            locks += [getattr(obj, n) for n in names if hasattr(obj, n)]
    locks += [getattr(sys.modules[m], n) for m, n in forksafe._modules if m in sys.modules]
    return locks


def _exit_status(pid: int, hung: str, timeout: float = 30) -> int:
    """The child's exit status; the test fails with ``hung`` (child killed) when it does not end in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail(hung)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_locks_held_by_another_thread_at_fork_are_renewed_in_the_child() -> None:
    with capture_telemetry() as cap:
        monitor = otel_ml.ModelMonitor("forked", version="1", classes=["a", "b"],
                                       tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
        with monitor.inference(batch_size=1) as inf:
            inf.record(predictions="a", confidence=0.9)
        producer_for(cap.meter_provider)
        locks = _registered_locks()
        assert len(locks) >= 8  # producer, registry, labels, wiring, monitor, ... (not a vacuous test)
        holding, release = threading.Event(), threading.Event()

        def hold_all() -> None:
            for lock in locks:
                lock.acquire()
            holding.set()
            release.wait()
            for lock in locks:
                lock.release()

        thread = threading.Thread(target=hold_all, daemon=True)
        thread.start()
        assert holding.wait(10)
        pid = os.fork()
        if pid == 0:  # the child: everything otel_ml does must work although the parent's locks are held
            code = 1
            try:
                with monitor.inference(batch_size=2) as inf:
                    inf.record(predictions=["a", "b"], confidence=[0.8, 0.7])
                data = cap.metric_reader.get_metrics_data()
                names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
                code = 0 if "ml.inference.duration" in names else 2
            finally:
                os._exit(code)
        release.set()
        thread.join(10)
        status = _exit_status(pid, "the forked child hung on a lock held at fork time")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        monitor.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_fork_during_a_collection_waits_for_it_so_the_child_can_collect() -> None:
    """The SDK holds its measurement consumer's lock (and its aggregations') for a whole collection;
    process metrics' callbacks make that milliseconds long. A fork then must not cut it in half."""
    from opentelemetry.metrics import CallbackOptions, Observation

    with capture_telemetry() as cap:
        monitor = otel_ml.ModelMonitor("forked-collect", tracer_provider=cap.tracer_provider,
                                       meter_provider=cap.meter_provider)
        with monitor.inference(batch_size=1):
            pass
        inside, leave = threading.Event(), threading.Event()

        def slow(options: CallbackOptions) -> list[Observation]:
            if threading.current_thread() is not threading.main_thread():
                inside.set()
                leave.wait(2)  # the collection is in progress while the main thread forks
            return [Observation(1.0)]

        cap.meter_provider.get_meter("slow").create_observable_gauge("slow.gauge", callbacks=[slow])
        collector = threading.Thread(target=cap.metric_reader.get_metrics_data, daemon=True)
        collector.start()
        assert inside.wait(10)
        threading.Timer(0.3, leave.set).start()  # the collection ends a little after fork() is called
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with monitor.inference(batch_size=1):
                    pass
                data = cap.metric_reader.get_metrics_data()
                names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
                code = 0 if {"slow.gauge", "ml.inference.duration"} <= names else 2
            finally:
                os._exit(code)
        collector.join(10)
        status = _exit_status(pid, "the child forked during a collection could not collect")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        monitor.close()


class _SlowExporter:
    """A metric exporter whose export blocks while ``gate`` is closed (a collector taking its time)."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics.export import AggregationTemporality

        self._preferred_temporality: dict[type, AggregationTemporality] = {}
        self._preferred_aggregation: dict[type, Any] = {}
        self.exporting, self.gate = threading.Event(), threading.Event()
        self.exported: list[set[str]] = []

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        from opentelemetry.sdk.metrics.export import MetricExportResult

        if threading.current_thread() is not threading.main_thread():
            self.exporting.set()
            self.gate.wait(10)
        self.exported.append({m.name for rm in metrics_data.resource_metrics
                              for sm in rm.scope_metrics for m in sm.metrics})
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("export_ends", ["during the wait", "after the wait"])
def test_a_fork_during_an_export_leaves_the_child_able_to_export(
        export_ends: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PeriodicExportingMetricReader holds its export lock for the whole export after each
    collection; a gunicorn --preload worker forked then never exported a metric again (CI, about one
    run in ten). The fork waits for the export (bounded); an export still running when the wait
    ends leaves the child a fresh lock."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    from otel_ml._internal import sdk_seam

    monkeypatch.setattr(sdk_seam, "EXPORT_WAIT_S", 5.0 if export_ends == "during the wait" else 0.2, raising=False)
    exporter = _SlowExporter()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=10**9)  # type: ignore[arg-type]
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    monitor = otel_ml.ModelMonitor("forked-export", meter_provider=provider)
    try:
        with monitor.inference(batch_size=1):
            pass
        producer_for(provider)
        exporting = threading.Thread(target=reader.collect, daemon=True)
        exporting.start()
        assert exporter.exporting.wait(10)  # the export lock is held by that thread now
        if export_ends == "during the wait":
            threading.Timer(0.3, exporter.gate.set).start()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                exporter.gate.set()
                before = len(exporter.exported)
                with monitor.inference(batch_size=1):
                    pass
                done = threading.Thread(target=reader.collect, daemon=True)  # as the reader's own thread would
                done.start()
                done.join(5)
                code = 0 if len(exporter.exported) > before and "ml.inference.duration" in exporter.exported[-1] else 2
            finally:
                os._exit(code)
        waited = time.monotonic() - started
        exporter.gate.set()
        exporting.join(10)
        status = _exit_status(pid, "the child forked during an export could not export")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert waited < 5.0  # bounded: a stuck export never holds a fork longer than the wait
    finally:
        monitor.close()
        provider.shutdown()
