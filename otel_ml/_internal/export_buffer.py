"""A bounded retry buffer in front of ``configure()``'s OTLP span and log exporters.

The SDK's batch processors hand each batch to the exporter once: when the collector is down (a
restart, a deploy, a crash) the OTLP exporter retries for up to its timeout and the batch is then
gone, uncounted. :class:`BufferedSpanExporter` / :class:`BufferedLogExporter` keep such batches in
memory, bounded by item count (``OTEL_ML_EXPORT_BUFFER_SPANS`` / ``_LOGS``), and re-send them oldest
first once the collector answers again: on later export calls, on ``force_flush``, at shutdown, and
- so that a service gone idle after the outage does not sit on them - from a resender thread that
runs only while something is buffered (every :data:`_RESEND_EVERY_S`, within the circuit breaker).
When the buffer is full the oldest items go, each counted in ``otel_ml.dropped`` (reason
``export_buffer_full``); items still undelivered when the exporter shuts down are counted too
(``export_failed_at_shutdown``). Nothing is lost without a count.

While the collector is known down (a circuit breaker, opened by a failed export), batches go
straight to the buffer: a cheap TCP connect to the endpoint (at most every few seconds, backing
off) decides when to try a real export again, so the processor's worker thread is not blocked for
the OTLP exporter's full retry time on every batch and its own queue does not overflow.
:class:`CountingBatchSpanProcessor` / :class:`CountingBatchLogRecordProcessor` count what that queue
drops all the same (``processor_queue_full``), should a burst outrun it.

Thread-safe (one sender at a time; buffer operations under a short lock) and fork-safe (a forked
child gets fresh locks and an empty buffer: the parent's batches are the parent's to send).
Nothing here raises into the caller.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_ml._internal import env, forksafe, selftelemetry

DEFAULT_CAPACITY = 30_000
BUFFER_FULL = "export_buffer_full"
LOST_AT_SHUTDOWN = "export_failed_at_shutdown"
REJECTED = "export_rejected"
QUEUE_FULL = "processor_queue_full"
PROCESSOR_SHUT_DOWN = "processor_shut_down"

# Circuit breaker: after a failure, the next try waits this long, doubling up to the maximum.
_BACKOFF_MIN_S = 0.5
_BACKOFF_MAX_S = 5.0
_PROBE_TIMEOUT_S = 1.0
# A batch the endpoint keeps refusing while it is reachable (malformed, too large) is dropped after
# this many tries, so that it does not hold back every batch behind it.
_MAX_TRIES_WHEN_REACHABLE = 5
# One export call re-sends buffered batches for at most this long; the rest go on the next call.
_DRAIN_BUDGET_S = 5.0
# While batches are buffered, a resender thread tries this often (the circuit breaker still decides
# whether a real export is tried): no export call may come for a long time once a service is idle.
_RESEND_EVERY_S = 2.0


def capacity_from_env(name: str, default: int = DEFAULT_CAPACITY) -> int:
    """The buffer size in items from ``name``; ``default`` when unset or not a non-negative integer."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        selftelemetry.log_once(f"env:{name}", "otel_ml: %s=%r is not an integer; using %d", name, raw, default)
        return default
    return value if value >= 0 else default


def _probe_address(exporter: object) -> tuple[str, int] | None:
    """(host, port) the OTLP exporter sends to, read from its endpoint; None when unknown."""
    endpoint = getattr(exporter, "_endpoint", None)
    if not isinstance(endpoint, str) or not endpoint:
        return None
    try:
        parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
        host, port = parsed.hostname, parsed.port
        if port is None:
            port = 443 if parsed.scheme == "https" else 80 if parsed.scheme == "http" else None
    except ValueError:
        return None
    if not host or port is None:
        return None
    return host, port


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


class _Batch:
    __slots__ = ("items", "refused")

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.refused = 0  # failed sends while the endpoint was reachable


class _RetryBuffer:
    """The logic both exporters share: buffer, circuit breaker, drain, counts."""

    def __init__(self, send: Callable[[list[Any]], bool], signal: str, capacity: int,
                 probe: Callable[[], bool] | None,
                 registry: selftelemetry.SelfTelemetry | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._signal = signal
        self._capacity = max(0, capacity)
        self._probe = probe
        self._registry = registry or selftelemetry.DEFAULT
        self._clock = clock
        self._buf_lock = threading.Lock()  # guards _batches/_items: held briefly, never across I/O
        self._send_lock = threading.Lock()  # one sender at a time
        forksafe.renew_after_fork(self, "_buf_lock", "_send_lock")
        forksafe.call_after_fork(self._after_fork)
        self._batches: deque[_Batch] = deque()
        self._items = 0
        self._down = False
        self._retry_at = 0.0
        self._backoff = _BACKOFF_MIN_S
        self._shutdown = False
        # The resender thread while something is buffered (None otherwise; set under _buf_lock).
        self._resender: threading.Thread | None = None
        self._stop = threading.Event()

    # -- state -------------------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        """Items held for re-sending now."""
        with self._buf_lock:
            return self._items

    def _after_fork(self) -> None:
        self._batches = deque()
        self._items = 0
        self._resender = None  # threads do not survive fork()
        self._stop = threading.Event()

    # -- resender ------------------------------------------------------------------------------
    def _ensure_resender(self) -> None:
        """Start the resender thread if something is buffered and none runs (never raises)."""
        try:
            with self._buf_lock:
                if self._resender is not None or self._items == 0 or self._shutdown:
                    return
                thread = threading.Thread(target=self._resend_loop, name=f"otel_ml-resend-{self._signal}",
                                          daemon=True)
                self._resender = thread
            thread.start()
        except Exception:
            with self._buf_lock:
                self._resender = None

    def _resend_loop(self) -> None:
        """Drain the buffer every _RESEND_EVERY_S until it is empty (then exit) or shutdown."""
        try:
            while not self._stop.wait(_RESEND_EVERY_S):
                with self._buf_lock:
                    if self._items == 0 or self._shutdown:
                        self._resender = None  # decided under the lock a push takes: no batch is missed
                        return
                if self._send_lock.acquire(blocking=False):  # an exporter is sending: it drains too
                    try:
                        self._drain(self._clock() + _DRAIN_BUDGET_S)
                    finally:
                        self._send_lock.release()
        except Exception:
            pass
        with self._buf_lock:
            if self._resender is threading.current_thread():
                self._resender = None

    def _count(self, reason: str, n: int) -> None:
        if n > 0:
            try:
                self._registry.dropped(reason, self._signal, n)
            except Exception:
                pass

    def _push_back(self, batch: _Batch, oldest: bool) -> None:
        """Buffer ``batch`` (at the old end when it was in flight) and evict beyond the bound."""
        if self._shutdown or self._capacity == 0:
            self._count(LOST_AT_SHUTDOWN if self._shutdown else BUFFER_FULL, len(batch.items))
            return
        evicted = 0
        with self._buf_lock:
            if oldest:
                self._batches.appendleft(batch)
            else:
                self._batches.append(batch)
            self._items += len(batch.items)
            while self._items > self._capacity and self._batches:
                head = self._batches[0]
                excess = self._items - self._capacity
                if len(head.items) <= excess:
                    self._batches.popleft()
                    n = len(head.items)
                else:
                    del head.items[:excess]
                    n = excess
                self._items -= n
                evicted += n
        self._count(BUFFER_FULL, evicted)

    def _pop_oldest(self) -> _Batch | None:
        with self._buf_lock:
            if not self._batches:
                return None
            batch = self._batches.popleft()
            self._items -= len(batch.items)
            return batch

    # -- circuit breaker -----------------------------------------------------------------------
    def _may_try(self, now: float) -> bool:
        """Whether a real export may be tried now: always while up; while down, when the backoff
        has passed and the endpoint accepts a TCP connection."""
        if not self._down:
            return True
        if now < self._retry_at:
            return False
        if self._probe is not None and not self._probe():
            self._failed(now)
            return False
        return True

    def _failed(self, now: float) -> None:
        if self._down:
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)
        self._down = True
        self._retry_at = now + self._backoff

    def _succeeded(self) -> None:
        self._down = False
        self._backoff = _BACKOFF_MIN_S

    def _try_send(self, batch: _Batch) -> bool:
        try:
            return self._send(batch.items)
        except Exception:
            return False

    # -- the exporter calls ------------------------------------------------------------------
    def export(self, items: Sequence[Any]) -> bool:
        """Send ``items`` after anything buffered before; buffer what cannot go. False when
        something of this batch is neither delivered nor held (it was counted)."""
        batch = _Batch(list(items))
        if self._shutdown:
            self._count(LOST_AT_SHUTDOWN, len(batch.items))
            return False
        if not batch.items:
            return True
        if not self._send_lock.acquire(blocking=False):
            # Another sender (force_flush beside the worker) is busy: queue behind it.
            self._push_back(batch, oldest=False)
            self._ensure_resender()
            return True
        try:
            self._push_back(batch, oldest=False)
            drained = self._drain(self._clock() + _DRAIN_BUDGET_S)
        finally:
            self._send_lock.release()
        if not drained and self._resender is None:
            self._ensure_resender()  # held back: sent later even if no export call comes
        return True

    def _drain(self, deadline: float) -> bool:
        """Re-send buffered batches oldest first until empty, a failure or the deadline; the
        caller holds the send lock. True when the buffer is empty."""
        while True:
            now = self._clock()
            if now > deadline or not self._may_try(now):
                return self.buffered == 0
            batch = self._pop_oldest()
            if batch is None:
                return True
            if self._try_send(batch):
                self._succeeded()
                continue
            self._failed(self._clock())
            if self._probe is not None and self._probe():
                batch.refused += 1
            if batch.refused >= _MAX_TRIES_WHEN_REACHABLE:
                self._count(REJECTED, len(batch.items))
            else:
                self._push_back(batch, oldest=True)
            return False

    def flush(self, timeout_millis: float) -> bool:
        """Try to deliver everything buffered within ``timeout_millis``, past the backoff."""
        deadline = self._clock() + max(0.0, timeout_millis) / 1000
        if not self._send_lock.acquire(timeout=max(0.0, timeout_millis) / 1000):
            return False
        try:
            self._retry_at = 0.0
            return self._drain(deadline)
        finally:
            self._send_lock.release()

    def shutdown(self, timeout_millis: float) -> None:
        """Last delivery attempt, then count what is left as lost; later exports are counted too."""
        try:
            self.flush(timeout_millis)
        finally:
            self._shutdown = True
            self._stop.set()
            with self._buf_lock:
                left, self._items = self._items, 0
                self._batches.clear()
            self._count(LOST_AT_SHUTDOWN, left)


def _ok(result: object) -> bool:
    return getattr(result, "name", None) == "SUCCESS"


class _Buffered:
    """What both exporters share: the retry buffer in front of ``inner``, its flush and shutdown."""

    def __init__(self, inner: Any, signal: str, capacity_env: str, capacity: int | None,
                 registry: selftelemetry.SelfTelemetry | None, probe: Callable[[], bool] | None) -> None:
        self.inner = inner
        if capacity is None:
            capacity = capacity_from_env(capacity_env)
        address = _probe_address(inner)
        if probe is None and address is not None:
            probe = lambda: _reachable(address)  # noqa: E731
        self.buffer = _RetryBuffer(lambda items: _ok(inner.export(items)), signal, capacity, probe, registry)

    def _export(self, items: Sequence[Any]) -> bool:
        try:
            return self.buffer.export(items)
        except Exception:  # never into the processor's worker
            return False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        try:
            inner_flush = getattr(self.inner, "force_flush", None)
            flushed = self.buffer.flush(timeout_millis)
            return flushed and (inner_flush is None or inner_flush(timeout_millis) is not False)
        except Exception:
            return False

    def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
        try:
            self.buffer.shutdown(timeout_millis)
        except Exception:
            pass
        try:
            self.inner.shutdown()
        except Exception:
            pass


class BufferedSpanExporter(_Buffered, SpanExporter):
    """``inner`` with a bounded retry buffer for spans (see the module doc)."""

    def __init__(self, inner: SpanExporter, capacity: int | None = None,
                 registry: selftelemetry.SelfTelemetry | None = None,
                 probe: Callable[[], bool] | None = None) -> None:
        super().__init__(inner, "traces", env.EXPORT_BUFFER_SPANS, capacity, registry, probe)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS if self._export(spans) else SpanExportResult.FAILURE


class BufferedLogExporter(_Buffered, LogRecordExporter):
    """``inner`` with a bounded retry buffer for log records (see the module doc)."""

    def __init__(self, inner: LogRecordExporter, capacity: int | None = None,
                 registry: selftelemetry.SelfTelemetry | None = None,
                 probe: Callable[[], bool] | None = None) -> None:
        super().__init__(inner, "logs", env.EXPORT_BUFFER_LOGS, capacity, registry, probe)

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS if self._export(batch) else LogRecordExportResult.FAILURE


class _CountingQueue(deque[Any]):
    """The SDK batch processor's queue, bounded here instead of by ``maxlen`` so that each item it
    pushes out (the oldest, as ``maxlen`` would) is counted. Exact: an item leaves either through
    the worker's ``pop`` (exported) or through the ``pop`` here (counted)."""

    def __init__(self, items: Sequence[Any], limit: int, signal: str) -> None:
        super().__init__(items)
        self.limit = limit
        self.signal = signal

    def appendleft(self, item: Any) -> None:
        super().appendleft(item)
        dropped = 0
        while len(self) > self.limit:
            try:
                self.pop()
            except IndexError:
                break
            dropped += 1
        if dropped:
            selftelemetry.dropped(QUEUE_FULL, self.signal, dropped)


def _count_queue(processor: object, signal: str) -> None:
    """Swap the SDK processor's queue (private: ``_batch_processor._queue``, 1.44+) for a counting
    one; leave it as it is when that moved."""
    inner = getattr(processor, "_batch_processor", None)
    queue = getattr(inner, "_queue", None)
    if isinstance(queue, deque) and not isinstance(queue, _CountingQueue) and queue.maxlen:
        try:
            inner._queue = _CountingQueue(queue, queue.maxlen, signal)  # type: ignore[union-attr]
        except Exception:
            pass


def _shut_down(processor: object) -> bool:
    return getattr(getattr(processor, "_batch_processor", None), "_shutdown", False) is True


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's BatchSpanProcessor, counting in ``otel_ml.dropped`` each span its full queue drops
    (``processor_queue_full``) or that ends after it shut down (``processor_shut_down``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _count_queue(self, "traces")

    def on_end(self, span: ReadableSpan) -> None:
        try:
            if span.context is not None and span.context.trace_flags.sampled and _shut_down(self):
                selftelemetry.dropped(PROCESSOR_SHUT_DOWN, "traces")
        except Exception:
            pass
        super().on_end(span)


class CountingBatchLogRecordProcessor(BatchLogRecordProcessor):
    """The SDK's BatchLogRecordProcessor, counting each log record it drops, as above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _count_queue(self, "logs")

    def on_emit(self, log_record: Any) -> None:
        try:
            if _shut_down(self):
                selftelemetry.dropped(PROCESSOR_SHUT_DOWN, "logs")
        except Exception:
            pass
        super().on_emit(log_record)
