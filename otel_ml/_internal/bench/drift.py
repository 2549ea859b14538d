"""``otel-ml bench drift``: drift throughput, per-row latency, evaluation time vs Evidently, memory.

Figures, all from one run on synthetic Gaussian data (5 of 20 features shifted by 0.3 sd):

* ``batched_values_per_s``: ``DriftTracker.update`` on 10k x 20 numpy batches;
* ``row20_us`` / ``row20_numpy_us``: one 20-feature row as a dict / as a 1-D numpy array;
* ``record_us`` / ``row20_vs_record``: one OpenTelemetry SDK ``histogram.record(value, attrs)``
  with three attributes (a ``MeterProvider`` with an ``InMemoryMetricReader``), timed the same
  way in the same run, and the dict row's time divided by it - what drift costs per inference
  in units of one metric recording, which stays meaningful on a loaded machine;
* ``sample_size_one_subwindow``: the KS/Wasserstein sample of a window whose rows all landed in
  one of its 5 sub-windows (a burst or a batch job): the policy's ``sample_size``, 2000;
* ``eval20_s``: a full evaluation of 20 features, 100k x 20 reference vs 10k current: counting the
  10k current rows plus ``evaluate()`` (PSI, JS, Wasserstein, KS per feature); the reference
  profile is built once, like at deploy time, and its build time is reported separately
  (``profile_build_s``, and ``speedup_incl_profile``);
* ``evidently_eval20_s``: Evidently's ``DataDriftPreset`` on the same arrays (in this
  interpreter if it imports Evidently, else in ``.venv-bench`` through a subprocess);
  ``wasserstein_formula_max_diff`` compares our normed Wasserstein on the full arrays with
  Evidently's (its default method for >1000 rows), ``wasserstein_tracker_max_diff`` the
  tracker's sample-based values (2000-value samples) with it;
* ``rss_mb_per_100_features``: resident memory growth from before building a 100-feature
  profile and tracker to after 1M rows; ``rss_growth_after_warmup_mb`` the growth between 100k
  and 1M rows (flat means ~0).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from otel_ml._internal.bench.outcomes import measure_pending_memory, rss_mb

EVIDENTLY_INSTALL = "python -m venv .venv-bench && .venv-bench/bin/pip install 'evidently==0.7.*' 'pandas<3'"


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(100_000, 20))
    cur = rng.normal(size=(10_000, 20))
    cur[:, :5] += 0.3
    return ref, cur


def _evidently(ref: np.ndarray, cur: np.ndarray) -> dict[str, Any] | None:
    import importlib.util

    if importlib.util.find_spec("evidently") is not None:
        return _evidently_subprocess(sys.executable, ref, cur)
    candidates = [Path.cwd() / ".venv-bench/bin/python",
                  Path(__file__).resolve().parents[3] / ".venv-bench/bin/python"]
    for py in candidates:
        if py.exists():
            return _evidently_subprocess(str(py), ref, cur)
    return None


def _evidently_subprocess(python: str, ref: np.ndarray, cur: np.ndarray) -> dict[str, Any] | None:
    worker = Path(__file__).with_name("evidently_worker.py")
    with tempfile.TemporaryDirectory() as tmp:
        rp, cp = os.path.join(tmp, "ref.npy"), os.path.join(tmp, "cur.npy")
        np.save(rp, ref)
        np.save(cp, cur)
        proc = subprocess.run([python, str(worker), rp, cp], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(f"evidently: failed in {python}: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["python"] = python
    return result


def measure(memory_rows: int = 1_000_000) -> dict[str, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otel_ml._internal.drift import DriftPolicy, DriftTracker, ReferenceProfile
    from otel_ml._internal.drift import methods as m

    out: dict[str, Any] = {}
    ref, cur = _data()
    names = [f"f{i}" for i in range(20)]
    t0 = time.perf_counter()
    profile = ReferenceProfile.from_data(ref, feature_names=names)
    out["profile_build_s"] = time.perf_counter() - t0

    # throughput: 10k x 20 batches
    tracker = DriftTracker(profile)
    tracker.update(cur)
    batches = 50
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(batches):
        tracker.update(cur)
    out["batched_values_per_s"] = batches * cur.size / (time.perf_counter() - t0)

    # single rows
    row_dict = {n: float(v) for n, v in zip(names, cur[0], strict=True)}
    row_np = cur[1].copy()
    calls = 50_000
    for label, row in (("row20_us", row_dict), ("row20_numpy_us", row_np)):
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(calls):
                tracker.update(row)
            samples.append((time.perf_counter() - t0) / calls * 1e6)
        out[label] = min(samples)

    # one SDK histogram recording with three attributes, timed like the rows
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = provider.get_meter("otel_ml.bench").create_histogram("bench.duration", unit="s")
    attrs = {"ml.model.name": "bench", "ml.model.version": "1", "ml.prediction.class": "a"}
    histogram.record(0.01, attrs)
    samples = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            histogram.record(0.01, attrs)
        samples.append((time.perf_counter() - t0) / calls * 1e6)
    out["record_us"] = min(samples)
    out["row20_vs_record"] = out["row20_us"] / out["record_us"]
    provider.shutdown()

    # all rows of a window in one of its 5 sub-windows: the sample must not shrink to 1/5
    burst = DriftTracker(profile, clock=lambda: 0.0)
    burst.update(cur)
    out["sample_size_one_subwindow"] = burst.evaluate()[names[0]].sample_n

    # full evaluation, 100k x 20 reference vs 10k current
    tracker.evaluate()  # warm imports
    evals = []
    results: dict[str, Any] = {}
    for _ in range(5):
        t = DriftTracker(profile, policy=DriftPolicy(sub_windows=1))
        t0 = time.perf_counter()
        t.update(cur)
        results = t.evaluate()
        evals.append(time.perf_counter() - t0)
    out["eval20_s"] = statistics.median(evals)
    out["drifted_features"] = sorted(k for k, r in results.items() if r.status.name in ("DRIFT", "WARNING"))

    ev = _evidently(ref, cur)
    if ev is None:
        out["evidently"] = f"not installed (pip install 'evidently==0.7.*' 'pandas<3'; e.g. {EVIDENTLY_INSTALL})"
        out["evidently_eval20_s"] = None
        out["speedup_vs_evidently"] = None
    else:
        out["evidently"] = f"evidently {ev.get('version')} ({ev.get('python', sys.executable)})"
        out["evidently_eval20_s"] = ev["seconds"]
        out["speedup_vs_evidently"] = ev["seconds"] / out["eval20_s"]
        out["speedup_incl_profile"] = ev["seconds"] / (out["eval20_s"] + out["profile_build_s"])
        formula, tracked = [], []
        for i, n in enumerate(names):
            if n in ev["scores"] and "Wasserstein" in ev["methods"].get(n, ""):
                exact = m.wasserstein(ref[:, i], cur[:, i]) / max(float(ref[:, i].std()), m.WASSERSTEIN_STD_FLOOR)
                formula.append(abs(exact - ev["scores"][n]))
                tracked.append(abs(results[n].scores["wasserstein"] - ev["scores"][n]))
        out["wasserstein_compared"] = len(formula)
        out["wasserstein_formula_max_diff"] = max(formula) if formula else None
        out["wasserstein_tracker_max_diff"] = max(tracked) if tracked else None
        ev_drifted = sorted(n for n in names if ev["scores"].get(n, 0.0) >= 0.1)
        out["evidently_drifted_features"] = ev_drifted

    # memory of a 100-feature monitor over 1M rows
    rng = np.random.default_rng(1)
    ref100 = rng.normal(size=(20_000, 100))
    batch = rng.normal(size=(1_000, 100))
    gc.collect()
    rss0 = rss_mb()
    p100 = ReferenceProfile.from_data(ref100, feature_names=[f"g{i}" for i in range(100)])
    t100 = DriftTracker(p100)
    fed = 0
    rss_warm = None
    while fed < memory_rows:
        t100.update(batch)
        fed += batch.shape[0]
        if fed == 100_000:
            t100.evaluate()
            gc.collect()
            rss_warm = rss_mb()
    t100.evaluate()
    gc.collect()
    rss1 = rss_mb()
    out["memory_rows"] = fed
    out["rss_mb_per_100_features"] = rss1 - rss0
    out["rss_growth_after_warmup_mb"] = rss1 - (rss_warm if rss_warm is not None else rss1)
    return out


def run(args: argparse.Namespace) -> int:
    result = measure(memory_rows=args.rows)
    # Delayed labels: what the monitor keeps per prediction waiting for its label (bench/outcomes.py).
    result["outcomes"] = measure_pending_memory(args.pending)
    if args.json:
        print(json.dumps(result))
        return 0
    ev = result["evidently_eval20_s"]
    print(f"batched update (10k x 20 numpy)   {result['batched_values_per_s'] / 1e6:8.1f} M values/s  (target >= 10)")
    print(f"one 20-feature row, dict          {result['row20_us']:8.2f} us            (target <= 10)")
    print(f"one 20-feature row, numpy         {result['row20_numpy_us']:8.2f} us")
    print(f"one SDK histogram.record, 3 attrs {result['record_us']:8.2f} us            "
          f"(a dict row costs {result['row20_vs_record']:.1f} x that)")
    print(f"KS sample, all rows in 1 of 5 sub-windows {result['sample_size_one_subwindow']:6d} values")
    print(f"profile build, 100k x 20          {result['profile_build_s'] * 1e3:8.1f} ms (once, at deploy)")
    print(f"evaluation, 100k x 20 vs 10k      {result['eval20_s'] * 1e3:8.1f} ms  "
          f"drift or warning: {result['drifted_features']}")
    if ev is None:
        print(f"evidently: {result['evidently']}")
    else:
        print(f"Evidently DataDriftPreset         {ev * 1e3:8.1f} ms  [{result['evidently']}]")
        print(f"speedup vs Evidently              {result['speedup_vs_evidently']:8.1f} x  (target >= 100; "
              f"{result['speedup_incl_profile']:.1f} x including the profile build)")
        print(f"Wasserstein (normed) agreement    formula max |diff| {result['wasserstein_formula_max_diff']:.2e}, "
              f"tracker (2000-value samples) max |diff| {result['wasserstein_tracker_max_diff']:.3f} "
              f"over {result['wasserstein_compared']} features; Evidently drifted: "
              f"{result['evidently_drifted_features']}")
    print(f"memory, 100 features, {result['memory_rows']:,} rows   {result['rss_mb_per_100_features']:8.2f} MB RSS  "
          f"(target <= 5; growth after 100k rows {result['rss_growth_after_warmup_mb']:.2f} MB)")
    o = result["outcomes"]
    print(f"pending labels, {int(o['pending']):,} predictions   {o['mb_per_million_pending']:8.1f} MB per 1M "
          f"(tracemalloc, ids included; plain dict of tuples {o['baseline_mb_per_million']:.1f} MB = "
          f"{o['mb_per_million_pending'] / o['baseline_mb_per_million']:.2f}x)")
    if "rss_mb_per_million_pending" in o and "baseline_rss_mb_per_million" in o:
        print(f"pending labels, RSS               {o['rss_mb_per_million_pending']:8.1f} MB per 1M "
              f"(plain dict {o['baseline_rss_mb_per_million']:.1f} MB)")
    print(f"remember_many / record_many       {o['remember_many_rows_per_s'] / 1e6:8.2f} / "
          f"{o['record_many_rows_per_s'] / 1e6:.2f} M rows/s (100k-row batches)")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("drift", help="drift throughput, latency, memory and a comparison with Evidently")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows fed to the 100-feature memory test")
    parser.add_argument("--pending", type=int, default=1_000_000,
                        help="predictions kept waiting for labels in the retention measurement")
    parser.set_defaults(handler=run)
