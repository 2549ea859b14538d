"""Run Evidently's DataDriftPreset on two .npy files; print one JSON line (seconds + scores).

Executed by ``otel-ml bench drift`` in whichever interpreter has Evidently (``.venv-bench``),
as ``python evidently_worker.py REF.npy CUR.npy``. Kept free of otel_ml imports on purpose.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def measure(ref_path: str, cur_path: str) -> dict[str, Any]:
    import importlib

    import numpy as np
    import pandas as pd

    evidently = importlib.import_module("evidently")
    Report = evidently.Report
    DataDriftPreset = importlib.import_module("evidently.presets").DataDriftPreset

    ref_a = np.load(ref_path)
    cur_a = np.load(cur_path)
    cols = [f"f{i}" for i in range(ref_a.shape[1])]
    ref = pd.DataFrame(ref_a, columns=cols)
    cur = pd.DataFrame(cur_a, columns=cols)
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(cur, ref)
    seconds = time.perf_counter() - start
    scores: dict[str, float] = {}
    methods: dict[str, str] = {}
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("column") in cols and isinstance(m.get("value"), (int, float)):
            scores[cfg["column"]] = float(m["value"])
            methods[cfg["column"]] = str(cfg.get("method"))
    return {"seconds": seconds, "scores": scores, "methods": methods, "version": evidently.__version__}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2])))
