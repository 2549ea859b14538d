"""The benchmark commands run and report every figure they document (tiny sizes; no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys


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
