"""``otel-ml bench overhead``: per-inference CPU cost of otel_ml against naive OTel instrumentation.

All variants run in one process against the same SDK providers (a ``BatchSpanProcessor`` into an
exporter that discards, a ``MeterProvider`` with a reader), so only the instrumentation differs:

* ``bare``: the model function alone;
* ``naive_otel``: what a tutorial does - ``start_as_current_span`` plus three ``histogram.record``
  calls (duration, confidence, batch size), each with the same three attributes;
* ``otel_ml_sampled``: ``monitor.inference()`` recording duration, batch size, confidence and the
  predicted class, with a sampled span and an exemplar;
* ``otel_ml_unsampled``: the same inside a request whose trace was not sampled upstream
  (parent-based sampling, the production default);
* ``*_three_monitors``: the same two, calling three live monitors on the same providers in turn
  (model ``a``, its ``canary`` variant, model ``b``), as a service with an A/B pair does.

CPU time is ``time.process_time_ns`` (all threads, so the span processor's work counts), the
median of several rounds; overheads subtract the bare call.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_ml._internal.monitor import ModelMonitor


class _DiscardingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _model(x: float) -> float:
    return x * 0.5 + 0.1


def _queue_size(calls: int) -> int:
    """Span queue that holds a round's spans (none dropped) and at least the SDK's export batch of 512,
    which the BatchSpanProcessor refuses to exceed its queue: ``--calls 10`` must run too."""
    return max(calls * 4, 2048)


def _time_per_call(fn: Callable[[], Any], calls: int, rounds: int,
                   settle: Callable[[], Any] | None = None) -> float:
    """CPU per call of ``fn`` (all threads: a span processor's export thread counts). ``settle``
    runs inside the timing after the calls - a flush, so their deferred work is paid for here and
    not by whatever is measured next."""
    samples = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time_ns()
        for _ in range(calls):
            fn()
        if settle is not None:
            settle()
        samples.append((time.process_time_ns() - start) / calls)
    return statistics.median(samples)


# Calls per round and rounds: the core hot path (a tight loop), and --instrumented (many short paired
# rounds, see _interleaved; about 20 s per framework here).
CALLS, ROUNDS = 20_000, 7
INSTRUMENTED_CALLS, INSTRUMENTED_ROUNDS = 600, 25


def measure(calls: int = CALLS, rounds: int = ROUNDS) -> dict[str, Any]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DiscardingExporter(), max_queue_size=_queue_size(calls)))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])

    tracer = tracer_provider.get_tracer("naive")
    meter = meter_provider.get_meter("naive")
    h_duration = meter.create_histogram("naive.duration", unit="s")
    h_confidence = meter.create_histogram("naive.confidence", unit="1")
    h_batch = meter.create_histogram("naive.batch", unit="{row}")
    attrs = {"ml.model.name": "bench", "ml.model.version": "1", "ml.prediction.class": "a"}

    monitor = ModelMonitor("bench", version="1", tracer_provider=tracer_provider, meter_provider=meter_provider)
    trio = [ModelMonitor(n, version="1", variant=v, tracer_provider=tracer_provider, meter_provider=meter_provider)
            for n, v in (("a", None), ("a", "canary"), ("b", None))]
    turn = [0]

    def bare() -> None:
        _model(1.0)

    def naive() -> None:
        with tracer.start_as_current_span("predict", attributes=attrs):
            t0 = time.perf_counter()
            y = _model(1.0)
            h_duration.record(time.perf_counter() - t0, attrs)
            h_confidence.record(y, attrs)
            h_batch.record(1, attrs)

    def otel_ml_call() -> None:
        with monitor.inference(batch_size=1) as inf:
            y = _model(1.0)
            inf.record(predictions="a", confidence=y)

    def otel_ml_three() -> None:
        m = trio[turn[0] % 3]
        turn[0] += 1
        with m.inference(batch_size=1) as inf:
            y = _model(1.0)
            inf.record(predictions="a", confidence=y)

    unsampled_parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))))

    # Warm up every path once (lazy imports, first-series creation).
    for fn in (bare, naive, otel_ml_call, otel_ml_three):
        _time_per_call(fn, 500, 1)

    bare_ns = _time_per_call(bare, calls, rounds)
    naive_ns = _time_per_call(naive, calls, rounds)
    sampled_ns = _time_per_call(otel_ml_call, calls, rounds)
    sampled3_ns = _time_per_call(otel_ml_three, calls, rounds)
    token = otel_context.attach(unsampled_parent)
    try:
        _time_per_call(otel_ml_call, 500, 1)
        unsampled_ns = _time_per_call(otel_ml_call, calls, rounds)
        unsampled3_ns = _time_per_call(otel_ml_three, calls, rounds)
    finally:
        otel_context.detach(token)
    reader.get_metrics_data()  # the three monitors' series are exported together
    for m in (monitor, *trio):
        m.close()

    tracer_provider.shutdown()
    meter_provider.shutdown()
    naive_over = naive_ns - bare_ns
    sampled_over = sampled_ns - bare_ns
    unsampled_over = unsampled_ns - bare_ns
    sampled3_over = sampled3_ns - bare_ns
    unsampled3_over = unsampled3_ns - bare_ns
    return {
        "calls_per_round": calls,
        "rounds": rounds,
        "bare_ns": round(bare_ns, 1),
        "naive_otel_ns": round(naive_over, 1),
        "otel_ml_sampled_ns": round(sampled_over, 1),
        "otel_ml_unsampled_ns": round(unsampled_over, 1),
        "sampled_vs_naive": round(sampled_over / naive_over, 3),
        "unsampled_vs_naive": round(unsampled_over / naive_over, 3),
        "otel_ml_sampled_three_monitors_ns": round(sampled3_over, 1),
        "otel_ml_unsampled_three_monitors_ns": round(unsampled3_over, 1),
        "sampled_three_monitors_vs_naive": round(sampled3_over / naive_over, 3),
        "unsampled_three_monitors_vs_naive": round(unsampled3_over / naive_over, 3),
        "target_sampled_vs_naive_max": 0.5,
        "target_unsampled_ns_max": 10_000,
    }


def _interleaved(instrumentor: Any, bare: Callable[[], None], instrumented: Callable[[], Callable[[], None]],
                 calls: int, rounds: int, one_span: Callable[[trace.Tracer], Callable[[], None]] | None = None
                 ) -> dict[str, float]:
    """CPU ns per call of ``bare``, of ``one_span(tracer)`` (if given), and of the call
    ``instrumented()`` returns under ``instrumentor``, sampled and under an unsampled parent: the
    median over rounds of each; and ``<variant>_vs_bare``, the median over rounds of each round's
    variant divided by the bare call measured just before and just after it in the same round.

    Rounds are paired (bare, span, instrument, sampled, unsampled, uninstrument, bare ...): a machine
    that speeds up or slows down mid-run moves a round's bare and instrumented figures alike, so
    the ratio of a round cancels it. Many short rounds beat a few long ones on a shared machine."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DiscardingExporter(), max_queue_size=_queue_size(calls)))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    unsampled_parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))))
    traced = one_span(tracer_provider.get_tracer("naive")) if one_span is not None else None
    variants = ("sampled", "unsampled", *(("span",) if traced else ()))
    samples: dict[str, list[float]] = {"bare": [], **{v: [] for v in variants}}
    ratios: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        before = _time_per_call(bare, calls, 1)
        measured: dict[str, float] = {}
        if traced is not None:
            measured["span"] = _time_per_call(traced, calls, 1, settle=tracer_provider.force_flush)
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        try:
            call = instrumented()
            call()  # the model's first call creates its monitor: not part of the steady state
            measured["sampled"] = _time_per_call(call, calls, 1, settle=tracer_provider.force_flush)
            token = otel_context.attach(unsampled_parent)
            try:
                measured["unsampled"] = _time_per_call(call, calls, 1)
            finally:
                otel_context.detach(token)
        finally:
            instrumentor.uninstrument()
        after = _time_per_call(bare, calls, 1)
        samples["bare"] += [before, after]
        for variant, ns in measured.items():
            samples[variant].append(ns)
            ratios[variant].append(ns / ((before + after) / 2))
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return {**{k: statistics.median(v) for k, v in samples.items()},
            **{f"{k}_vs_bare": statistics.median(v) for k, v in ratios.items()}}


def measure_instrumented(calls: int = INSTRUMENTED_CALLS, rounds: int = INSTRUMENTED_ROUNDS) -> dict[str, Any]:
    """A real scikit-learn Pipeline(StandardScaler, LogisticRegression).predict_proba on one row:
    bare, and under otel_ml's zero-code instrumentor with the trace sampled and not sampled.

    Paired rounds (:func:`_interleaved`): times are medians over rounds, ratios the median of each
    round's ratio to the bare call measured just before and after it. Also onnxruntime and torch
    where they are installed (``onnx_*``, ``torch_*``).
    """
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from otel_ml.instrumentation.sklearn import SklearnInstrumentor

    x, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    row = np.asarray(x[:1])

    def call() -> None:
        model.predict_proba(row)

    def one_span(tracer: trace.Tracer) -> Callable[[], None]:
        def traced() -> None:
            # What one hand-written span per call costs - the floor of any instrumentation that traces.
            with tracer.start_as_current_span("predict_proba"):
                model.predict_proba(row)
        return traced

    medians = _interleaved(SklearnInstrumentor(), call, lambda: call, calls, rounds, one_span)
    return {**_measure_onnx(model, row, calls, rounds), **_measure_torch(calls, rounds),
        "sklearn_calls_per_round": calls,
        "sklearn_rounds": rounds,
        **_framework("sklearn", medians),
        "sklearn_one_sdk_span_ns": round(medians["span"], 1),
        "sklearn_one_sdk_span_vs_bare": round(medians["span_vs_bare"], 4),
        "target_sampled_vs_bare_max": 1.10,
        "target_unsampled_vs_bare_max": 1.03,
    }


def _measure_onnx(model: Any, row: Any, calls: int, rounds: int) -> dict[str, Any]:
    """The same pipeline exported to ONNX (skl2onnx, ZipMap output) and run by onnxruntime on one
    row: bare vs under the onnxruntime instrumentor, sampled and not. Empty without onnxruntime or
    skl2onnx (``pip install onnxruntime skl2onnx``)."""
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from skl2onnx import to_onnx  # type: ignore[import-untyped]
    except ImportError:
        return {}
    import numpy as np

    from otel_ml.instrumentation.onnxruntime import OnnxRuntimeInstrumentor

    data = to_onnx(model, np.asarray(row, dtype=np.float32)).SerializeToString()
    feed = {"X": np.asarray(row, dtype=np.float32)}
    bare_session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])

    def instrumented() -> Callable[[], None]:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])  # made while instrumented
        return lambda: session.run(None, feed)

    medians = _interleaved(OnnxRuntimeInstrumentor(), lambda: bare_session.run(None, feed), instrumented, calls,
                           rounds)
    return _framework("onnx", medians)


def _measure_torch(calls: int, rounds: int) -> dict[str, Any]:
    """A small torch classifier (an MLP of 4 -> 16 -> 3, iris-sized, class names configured so its
    logits are read) on one row under ``torch.inference_mode()``: bare vs under the torch
    instrumentor, sampled and not. Empty without torch (``pip install torch``)."""
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {}
    import os
    from unittest import mock

    from otel_ml._internal import env
    from otel_ml.instrumentation.torch import TorchInstrumentor

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    row = torch.randn(1, 4)

    def call() -> None:
        with torch.inference_mode():
            model(row)

    # The class names make the instrumentor read the output (softmax, class, confidence), the costlier
    # case; they are read when the model's monitor is made (its first instrumented call).
    with mock.patch.dict(os.environ, {env.CLASS_NAMES: "0=setosa,1=versicolor,2=virginica"}):
        medians = _interleaved(TorchInstrumentor(), call, lambda: call, calls, rounds)
    return _framework("torch", medians)


def _framework(prefix: str, medians: dict[str, float]) -> dict[str, Any]:
    """The JSON keys of one framework's :func:`_interleaved` figures."""
    return {
        f"{prefix}_bare_ns": round(medians["bare"], 1),
        f"{prefix}_instrumented_sampled_ns": round(medians["sampled"], 1),
        f"{prefix}_instrumented_unsampled_ns": round(medians["unsampled"], 1),
        f"{prefix}_sampled_vs_bare": round(medians["sampled_vs_bare"], 4),
        f"{prefix}_unsampled_vs_bare": round(medians["unsampled_vs_bare"], 4),
    }


def run(args: argparse.Namespace) -> int:
    if args.instrumented:
        return _run_instrumented(args)
    result = measure(calls=args.calls or CALLS, rounds=args.rounds or ROUNDS)
    if args.json:
        print(json.dumps(result))
        return 0
    us = 1e-3
    print("otel-ml bench overhead (CPU per call, median of "
          f"{result['rounds']} rounds x {result['calls_per_round']} calls; overheads exclude the bare call)")
    print(f"  bare model call                     {result['bare_ns'] * us:8.2f} us")
    print(f"  naive OTel (span + 3 histograms)    {result['naive_otel_ns'] * us:8.2f} us   1.00x")
    print(f"  otel_ml, all signals, sampled       {result['otel_ml_sampled_ns'] * us:8.2f} us   "
          f"{result['sampled_vs_naive']:.2f}x  (target <= 0.50x)")
    print(f"  otel_ml, all signals, not sampled   {result['otel_ml_unsampled_ns'] * us:8.2f} us   "
          f"{result['unsampled_vs_naive']:.2f}x  (target <= 10 us; stretch <= 0.03x)")
    print(f"  three monitors in turn, sampled     {result['otel_ml_sampled_three_monitors_ns'] * us:8.2f} us   "
          f"{result['sampled_three_monitors_vs_naive']:.2f}x")
    print(f"  three monitors in turn, not sampled {result['otel_ml_unsampled_three_monitors_ns'] * us:8.2f} us   "
          f"{result['unsampled_three_monitors_vs_naive']:.2f}x")
    return 0


def _run_instrumented(args: argparse.Namespace) -> int:
    result = measure_instrumented(calls=args.calls or INSTRUMENTED_CALLS, rounds=args.rounds or INSTRUMENTED_ROUNDS)
    if args.json:
        print(json.dumps(result))
        return 0
    us = 1e-3
    print("otel-ml bench overhead --instrumented: Pipeline(StandardScaler, LogisticRegression).predict_proba, one "
          f"row (CPU per call, median of {result['sklearn_rounds']} paired rounds of "
          f"{result['sklearn_calls_per_round']} calls; each ratio is the median of the rounds' ratios to the bare "
          "call around them)")
    print(f"  bare                                {result['sklearn_bare_ns'] * us:8.2f} us   1.000x")
    print(f"  bare + one hand-written SDK span    {result['sklearn_one_sdk_span_ns'] * us:8.2f} us   "
          f"{result['sklearn_one_sdk_span_vs_bare']:.3f}x  (the floor of anything that traces)")
    print(f"  zero-code instrumented, sampled     {result['sklearn_instrumented_sampled_ns'] * us:8.2f} us   "
          f"{result['sklearn_sampled_vs_bare']:.3f}x  (target <= 1.10x)")
    print(f"  zero-code instrumented, not sampled {result['sklearn_instrumented_unsampled_ns'] * us:8.2f} us   "
          f"{result['sklearn_unsampled_vs_bare']:.3f}x  (target <= 1.03x)")
    for prefix, title, missing in _FRAMEWORKS:
        if f"{prefix}_bare_ns" not in result:
            print(f"{title}: skipped ({missing})")
            continue
        print(f"{title}, one row (added time beside the bare call)")
        print(f"  bare                                {result[f'{prefix}_bare_ns'] * us:8.2f} us   1.000x")
        for variant, label in (("sampled", "sampled    "), ("unsampled", "not sampled")):
            ns, ratio = result[f"{prefix}_instrumented_{variant}_ns"], result[f"{prefix}_{variant}_vs_bare"]
            print(f"  zero-code instrumented, {label} {ns * us:8.2f} us   {ratio:.3f}x  "
                  f"(+{(ratio - 1) * result[f'{prefix}_bare_ns'] * us:.2f} us)")
    return 0


# The sections after the scikit-learn one: key prefix, title, what to install where it is missing.
_FRAMEWORKS = (
    ("onnx", "The same pipeline exported with skl2onnx, onnxruntime InferenceSession.run",
     "pip install onnxruntime skl2onnx"),
    ("torch", "A torch MLP classifier (4 -> 16 -> 3, class names set) under inference_mode", "pip install torch"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("overhead", help="per-inference CPU overhead against naive OTel instrumentation")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--instrumented", action="store_true",
                        help="a real scikit-learn pipeline, bare vs under the zero-code instrumentor")
    parser.add_argument("--calls", type=_positive, default=None,
                        help=f"calls per round (default {CALLS}; {INSTRUMENTED_CALLS} with --instrumented)")
    parser.add_argument("--rounds", type=_positive, default=None,
                        help=f"rounds; the median is reported (default {ROUNDS}; {INSTRUMENTED_ROUNDS} with "
                             "--instrumented)")
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
