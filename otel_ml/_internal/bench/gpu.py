"""``otel-ml bench gpu``: what the NVML energy meter costs per call, without a GPU.

NVML is replaced by a read that returns a growing integer (what ``nvmlDeviceGetTotalEnergyConsumption``
returns, at no cost), so the figures are otel_ml's own work; on a GPU each start and stop adds one
real NVML read per device in use. All from one run, CPU time (``time.process_time_ns``), median of
``rounds``:

* ``meter_one_device_ns`` / ``meter_two_devices_ns``: ``start()`` + ``stop()`` of one call;
* ``baseline_ns``: the least any correct meter does for the same call: take and release a lock
  twice and read the counter twice (a delta per call, which double-counts overlapping calls);
* ``meter_vs_baseline``: the first over the last;
* ``inference_without_meter_ns`` / ``inference_with_meter_ns``: a whole ``monitor.inference()``
  recording a prediction, on in-memory providers, without and with the meter installed;
* ``threads_wall_ns_per_call``: wall time per call with 4 threads starting and stopping calls at
  once (they contend for the meter's lock and for the GIL).

Importing this module does nothing; the measurement runs only when called.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_ml._internal import energy
from otel_ml._internal.gpu.energy import NvmlEnergyMeter
from otel_ml._internal.gpu.nvml import Device
from otel_ml._internal.monitor import ModelMonitor
from otel_ml._internal.selftelemetry import SelfTelemetry


def _counter() -> Callable[[object], int]:
    state = [10**9]

    def read(_handle: object) -> int:
        state[0] += 7
        return state[0]

    return read


def _meter(devices: int) -> NvmlEnergyMeter:
    return NvmlEnergyMeter(_counter(), [Device(i, object(), {}) for i in range(devices)], SelfTelemetry())


def _per_call(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time_ns()
        for _ in range(calls):
            fn()
        samples.append((time.process_time_ns() - start) / calls)
    return statistics.median(samples)


def _threads_wall(meter: NvmlEnergyMeter, calls: int, threads: int = 4) -> float:
    per_thread = max(1, calls // threads)
    start_line = threading.Barrier(threads + 1)

    def work() -> None:
        start_line.wait()
        for _ in range(per_thread):
            meter.stop(meter.start())

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    start_line.wait()
    t0 = time.perf_counter_ns()
    for w in workers:
        w.join()
    return (time.perf_counter_ns() - t0) / (per_thread * threads)


def measure(calls: int = 100_000, rounds: int = 5) -> dict[str, float]:
    one, two = _meter(1), _meter(2)
    read = _counter()
    lock = threading.Lock()
    handle = object()

    def baseline() -> float:
        with lock:
            a = read(handle)
        with lock:
            b = read(handle)
        return (b - a) / 1000.0

    out: dict[str, float] = {
        "calls_per_round": calls,
        "rounds": rounds,
        "meter_one_device_ns": round(_per_call(lambda: one.stop(one.start()), calls, rounds), 1),
        "meter_two_devices_ns": round(_per_call(lambda: two.stop(two.start()), calls, rounds), 1),
        "baseline_ns": round(_per_call(baseline, calls, rounds), 1),
    }
    out["meter_vs_baseline"] = round(out["meter_one_device_ns"] / out["baseline_ns"], 3)
    out.update(_inference(max(1, calls // 10), rounds))
    out["threads_wall_ns_per_call"] = round(_threads_wall(_meter(1), calls), 1)
    return out


def _inference(calls: int, rounds: int) -> dict[str, float]:
    tracer_provider = TracerProvider()  # no span processor: spans are made and dropped
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    monitor = ModelMonitor("bench", version="1", tracer_provider=tracer_provider, meter_provider=meter_provider)

    def call() -> None:
        with monitor.inference() as inf:
            inf.record(predictions="a", confidence=0.9)

    previous = energy.CURRENT.meter
    try:
        energy.set_meter(None)
        call()
        without = _per_call(call, calls, rounds)
        energy.set_meter(_meter(1))
        with_meter = _per_call(call, calls, rounds)
    finally:
        energy.set_meter(previous)
        monitor.close()
        meter_provider.shutdown()
    return {"inference_without_meter_ns": round(without, 1), "inference_with_meter_ns": round(with_meter, 1),
            "meter_share_of_inference": round((with_meter - without) / with_meter, 3)}


def run(args: argparse.Namespace) -> int:
    r = measure(calls=args.calls, rounds=args.rounds)
    if args.json:
        print(json.dumps(r))
        return 0
    us = 1e-3
    print(f"otel-ml bench gpu (CPU per call, median of {int(r['rounds'])} rounds x {int(r['calls_per_round'])} calls; "
          "NVML read faked)")
    print(f"  energy meter start+stop, 1 device    {r['meter_one_device_ns'] * us:7.2f} us   "
          f"{r['meter_vs_baseline']:.2f}x a lock-and-delta baseline ({r['baseline_ns'] * us:.2f} us)")
    print(f"  energy meter start+stop, 2 devices   {r['meter_two_devices_ns'] * us:7.2f} us")
    print(f"  monitor.inference() without meter    {r['inference_without_meter_ns'] * us:7.2f} us")
    print(f"  monitor.inference() with meter       {r['inference_with_meter_ns'] * us:7.2f} us   "
          f"(meter: {r['meter_share_of_inference']:.0%} of it)")
    print(f"  4 threads at once, wall per call     {r['threads_wall_ns_per_call'] * us:7.2f} us")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gpu", help="cost of the NVML energy meter per call (NVML faked)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--calls", type=int, default=100_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the median is reported)")
    parser.set_defaults(handler=run)
