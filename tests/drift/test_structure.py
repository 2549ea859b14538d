"""The drift package is light to import and exports its public names (cycles: tests/core/test_structure.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_drift_does_not_import_scipy() -> None:
    """scipy.stats (~1 s to import) loads on the first evaluation, not with the package."""
    code = ("import sys, otel_ml._internal.drift as d; assert 'scipy' not in sys.modules, 'scipy imported'; "
            "import numpy as np; p = d.ReferenceProfile.from_data({'x': np.arange(500.0)}); "
            "t = d.DriftTracker(p); t.update(np.arange(200.0).reshape(-1, 1)); "
            "assert 'scipy' not in sys.modules, 'scipy imported by update'; t.evaluate(); "
            "assert 'scipy.stats' in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_public_names() -> None:
    """otel_ml._internal.drift exports exactly its documented public API."""
    import otel_ml._internal.drift as drift

    assert sorted(drift.__all__) == ["DriftPolicy", "DriftResult", "DriftStatus", "DriftTracker", "FeatureKind",
                                     "FeatureProfile", "FeatureQuality", "ReferenceProfile"]
    assert all(hasattr(drift, n) for n in drift.__all__)
