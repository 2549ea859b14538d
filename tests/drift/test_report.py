"""`otel-ml report` from a profile and a data file: the numbers it shows are the profile's own
comparison and numpy's histograms, the file is self-contained, bad input exits 2 naming it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from otel_ml._internal.drift.features import numeric_bin_index
from otel_ml._internal.drift.profile import ReferenceProfile
from otel_ml._internal.report import from_data
from otel_ml.cli import main


def test_report_shows_the_profiles_comparison_and_numpys_histograms(
        report_files: tuple[Path, Path, pd.DataFrame]) -> None:
    profile_path, data_path, current = report_files
    report = from_data(str(profile_path), str(data_path))
    profile = ReferenceProfile.load(profile_path)
    expected = profile.compare(pd.read_csv(data_path))
    assert {f.name: f.status for f in report.features} == {k: v.status.name.lower() for k, v in expected.items()}
    by_name = {f.name: f for f in report.features}
    assert by_name["mean_radius"].status == "drift"
    assert by_name["mean_radius"].scores["psi"] == pytest.approx(expected["mean_radius"].scores["psi"])
    fp = profile.feature("mean_radius")
    values = current["mean_radius"].to_numpy(dtype=float)
    counts = np.bincount(numeric_bin_index(fp.edges_array, values), minlength=fp.n_bins)
    assert by_name["mean_radius"].current == pytest.approx(list(counts / counts.sum()))
    assert by_name["mean_radius"].reference == pytest.approx(list(fp.proportions))
    assert by_name["mean_texture"].quality["missing"] == 10
    out_of_range = int(((values < fp.min) | (values > fp.max)).sum())
    assert out_of_range > 0 and by_name["mean_radius"].quality["out of range"] == out_of_range


def test_the_html_is_one_self_contained_file(report_files: tuple[Path, Path, pd.DataFrame], tmp_path: Path) -> None:
    profile_path, data_path, _ = report_files
    out = tmp_path / "r.html"
    assert main(["report", "--profile", str(profile_path), "--data", str(data_path), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.count('<svg class="chart"') == 30  # one chart per feature
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', text)  # nothing fetched when opened
    assert "@import" not in text and "<link" not in text
    assert 'data-charts="30"' in text


def test_bad_input_exits_2_naming_the_file_or_column(report_files: tuple[Path, Path, pd.DataFrame], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    profile_path, data_path, _ = report_files
    out = str(tmp_path / "r.html")
    assert main(["report", "--profile", str(tmp_path / "nope.json"), "--data", str(data_path), "-o", out]) == 2
    assert "nope.json: no such profile file" in capsys.readouterr().err
    assert main(["report", "--profile", str(profile_path), "--data", str(data_path), "--prediction", "score",
                 "-o", out]) == 2
    assert "no column 'score' (--prediction)" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert main(["report", "--profile", str(profile_path), "--data", str(other), "-o", out]) == 2
    assert "other.csv: none of the profile's columns" in capsys.readouterr().err
    assert main(["report", "--prometheus", "http://127.0.0.1:9", "--model", "m", "-o", out]) == 2
    assert "cannot reach Prometheus at http://127.0.0.1:9" in capsys.readouterr().err
    assert main(["report", "-o", out]) == 2
    assert "give --profile and --data" in capsys.readouterr().err
