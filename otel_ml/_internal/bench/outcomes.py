"""``otel-ml bench outcomes``: memory per pending prediction, and join throughput, of OutcomeTracker.

Figures, all from one run of :func:`measure_pending_memory` (``n`` pending predictions of a
3-class model, ids ``f"req-{i:09d}"``, a score and a confidence each):

* ``bytes_per_pending`` / ``mb_per_million_pending``: tracemalloc growth from before the ids
  exist to when all ``n`` predictions are pending, so the id strings (which the tracker keeps
  alive) are included; ``id_bytes_per_pending`` is their share (``sys.getsizeof``) and
  ``bytes_per_pending_excluding_ids`` the rest;
* ``rss_mb_per_million_pending``: resident-set growth for the same, measured in a fresh
  interpreter so that memory freed by earlier steps cannot hide the growth;
* ``baseline_*``: the same two measurements for a plain ``dict[str, tuple[float, str, float]]``
  (time, predicted class, score) holding the same entries, built in the same run;
* ``remember_many_rows_per_s`` / ``record_many_rows_per_s``: 100k-row batches, ``n`` rows in all
  (``record_many`` joins the batches newest first, leaving holes for the store to skip).

MB here is 2**20 bytes. Importing this module does nothing; the measurement runs only when called.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

_BATCH = 100_000
_LABELS = ("0", "1", "2")


def rss_mb() -> float:
    """This process's resident memory in MiB."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20


def _ids(start: int, stop: int) -> list[str]:
    return [f"req-{i:09d}" for i in range(start, stop)]


def _columns(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    proba = rng.random(m)
    return np.arange(m) % 3, proba, np.maximum(proba, 1 - proba)


def _fill_tracker(n: int) -> Any:
    from otel_ml._internal.quality import OutcomeTracker
    from otel_ml._internal.selftelemetry import SelfTelemetry

    now = [0.0]
    tracker = OutcomeTracker("classification", max_pending=n, ttl_s=1e9, clock=lambda: now[0],
                             selftelemetry=SelfTelemetry())
    classes, scores, conf = _columns(min(n, _BATCH))
    for start in range(0, n, _BATCH):
        m = min(_BATCH, n - start)
        tracker.remember_many(_ids(start, start + m), classes[:m], scores=scores[:m], confidences=conf[:m])
        now[0] += 1.0
    return tracker


def _fill_baseline(n: int) -> dict[str, tuple[float, str, float]]:
    _, scores, _ = _columns(min(n, _BATCH))
    store: dict[str, tuple[float, str, float]] = {}
    for start in range(0, n, _BATCH):
        m = min(_BATCH, n - start)
        for j, key in enumerate(_ids(start, start + m)):
            i = start + j
            store[key] = (i * 1e-3, _LABELS[i % 3], float(scores[j]))
    return store


_BUILDERS: dict[str, Callable[[int], object]] = {"tracker": _fill_tracker, "baseline": _fill_baseline}


def _traced_bytes(kind: str, n: int) -> float:
    build = _BUILDERS[kind]
    build(1)  # imports and one-time allocations outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = build(n)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del held
    return float(used)


def _rss_growth_mb(kind: str, n: int) -> float:
    """RSS growth while building ``kind`` (called in a fresh interpreter)."""
    build = _BUILDERS[kind]
    build(1)
    gc.collect()
    before = rss_mb()
    held = build(n)
    gc.collect()
    after = rss_mb()
    del held
    return after - before


def _rss_in_child(kind: str, n: int) -> float | None:
    code = ("import json, sys; from otel_ml._internal.bench.outcomes import _rss_growth_mb; "
            "print(json.dumps(_rss_growth_mb(sys.argv[1], int(sys.argv[2]))))")
    try:
        proc = subprocess.run([sys.executable, "-c", code, kind, str(n)], capture_output=True, text=True,
                              timeout=900)
        return float(json.loads(proc.stdout.strip().splitlines()[-1]))
    except Exception as exc:
        print(f"rss measurement of {kind} failed: {exc!r}", file=sys.stderr)
        return None


def _throughput(n: int) -> tuple[float, float]:
    from otel_ml._internal.quality import OutcomeTracker
    from otel_ml._internal.selftelemetry import SelfTelemetry

    now = [0.0]
    tracker = OutcomeTracker("classification", max_pending=n, ttl_s=1e9, clock=lambda: now[0],
                             selftelemetry=SelfTelemetry())
    batches = [_ids(s, min(n, s + _BATCH)) for s in range(0, n, _BATCH)]
    classes, scores, conf = _columns(min(n, _BATCH))
    actuals = (classes + 1) % 3
    t0 = time.perf_counter()
    for ids in batches:
        m = len(ids)
        tracker.remember_many(ids, classes[:m], scores=scores[:m], confidences=conf[:m])
        now[0] += 1.0
    t1 = time.perf_counter()
    for ids in reversed(batches):
        tracker.record_many(ids, actuals[:len(ids)])
    t2 = time.perf_counter()
    if tracker.evaluate().n != n:
        raise RuntimeError("throughput run did not join every row")
    return n / (t1 - t0), n / (t2 - t1)


def measure_pending_memory(n: int = 1_000_000) -> dict[str, float]:
    """Bytes per pending prediction (tracemalloc and RSS) vs a plain dict, and batch throughput."""
    per_million = 1e6 / n / 2**20
    ours = _traced_bytes("tracker", n)
    base = _traced_bytes("baseline", n)
    id_bytes = float(sys.getsizeof(f"req-{n:09d}"))
    out: dict[str, float] = {
        "pending": float(n),
        "bytes_per_pending": ours / n,
        "mb_per_million_pending": ours * per_million,
        "id_bytes_per_pending": id_bytes,
        "bytes_per_pending_excluding_ids": ours / n - id_bytes,
        "baseline_bytes_per_pending": base / n,
        "baseline_mb_per_million": base * per_million,
    }
    rss, rss_base = _rss_in_child("tracker", n), _rss_in_child("baseline", n)
    if rss is not None:
        out["rss_mb_per_million_pending"] = rss * 1e6 / n
    if rss_base is not None:
        out["baseline_rss_mb_per_million"] = rss_base * 1e6 / n
    out["remember_many_rows_per_s"], out["record_many_rows_per_s"] = _throughput(n)
    return out


def run(args: argparse.Namespace) -> int:
    r = measure_pending_memory(args.pending)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"pending predictions               {int(r['pending']):,}")
    print(f"memory, tracemalloc               {r['mb_per_million_pending']:8.1f} MB per 1M pending "
          f"({r['bytes_per_pending']:.0f} B each, of which the id string {r['id_bytes_per_pending']:.0f} B)")
    print(f"baseline dict of tuples           {r['baseline_mb_per_million']:8.1f} MB per 1M pending")
    if "rss_mb_per_million_pending" in r and "baseline_rss_mb_per_million" in r:
        print(f"memory, RSS                       {r['rss_mb_per_million_pending']:8.1f} MB per 1M pending "
              f"(baseline {r['baseline_rss_mb_per_million']:.1f} MB)")
    print(f"remember_many, 100k-row batches   {r['remember_many_rows_per_s'] / 1e6:8.2f} M rows/s")
    print(f"record_many, 100k-row batches     {r['record_many_rows_per_s'] / 1e6:8.2f} M rows/s")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("outcomes", help="memory per pending prediction and join throughput")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--pending", type=int, default=1_000_000, help="predictions kept pending")
    parser.set_defaults(handler=run)
