"""An unmodified script serving an ONNX model (and a scikit-learn one) under ``opentelemetry-instrument``: the
``otel_ml_onnxruntime`` entry point turns its session runs into inferences named after the model file, with spans
under the caller's span; ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` turns just that one off."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.instrumentation.zero_code import Exported, run

# Nothing here mentions otel_ml: what it records comes from the entry point alone.
DRIVE = """
import os
import numpy as np
import onnxruntime as ort
from opentelemetry import trace
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

x, y = load_iris(return_X_y=True)
x = x.astype(np.float32)
session = ort.InferenceSession(os.environ["ONNX_MODEL"], providers=["CPUExecutionProvider"])
tracer = trace.get_tracer("app")
for n in (1, 3, 5):
    with tracer.start_as_current_span("request"):
        session.run(None, {"X": x[::7][:n]})
session.run(["probabilities"], {"X": x[100:102]})
LogisticRegression(max_iter=500).fit(x, y).predict(x[:2])
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    path = tmp_path_factory.mktemp("models") / "iris-onnx.onnx"
    path.write_bytes(to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}).SerializeToString())
    return path


@pytest.fixture(scope="module")
def exported(model_file: Path) -> Exported:
    return run(DRIVE, {"ONNX_MODEL": str(model_file)})


def _model(model_file: Path) -> dict[str, str]:
    return {"ml.model.name": "iris-onnx", "ml.model.version": hashlib.sha256(model_file.read_bytes()).hexdigest()[:12]}


def _expected_classes(model_file: Path) -> dict[str, int]:
    x = load_iris(return_X_y=True)[0].astype(np.float32)
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    rows = np.vstack([x[::7][:1], x[::7][:3], x[::7][:5], x[100:102]])
    proba: Any = session.run(["probabilities"], {"X": rows})[0]
    counts = np.bincount(proba.argmax(axis=1), minlength=3)
    return {str(i): int(n) for i, n in enumerate(counts) if n}


def test_every_run_is_an_inference_of_the_model_file(exported: Exported, model_file: Path) -> None:
    """Four runs, 11 rows, method "run"; the name is the file's stem, the version its content hash; classes and
    confidence per row; the scikit-learn model beside it is still its own inference."""
    model = _model(model_file)
    (duration,) = exported.final("ml.inference.duration", **model)
    assert duration["point"]["count"] == 4 and duration["unit"] == "s"
    assert duration["attributes"]["ml.model.method"] == "run"
    assert duration["attributes"]["ml.model.version"] != ort.__version__
    assert duration["resource"]["service.name"] == "zero-code-test"
    (batch,) = exported.final("ml.inference.batch.size", **model)
    assert batch["point"]["sum"] == 11 and batch["unit"] == "{row}"
    classes = {p["attributes"]["ml.prediction.class"]: p["point"]["value"]
               for p in exported.final("ml.predictions", **model)}
    assert classes == _expected_classes(model_file)
    (conf,) = exported.final("ml.prediction.confidence", **model)
    assert conf["point"]["count"] == 11
    sklearn = exported.final("ml.inference.duration", **{"ml.model.name": "LogisticRegression"})
    assert [p["point"]["count"] for p in sklearn] == [1]
    dropped = {p["attributes"].get("otel_ml.reason") for p in exported.points("otel_ml.dropped")}
    assert not {reason for reason in dropped if str(reason).startswith("auto_")}  # nothing we failed to record


def test_inference_spans_sit_under_the_callers_span(exported: Exported) -> None:
    """The three runs inside a span are its children; the one outside is a root span."""
    by_id = {s["context"]["span_id"]: s for s in exported.spans}
    inferences = [s for s in exported.spans if s["name"] == "inference iris-onnx"]
    assert len(inferences) == 4
    parents = [by_id[s["parent_id"]]["name"] if s["parent_id"] else None for s in inferences]
    assert sorted(parents, key=str) == [None, "request", "request", "request"]
    assert all(s["attributes"]["ml.model.method"] == "run" for s in inferences)


def test_disabled_by_the_standard_variable(model_file: Path) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_onnxruntime: no ONNX inference; scikit-learn's still are."""
    got = run(DRIVE, {"ONNX_MODEL": str(model_file), "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otel_ml_onnxruntime"})
    assert not got.points("ml.inference.duration", **{"ml.model.name": "iris-onnx"})
    assert not [s for s in got.spans if s["name"] == "inference iris-onnx"]
    assert [s["name"] for s in got.spans].count("request") == 3
    assert [p["point"]["count"] for p in got.final("ml.inference.duration", **{"ml.model.name": "LogisticRegression"})
            ] == [1]
