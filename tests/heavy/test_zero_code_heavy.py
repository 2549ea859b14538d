"""An unmodified script training and serving a torch model and generating with a transformers one, run
under ``opentelemetry-instrument``: the otel_ml_torch and otel_ml_transformers entry points load and
export inferences and a GenAI generation, and the standard variable turns them off."""

from __future__ import annotations

import pytest

from tests.instrumentation.zero_code import run

pytest.importorskip("torch")
pytest.importorskip("transformers")

DRIVE = """
import torch, transformers
torch.manual_seed(0)
mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
optimizer = torch.optim.SGD(mlp.parameters(), lr=0.1)
x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
for _ in range(5):                       # training: not inferences
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(mlp(x), y).backward()
    optimizer.step()
mlp.eval()
class FraudNet(torch.nn.Module):         # a second model, of the user's own class, served beside it
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 2))
    def forward(self, features):
        return self.body(features)
net = FraudNet().eval()
with torch.no_grad():
    for n in (1, 2, 3):
        mlp(x[:n])
    net(x[:4])
# 20 one-row requests whose upstream did not sample the trace: no span, the QuickLane
from opentelemetry import context, propagate
import otel_ml.auto
token = context.attach(propagate.extract({"traceparent": f"00-{'f' * 32}-{'e' * 16}-00"}))
with torch.inference_mode():
    for i in range(20):
        mlp(x[i:i + 1])
        if i % 2:
            net(x[i:i + 1])
context.detach(token)
import os
if "otel_ml_torch" not in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", ""):
    assert len(otel_ml.auto.monitor_of(mlp).quick_lane().pending) == 20  # folded at the final export
    assert len(otel_ml.auto.monitor_of(net).quick_lane().pending) == 10
config = transformers.GPT2Config(vocab_size=64, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                 bos_token_id=None, eos_token_id=None, pad_token_id=1)
lm = transformers.GPT2LMHeadModel(config).eval()
prompt = torch.tensor([[5, 6, 7, 8]])
out = lm.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=5, do_sample=False)
assert out.shape == (1, 9), out.shape
"""
OFFLINE = {"HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def exported():  # type: ignore[no-untyped-def]
    return run(DRIVE, OFFLINE)


@pytest.mark.parametrize(("model", "spans", "rows", "unsampled"), [("Sequential", 3, 6, 20), ("FraudNet", 1, 4, 10)])
def test_torch_inferences_are_exported(exported, model: str, spans: int, rows: int,  # type: ignore[no-untyped-def]
                                       unsampled: int) -> None:
    """Each model on its own series: the MLP's three served calls (6 rows) and the user's own
    FraudNet's one batch of 4 with spans, their one-row calls under an unsampled upstream parent
    without; none of the training steps, none of the layers inside either model, none of GPT-2's
    forward passes."""
    names = {p["attributes"]["ml.model.name"] for p in exported.final("ml.inference.duration")}
    assert names == {"Sequential", "FraudNet"}
    (duration,) = exported.final("ml.inference.duration", **{"ml.model.name": model})
    assert duration["attributes"]["ml.model.method"] == "forward"
    assert duration["point"]["count"] == spans + unsampled and duration["unit"] == "s"
    (batch,) = exported.final("ml.inference.batch.size", **{"ml.model.name": model})
    assert batch["point"]["sum"] == rows + unsampled and batch["point"]["count"] == spans + unsampled
    inferences = [s for s in exported.spans if s["name"] == f"inference {model}"]
    assert len(inferences) == spans
    assert {s["attributes"]["ml.torch.grad_mode"] for s in inferences} == {"no_grad"}


def test_generate_is_exported_as_a_genai_generation(exported) -> None:  # type: ignore[no-untyped-def]
    """One generation: 4 input and 5 output tokens, TTFT once, its span named after the operation and model."""
    usage = {p["attributes"]["gen_ai.token.type"]: p for p in exported.final("gen_ai.client.token.usage")}
    assert usage["input"]["point"]["sum"] == 4 and usage["output"]["point"]["sum"] == 5
    assert usage["output"]["unit"] == "{token}"
    assert usage["output"]["attributes"]["gen_ai.request.model"] == "GPT2LMHeadModel"
    (ttft,) = exported.final("gen_ai.server.time_to_first_token")
    (duration,) = exported.final("gen_ai.server.request.duration")
    assert ttft["point"]["count"] == 1 and ttft["point"]["sum"] <= duration["point"]["sum"]
    (span,) = [s for s in exported.spans if s["name"].startswith("text_completion")]
    assert span["name"] == "text_completion GPT2LMHeadModel"
    assert span["attributes"]["gen_ai.usage.output_tokens"] == 5


def test_disabled_by_the_standard_variable() -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_torch,otel_ml_transformers: nothing recorded."""
    got = run(DRIVE, {**OFFLINE, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otel_ml_torch,otel_ml_transformers"})
    assert not got.points("ml.inference.duration")
    assert not got.points("gen_ai.server.request.duration")
    assert not got.spans
