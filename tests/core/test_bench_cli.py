"""The benchmark commands run and report every figure they document (tiny sizes; no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest


def _bench(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "otel_ml.cli", "bench", *args, "--json"], capture_output=True,
                         text=True, timeout=600, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_bench_overhead_reports_one_and_three_monitors() -> None:
    """bench overhead gives sampled and unsampled ratios for one monitor and for three."""
    r = _bench("overhead", "--calls", "300", "--rounds", "1")
    for key in ("sampled_vs_naive", "unsampled_vs_naive", "sampled_three_monitors_vs_naive",
                "unsampled_three_monitors_vs_naive"):
        assert isinstance(r[key], float) and r[key] > 0, key


def test_bench_drift_reports_row_ratio_sample_and_label_retention() -> None:
    """bench drift gives row20_vs_record, an uncollapsed KS sample and the pending-label memory."""
    r = _bench("drift", "--rows", "20000", "--pending", "20000")
    assert isinstance(r["row20_vs_record"], float) and r["row20_vs_record"] > 0
    assert r["sample_size_one_subwindow"] == 2000
    outcomes = r["outcomes"]
    assert isinstance(outcomes, dict)
    assert outcomes["pending"] == 20000 and outcomes["mb_per_million_pending"] > 0
    assert outcomes["baseline_mb_per_million"] > 0


def test_bench_load_reports_both_services_and_rss() -> None:
    """bench load drives the example service and its bare twin and reports throughput, p99 and RSS per 10 %."""
    # The example service needs the fastapi extra and uvicorn: dev dependencies, so the main stage always
    # runs this; only the floor-SDK stage (core + the SDK seam, no web stack installed) does without.
    pytest.importorskip("uvicorn", reason="the example service's server (a dev dependency)")
    pytest.importorskip("fastapi", reason="the example service's framework (the fastapi extra)")
    r = _bench("load", "--requests", "2000", "--concurrency", "4", "--warmup", "100")
    assert r["requests"] == 2000
    for kind in ("with", "without"):
        side = r[kind]
        assert isinstance(side, dict)
        assert side["errors"] == 0, kind
        assert side["rps"] > 0 and side["p99_ms"] >= side["p50_ms"] > 0, kind
        assert side["rss_mb_start"] > 0 and side["rss_mb_after_warmup"] > 0, kind
        # RSS after the warm-up, then after every 10 % of the requests.
        assert [n for n, _ in side["rss_mb_progress"]] == [0, *range(200, 2001, 200)], kind
    for key in ("throughput_ratio", "p50_ratio", "p99_ratio"):
        ratio = r[key]
        assert isinstance(ratio, float) and ratio > 0, key


def test_bench_load_memory_only_runs_the_instrumented_service_alone() -> None:
    """--memory-only: no bare twin, no ratios; RSS per 10 % with its slope over the run and over its second half."""
    pytest.importorskip("uvicorn", reason="the example service's server (a dev dependency)")
    pytest.importorskip("fastapi", reason="the example service's framework (the fastapi extra)")
    r = _bench("load", "--memory-only", "--requests", "500", "--concurrency", "2", "--warmup", "50")
    assert "without" not in r and "throughput_ratio" not in r
    side = r["with"]
    assert isinstance(side, dict) and side["errors"] == 0 and side["rps"] > 0
    assert [n for n, _ in side["rss_mb_progress"]] == [0, *range(50, 501, 50)]
    assert isinstance(side["rss_slope_second_half_mb_per_100k"], float)


def test_bench_load_bad_arguments_exit_2() -> None:
    out = subprocess.run([sys.executable, "-m", "otel_ml.cli", "bench", "load", "--requests", "5"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--requests must be at least 100" in out.stderr


# The frameworks --instrumented measures beside scikit-learn, and the modules each needs.
FRAMEWORKS = {"onnx": ("onnxruntime", "skl2onnx"), "torch": ("torch",)}


def test_bench_overhead_instrumented_reports_sklearn_onnx_and_torch() -> None:
    """--instrumented gives the documented scikit-learn keys (bare, one SDK span, sampled, unsampled) and
    the same figures for onnxruntime and torch where they are installed: onnxruntime and skl2onnx are
    dev dependencies (so the ONNX part runs here), torch is in the heavy venv (tests/heavy runs this
    test there too); the floor venv has neither. Where a framework is missing the bench leaves its
    part out instead of failing."""
    r = _bench("overhead", "--instrumented", "--calls", "200", "--rounds", "1")
    times = ["sklearn_bare_ns", "sklearn_one_sdk_span_ns", "sklearn_instrumented_sampled_ns",
             "sklearn_instrumented_unsampled_ns"]
    ratios = ["sklearn_sampled_vs_bare", "sklearn_unsampled_vs_bare"]
    for prefix, modules in FRAMEWORKS.items():
        keys = [f"{prefix}_bare_ns", f"{prefix}_instrumented_sampled_ns", f"{prefix}_instrumented_unsampled_ns"]
        keys_ratio = [f"{prefix}_sampled_vs_bare", f"{prefix}_unsampled_vs_bare"]
        if all(importlib.util.find_spec(m) is not None for m in modules):
            times += keys
            ratios += keys_ratio
        else:
            assert not {*keys, *keys_ratio} & set(r), r
    for key in times:
        assert isinstance(r[key], float) and r[key] > 0, key
    for key in ratios:
        assert isinstance(r[key], float) and r[key] > 0.5, key


@pytest.mark.parametrize("instrumented", [False, True], ids=["core", "instrumented"])
def test_bench_overhead_runs_with_few_calls(instrumented: bool) -> None:
    """Fewer calls per round than the SDK's span export batch (512) still run: the span queue is sized
    for the SDK, not only for the round."""
    r = _bench("overhead", *(["--instrumented"] if instrumented else []), "--calls", "10", "--rounds", "1")
    key = "sklearn_unsampled_vs_bare" if instrumented else "unsampled_vs_naive"
    assert isinstance(r[key], float) and r[key] > 0, r
