"""Fixtures shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from otel_ml.cli import main


@pytest.fixture(scope="module")
def report_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("report")
    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    train, current = frame.iloc[:350].copy(), frame.iloc[350:].copy()
    current["mean_radius"] *= 1.3  # a unit change upstream
    current.loc[current.index[:10], "mean_texture"] = np.nan
    train.to_csv(tmp / "train.csv", index=False)
    current.to_csv(tmp / "current.csv", index=False)
    assert main(["profile", str(tmp / "train.csv"), "-o", str(tmp / "profile.json")]) == 0
    return tmp / "profile.json", tmp / "current.csv", current
