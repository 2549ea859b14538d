"""The torch instrumentor on a real (tiny) model trained here on iris: training is not counted, an
eval / no_grad / inference_mode call is one inference per outermost call, the module is named after
the file torch.load read, and every call behaves as without otel_ml."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags

import otel_ml.auto
from otel_ml._internal import env, selftelemetry
from otel_ml.instrumentation.torch import TorchInstrumentor, state_hash
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented

torch = pytest.importorskip("torch")
nn = torch.nn


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, TorchInstrumentor(),
                      none_of=("auto_output_error", "auto_identity_error")) as capture:
        yield capture


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _mlp() -> Any:
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def _train(model: Any, x: Any, y: Any, steps: int = 30) -> None:
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()


def _inferences(cap: TelemetryCapture, **attrs: str) -> int:
    return sum(p.point.count for p in cap.points("ml.inference.duration", **attrs))


def test_training_is_not_counted_serving_is_one_inference_per_outermost_call(cap: TelemetryCapture,
                                                                              iris: Any) -> None:
    """A training loop counts nothing; eval+no_grad, inference_mode and eval with grad each count once per
    call (the Sequential, never its Linear/ReLU submodules), with the grad mode on the span."""
    x, y = iris
    model = _mlp()
    _train(model, x, y)
    assert _inferences(cap) == 0 and cap.spans() == []
    model.eval()
    version = state_hash(model)
    with torch.no_grad():
        model(x[:5])
        model(x[:1])
    with torch.inference_mode():
        model(x[:2])
    model(x[:3])  # eval mode, grad enabled: served all the same
    (point,) = cap.points("ml.inference.duration")  # one series: no submodule has one
    assert point.unit == "s"
    assert point.attributes == {"ml.model.name": "Sequential", "ml.model.version": version,
                                "ml.model.method": "forward"}
    assert point.point.count == 4
    (batch,) = cap.points("ml.inference.batch.size")
    assert batch.unit == "{row}" and batch.point.sum == 11 and batch.point.count == 4
    spans = cap.spans()
    assert [s.name for s in spans] == ["inference Sequential"] * 4
    assert [s.attributes["ml.torch.grad_mode"] for s in spans if s.attributes] == [
        "no_grad", "no_grad", "inference_mode", "grad"]
    assert all(s.attributes and s.attributes["ml.model.method"] == "forward" for s in spans)
    # Without class names no output is read.
    assert cap.points("ml.predictions") == []
    assert sum(p.point.count for p in cap.points("ml.prediction.confidence")) == 0
    # Training mode under no_grad (a validation pass that forgot eval()) is an inference; training is not.
    model.train()
    with torch.no_grad():
        model(x[:2])
    _train(model, x, y, steps=3)
    assert _inferences(cap) == 5
    assert cap.spans()[-1].attributes["ml.torch.grad_mode"] == "no_grad"  # type: ignore[index]


def test_an_eval_submodule_inside_a_training_step_is_not_counted(cap: TelemetryCapture, iris: Any) -> None:
    """A frozen eval-mode backbone run by a model in training is part of the training step; served on its
    own it is an inference."""
    x, _ = iris
    backbone = _mlp().eval().requires_grad_(False)

    class Student(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.head = nn.Linear(3, 3)

        def forward(self, v: Any) -> Any:
            return self.head(self.backbone(v))

    student = Student().train()
    student(x).sum().backward()
    assert _inferences(cap) == 0
    with torch.no_grad():
        backbone(x[:2])
    assert _inferences(cap, **{"ml.model.name": "Sequential"}) == 1
    assert _inferences(cap) == 1


def test_class_names_turn_logits_into_predicted_classes(cap: TelemetryCapture, iris: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With OTEL_ML_CLASS_NAMES an [N, C] output is read: argmax class by label, softmax max as confidence;
    a model ending in softmax is not softmaxed twice; an output of another width is not read."""
    monkeypatch.setenv(env.CLASS_NAMES, "0=setosa,1=versicolor,2=virginica")
    names = ["setosa", "versicolor", "virginica"]
    x, y = iris
    model = _mlp()
    _train(model, x, y, steps=60)
    model.eval()
    with torch.no_grad():
        logits = model(x[::4])
        with otel_ml.auto.prediction_ids(["row-120"]):
            one = model(x[120:121])
    rows = torch.cat([logits, one])
    probs = torch.softmax(rows, dim=1)
    tops = probs.argmax(dim=1).tolist()
    for i, label in enumerate(names):
        assert cap.counter("ml.predictions", **{"ml.prediction.class": label}) == tops.count(i)
    conf = cap.histogram("ml.prediction.confidence")
    assert conf.count == len(tops) and conf.sum == pytest.approx(float(probs.max(dim=1).values.sum()), rel=1e-5)
    last = cap.spans()[-1].attributes
    assert last is not None and last["ml.prediction.class"] == names[tops[-1]]
    assert last["ml.prediction.confidence"] == pytest.approx(float(probs[-1].max()), rel=1e-5)
    monitor = otel_ml.auto.monitor_of(model)
    assert monitor is not None and monitor.task == "classification"
    monitor.record_outcomes(["row-120"], [names[int(y[120])]])
    assert monitor.quality().accuracy == (1.0 if tops[-1] == int(y[120]) else 0.0)

    softmaxed = nn.Sequential(copy.deepcopy(model), nn.Softmax(dim=1)).eval()
    with torch.no_grad():
        p = softmaxed(x[:10])
    assert cap.histogram("ml.prediction.confidence", **{"ml.model.version": state_hash(softmaxed)}).sum == (
        pytest.approx(float(p.max(dim=1).values.sum()), rel=1e-5))

    embed = nn.Linear(4, 8).eval()
    with torch.no_grad():
        embed(x[:4])
    version = {"ml.model.version": state_hash(embed)}
    assert _inferences(cap, **version) == 1
    assert cap.points("ml.predictions", **version) == []


def test_inference_span_is_a_child_of_the_current_span(cap: TelemetryCapture, iris: Any) -> None:
    """Under a sampled request span the inference span is its child; under an unsampled parent no span is
    made and the call is still counted."""
    x, _ = iris
    model = _mlp().eval()
    tracer = cap.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("POST /predict") as parent, torch.no_grad():
        model(x[:1])
    (span,) = cap.spans("inference Sequential")
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.context is not None and span.context.trace_id == parent.get_span_context().trace_id
    unsampled = trace.NonRecordingSpan(SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True,
                                                   trace_flags=TraceFlags(TraceFlags.DEFAULT)))
    with trace.use_span(unsampled), torch.no_grad():
        model(x[:1])
    assert len(cap.spans("inference Sequential")) == 1
    assert _inferences(cap) == 2


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")
def test_identity_from_torch_load(cap: TelemetryCapture, iris: Any, tmp_path: Path) -> None:
    """torch.load(path) of a module, torch.jit.load(path), load_state_dict of a state dict (or a checkpoint's
    entry) loaded from a path: named after the file, its content hash as version; in memory: the class (a
    TorchScript module's original class) and the state_dict's hash. Never torch's version."""
    x, _ = iris
    model = _mlp().eval()

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    whole = tmp_path / "iris-mlp.pt"
    torch.save(model, whole)
    loaded = torch.load(whole, weights_only=False)
    with whole.open("rb") as fh:
        from_file = torch.load(fh, weights_only=False)
    weights = tmp_path / "iris-weights.pt"
    torch.save(model.state_dict(), weights)
    fresh = _mlp()
    fresh.load_state_dict(torch.load(weights))
    checkpoint = tmp_path / "ckpt-7.pt"
    torch.save({"model": model.state_dict(), "epoch": 7}, checkpoint)
    resumed = _mlp()
    resumed.load_state_dict(torch.load(checkpoint)["model"])
    scripted = tmp_path / "iris-script.pt"
    torch.jit.save(torch.jit.script(model), scripted)
    from_script = torch.jit.load(scripted)
    in_memory_script = torch.jit.script(_mlp().eval())
    twin = copy.deepcopy(model)
    other = _mlp().eval()
    with torch.no_grad():
        for m in (loaded, from_file, fresh.eval(), resumed.eval(), from_script, in_memory_script, model, twin, other):
            m(x[:2])
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "iris-script",
                                                     "ml.model.version": digest(scripted)}).count == 1
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "Sequential",
                                                     "ml.model.version": state_hash(in_memory_script)}).count == 1
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "iris-mlp",
                                                     "ml.model.version": digest(whole)}).count == 2
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "iris-weights",
                                                     "ml.model.version": digest(weights)}).count == 1
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "ckpt-7",
                                                     "ml.model.version": digest(checkpoint)}).count == 1
    # In memory: the same weights are one model version, other weights another.
    assert state_hash(model) == state_hash(twin) != state_hash(other)
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "Sequential",
                                                     "ml.model.version": state_hash(model)}).count == 2
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "Sequential",
                                                     "ml.model.version": state_hash(other)}).count == 1
    versions = {p.attributes["ml.model.version"] for p in cap.points("ml.inference.duration")}
    assert torch.__version__ not in versions and torch.__version__.split("+")[0] not in versions


def test_a_module_inside_another_instrumented_call_is_not_counted(cap: TelemetryCapture, iris: Any) -> None:
    """A scikit-learn estimator wrapping a torch module: one inference, the estimator's."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    from otel_ml.instrumentation.sklearn import SklearnInstrumentor

    sklearn_instrumentor = SklearnInstrumentor()
    sklearn_instrumentor.instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
    try:
        class TorchClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
            def __init__(self, module: Any = None) -> None:
                self.module = module

            def fit(self, features: Any, target: Any) -> TorchClassifier:
                self.classes_ = np.array([0, 1, 2])
                return self

            def predict_proba(self, features: Any) -> Any:
                with torch.no_grad():
                    logits = self.module(torch.as_tensor(features, dtype=torch.float32))
                return torch.softmax(logits, dim=1).numpy()

        x, y = iris
        clf = TorchClassifier(_mlp().eval()).fit(x.numpy(), y.numpy())
        clf.predict_proba(x[:6].numpy())
        (point,) = cap.points("ml.inference.duration")
        assert point.attributes["ml.model.name"] == "TorchClassifier" and point.point.count == 1
    finally:
        sklearn_instrumentor.uninstrument()


def test_calls_behave_as_without_otel_ml(cap: TelemetryCapture, iris: Any) -> None:
    """Same outputs, the same error for bad input, the very exception object a forward raises; tuple and
    dict outputs, hooks: unchanged."""
    x, _ = iris
    model = _mlp().eval()
    with torch.no_grad():
        instrumented = model(x[:10])
    TorchInstrumentor().uninstrument()
    try:
        with torch.no_grad():
            plain = model(x[:10])
            with pytest.raises(RuntimeError) as plain_error:
                model(torch.zeros(2, 5))
    finally:
        TorchInstrumentor().instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
    assert torch.equal(instrumented, plain)
    with torch.no_grad(), pytest.raises(RuntimeError) as error:
        model(torch.zeros(2, 5))
    assert str(error.value) == str(plain_error.value)

    boom = RuntimeError("device lost")

    class Flaky(nn.Module):  # type: ignore[misc]
        def forward(self, v: Any) -> Any:
            raise boom

    with torch.no_grad(), pytest.raises(RuntimeError) as caught:
        Flaky().eval()(x[:1])
    assert caught.value is boom
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "Flaky", "error.type": "RuntimeError"}).count == 1

    class Pair(nn.Module):  # type: ignore[misc]
        def forward(self, v: Any, scale: float = 2.0) -> Any:
            return v, {"scaled": v * scale}

    seen: list[Any] = []
    pair = Pair().eval()
    pair.register_forward_hook(lambda module, args, output: seen.append(output[0].shape))
    with torch.no_grad():
        first, extra = pair(x[:3], scale=3.0)
    assert torch.equal(first, x[:3]) and torch.equal(extra["scaled"], x[:3] * 3.0)
    assert seen == [torch.Size([3, 4])]
    assert cap.histogram("ml.inference.batch.size", **{"ml.model.name": "Pair"}).sum == 3


def test_recording_failures_are_counted_never_raised(cap: TelemetryCapture, iris: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure reading the output is counted (auto_output_error); the caller gets its result."""
    import otel_ml.instrumentation.torch as torch_instrumentation

    monkeypatch.setenv(env.CLASS_NAMES, "0=a,1=b,2=c")

    def broken(row: list[float]) -> list[float]:
        raise ValueError("cannot read")

    monkeypatch.setattr(torch_instrumentation, "_softmax", broken)
    x, _ = iris
    model = _mlp().eval()
    with torch.no_grad():
        out = model(x[:1])
        again = model(x[:1])
    assert torch.equal(out, again) and out.shape == (1, 3)
    assert _inferences(cap) == 2
    assert selftelemetry.DEFAULT.count("auto_output_error") == 2
    selftelemetry.DEFAULT.reset()


def test_compiled_module_is_counted_once_per_call(cap: TelemetryCapture, iris: Any) -> None:
    """torch.compile (fullgraph: the wrapper adds no graph break) - one inference per call, as the module
    it compiles."""
    import torch._dynamo

    x, _ = iris
    model = _mlp().eval()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    try:
        with torch.no_grad():
            a = compiled(x[:3])
            compiled(x[:3])
            b = model(x[:3])
    finally:
        torch._dynamo.reset()
    assert torch.allclose(a, b)
    (point,) = cap.points("ml.inference.duration")
    assert point.attributes["ml.model.name"] == "Sequential" and point.point.count == 3


def test_uninstrument_restores_every_original(cap: TelemetryCapture, iris: Any) -> None:
    """nn.Module.__call__, load_state_dict and torch.load are torch's own again; nothing is recorded."""
    x, _ = iris
    model = _mlp().eval()
    with torch.no_grad():
        model(x[:1])
    assert otel_ml.auto.monitor_of(model) is not None
    TorchInstrumentor().uninstrument()
    try:
        assert nn.Module.__call__ is nn.Module._wrapped_call_impl
        assert not hasattr(nn.Module.load_state_dict, "_otel_ml_original")
        assert not hasattr(torch.load, "_otel_ml_original")
        assert not hasattr(torch.jit.load, "_otel_ml_original")
        assert otel_ml.auto.monitor_of(model) is None
        with torch.no_grad():
            model(x[:1])
        assert _inferences(cap) == 0  # the closed monitor exports nothing, and nothing new was made
    finally:
        TorchInstrumentor().instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)
