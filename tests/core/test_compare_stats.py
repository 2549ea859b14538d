"""The statistics `otel-ml compare` applies to Prometheus data, checked against numpy and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from otel_ml._internal.compare import _bucket_table, quantile
from otel_ml.cli import main


def _cumulative(samples: np.ndarray, bounds: list[float]) -> list[tuple[float, float]]:
    return [(b, float((samples <= b).sum())) for b in bounds] + [(math.inf, float(len(samples)))]


def test_quantile_interpolates_within_a_bucket_like_histogram_quantile() -> None:
    rng = np.random.default_rng(7)
    samples = rng.lognormal(mean=-3, sigma=0.6, size=20_000)
    bounds = [float(b) for b in np.linspace(0.001, 0.5, 500)]  # fine buckets: error <= one width
    for q in (0.5, 0.9, 0.95, 0.99):
        got = quantile(q, _cumulative(samples, bounds))
        assert got is not None and abs(got - float(np.quantile(samples, q))) <= bounds[1] - bounds[0]
    # Prometheus's rules: the +Inf bucket answers with the highest finite bound; no observations -> none.
    assert quantile(0.99, [(0.1, 0.0), (0.2, 1.0), (math.inf, 100.0)]) == 0.2
    assert quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


def test_bucket_table_feeds_the_same_chi_square_as_the_raw_histograms() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.exponential(0.05, 3000), rng.exponential(0.06, 3000)
    bounds = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
    table = _bucket_table(_cumulative(a, bounds), _cumulative(b, bounds))
    assert table is not None
    edges = [-np.inf, *bounds, np.inf]
    raw = [np.histogram(a, edges)[0], np.histogram(b, edges)[0]]
    keep = [i for i in range(len(edges) - 1) if raw[0][i] + raw[1][i] > 0]
    expected = [[float(r[i]) for i in keep] for r in raw]
    assert table == expected
    assert stats.chi2_contingency(table)[1] == pytest.approx(stats.chi2_contingency(expected)[1])


def test_bad_arguments_exit_2_naming_them(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["compare", "--model", "m", "--baseline", "1", "--candidate", "2"]
    assert main([*base, "--prometheus", "localhost:9090"]) == 2
    assert "--prometheus 'localhost:9090'" in capsys.readouterr().err
    assert main([*base, "--range", "an hour"]) == 2
    assert "--range 'an hour'" in capsys.readouterr().err
    assert main([*base, "--alpha", "2"]) == 2
    assert main([*base, "--prometheus", "http://127.0.0.1:9"]) == 2
    assert "cannot reach Prometheus at http://127.0.0.1:9" in capsys.readouterr().err
