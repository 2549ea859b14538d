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
with torch.no_grad():
    for n in (1, 2, 3):
        mlp(x[:n])
# 20 one-row requests whose upstream did not sample the trace: no span, the QuickLane
from opentelemetry import context, propagate
import otel_ml.auto
token = context.attach(propagate.extract({"traceparent": f"00-{'f' * 32}-{'e' * 16}-00"}))
with torch.inference_mode():
    for i in range(20):
        mlp(x[i:i + 1])
context.detach(token)
import os
if "otel_ml_torch" not in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", ""):
    assert len(otel_ml.auto.monitor_of(mlp).quick_lane().pending) == 20  # folded at the final export
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


def test_torch_inferences_are_exported(exported) -> None:  # type: ignore[no-untyped-def]
    """Three served calls (6 rows) of the MLP with spans and 20 one-row calls under an unsampled
    upstream parent without; none of the training steps, none of GPT-2's forward passes."""
    (duration,) = exported.final("ml.inference.duration")
    assert duration["attributes"]["ml.model.name"] == "Sequential"
    assert duration["attributes"]["ml.model.method"] == "forward"
    assert duration["point"]["count"] == 3 + 20 and duration["unit"] == "s"
    (batch,) = exported.final("ml.inference.batch.size")
    assert batch["point"]["sum"] == 6 + 20 and batch["point"]["count"] == 3 + 20
    inferences = [s for s in exported.spans if s["name"] == "inference Sequential"]
    assert len(inferences) == 3
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
