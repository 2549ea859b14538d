"""torch modules called under an unsampled parent take the QuickLane (one append per one-row call,
folded later). The same calls are made twice, once sampled (the full path, which test_torch.py
checks against torch's own softmax) and once unsampled: what each pass adds to every series of the
model - counts, sums, every bucket, class counts, dropped counts - must be the same, with and
without class names, for logits and probabilities, one row and batches, NaN rows, every grad mode,
keyword inputs and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otel_ml._internal import env
from otel_ml.instrumentation.torch import TorchInstrumentor
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented
from tests.instrumentation.lanes import calls_and_rows, lane, predicted_classes, same_either_way, unsampled_parent

torch = pytest.importorskip("torch")
nn = torch.nn


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, TorchInstrumentor(), none_of=("auto_identity_error",)) as capture:
        yield capture


@pytest.fixture(scope="module")
def iris() -> Any:
    from sklearn.datasets import load_iris

    x, _ = load_iris(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return torch.tensor(x, dtype=torch.float32)


class Keyword(nn.Module):  # type: ignore[misc]
    """Takes its input by keyword, as Hugging Face style modules do."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *, features: Any) -> Any:
        return self.inner(features)


@pytest.mark.parametrize("classes", [3, 2])  # three classes; binary (a score per row on the full path)
def test_logits_and_probabilities_count_the_same(cap: TelemetryCapture, iris: Any, classes: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["setosa", "versicolor", "virginica"][:classes]
    monkeypatch.setenv(env.CLASS_NAMES, ",".join(f"{i}={n}" for i, n in enumerate(names)))
    logits = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, classes)).eval()
    probabilities = nn.Sequential(nn.Linear(4, classes), nn.Softmax(dim=1)).eval()
    keyword = Keyword(nn.Linear(4, classes)).eval()
    nan_row = torch.full((1, 4), float("nan"))

    def calls() -> None:
        with torch.inference_mode():
            for i in range(0, 150, 3):
                logits(iris[i:i + 1])                  # one row, logits: the lane
                probabilities(iris[i + 1:i + 2])       # one row, already a distribution: the lane
            logits(iris[10:17])                        # a batch: the full path
            logits(nan_row)                            # NaN scores: the full path, as it counts them
            keyword(features=iris[60:61])              # the input by keyword
        with torch.no_grad():
            logits(iris[100:101])
        logits(iris[101:102])                          # eval mode with grad enabled: an inference too

    added = same_either_way(cap, calls)
    counted = predicted_classes(added)
    assert set(counted) <= set(names) and len(counted) == classes
    # 50 + 50 one-row calls, the batch of 7, the NaN row, the keyword call and the two grad modes
    assert calls_and_rows(added) == (100 + 1 + 1 + 1 + 2, 100 + 7 + 1 + 1 + 2)
    with unsampled_parent(), torch.inference_mode():
        logits(iris[:1])
    assert len(lane(logits).pending) == 1  # the lane really took it (folded by the next collection)


def test_without_class_names_and_with_errors_counts_the_same(cap: TelemetryCapture, iris: Any) -> None:
    """No classes configured: the output is not read, one row goes the lane; an exception reaches the
    caller as the very object raised and is counted with its type either way."""
    embed = nn.Linear(4, 8).eval()
    boom = RuntimeError("device lost")
    raised: list[BaseException] = []

    class Flaky(nn.Module):  # type: ignore[misc]
        def forward(self, v: Any) -> Any:
            if v.shape[0] == 1 and float(v[0, 0]) > 1.0:
                raise boom
            return v

    class Stack(nn.Module):  # type: ignore[misc]
        def forward(self, v: Any) -> Any:
            return torch.stack(v)

    flaky, stack = Flaky().eval(), Stack().eval()

    def calls() -> None:
        with torch.inference_mode():
            for i in range(40):
                embed(iris[i:i + 1])                    # one row: the lane
                try:
                    flaky(iris[i + 100:i + 101])        # raises for some rows: the full path, late
                except RuntimeError as exc:
                    raised.append(exc)
            embed(iris[:5])                             # a batch
            stack([iris[0], iris[1]])                   # a list of tensors: two rows, the full path
            embed(torch.ones(4))                        # a 1-D input: its length is the batch

    added = same_either_way(cap, calls)
    errors = sum(float(iris[i + 100, 0]) > 1.0 for i in range(40))
    assert 0 < errors < 40 and len(raised) == 2 * errors and all(e is boom for e in raised)
    failed = [v[0] for k, v in added.items() if k[0] == "ml.inference.duration" and "error.type" in dict(k[1])]
    assert failed == [errors]
    assert not [k for k in added if k[0] in ("ml.predictions", "ml.prediction.confidence")]
    assert calls_and_rows(added) == (40 + 40 + 3, 40 + 40 + 5 + 2 + 4)
    with unsampled_parent(), torch.inference_mode():
        embed(iris[:1])
    assert len(lane(embed).pending) == 1


def test_bench_overhead_measures_torch() -> None:
    """``otel-ml bench overhead --instrumented`` measures the torch lane where torch is installed (only
    here: the main venv has no torch, where the same test checks the part is left out)."""
    from tests.core.test_bench_cli import test_bench_overhead_instrumented_reports_sklearn_onnx_and_torch

    test_bench_overhead_instrumented_reports_sklearn_onnx_and_torch()
