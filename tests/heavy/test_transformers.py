"""The transformers instrumentor on tiny models built here from configs (random weights, nothing
downloaded): generate is one GenAI generation with token counts matching the returned tensors and
its first token timed through a streamer; a pipeline call is one inference (or one generation);
the torch modules inside count nothing; every call behaves as without otel_ml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import otel_ml.auto
from otel_ml._internal import selftelemetry
from otel_ml.instrumentation.torch import TorchInstrumentor
from otel_ml.instrumentation.transformers import TransformersInstrumentor, model_hash
from otel_ml.testing import TelemetryCapture
from tests.instrumentation.capture import instrumented

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = 64
PAD = 1
GENAI_ATTRIBUTES = {"ml.model.name", "ml.model.version", "ml.model.task", "gen_ai.operation.name",
                    "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "error.type"}


@pytest.fixture
def cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[TelemetryCapture]:
    with instrumented(monkeypatch, TorchInstrumentor(), TransformersInstrumentor(),
                      none_of=("auto_output_error", "auto_identity_error")) as capture:
        yield capture


def _gpt2() -> Any:
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                     bos_token_id=None, eos_token_id=None, pad_token_id=PAD)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.generation_config.pad_token_id = PAD
    return model


def _tokenizer() -> Any:
    """A word-level tokenizer over the words w0..w59, built in memory."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "[PAD]": PAD, "[CLS]": 2, "[SEP]": 3, **{f"w{i}": i + 4 for i in range(VOCAB - 4)}}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                                cls_token="[CLS]", sep_token="[SEP]")


def _bert_classifier() -> Any:
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=64, pad_token_id=PAD,
                                     id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    return transformers.BertForSequenceClassification(config).eval()


def _generated(sequences: Any, prompt_length: int, eos: int | None = None) -> int:
    """Tokens generated per sequence, up to and including the first end-of-sequence token, summed."""
    total = 0
    for row in sequences.tolist():
        new = row[prompt_length:]
        total += new.index(eos) + 1 if eos is not None and eos in new else len(new)
    return total


def _tokens(cap: TelemetryCapture, kind: str, **attrs: str) -> float:
    return sum(p.point.sum for p in cap.points("gen_ai.client.token.usage", **{"gen_ai.token.type": kind}, **attrs))


def _count(cap: TelemetryCapture, name: str, **attrs: str) -> int:
    return sum(p.point.count for p in cap.points(name, **attrs))


def test_generate_is_one_generation_with_tokens_and_first_token_time(cap: TelemetryCapture) -> None:
    """GenAI names and units; input/output tokens as counted from the tensors; TTFT once, within the
    duration; the span under the current span with usage and no text; the forward passes not counted."""
    model = _gpt2()
    prompt = torch.tensor([[5, 6, 7, 8]])
    tracer = cap.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("POST /generate") as parent:
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=5, do_sample=False)
    assert out.shape == (1, 9)
    attrs = {"ml.model.name": "GPT2LMHeadModel", "ml.model.version": model_hash(model),
             "gen_ai.operation.name": "text_completion", "gen_ai.request.model": "GPT2LMHeadModel"}
    assert model_hash(model) != transformers.__version__
    usage = cap.points("gen_ai.client.token.usage", **attrs)
    assert {p.unit for p in usage} == {"{token}"} and len(usage) == 2
    assert _tokens(cap, "input", **attrs) == 4
    assert _tokens(cap, "output", **attrs) == _generated(out, 4) == 5
    (duration,) = cap.points("gen_ai.server.request.duration", **attrs)
    assert duration.unit == "s" and duration.point.count == 1
    ttft = cap.histogram("gen_ai.server.time_to_first_token", **attrs)
    assert ttft.count == 1 and 0 < ttft.sum <= duration.point.sum
    tpot = cap.histogram("gen_ai.server.time_per_output_token", **attrs)
    assert tpot.count == 1 and ttft.sum + 4 * tpot.sum <= duration.point.sum * 1.0001
    assert cap.points("ml.inference.duration") == []  # the forward passes inside are not inferences
    (span,) = cap.spans("text_completion GPT2LMHeadModel")
    assert span.attributes is not None
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes["gen_ai.usage.input_tokens"] == 4 and span.attributes["gen_ai.usage.output_tokens"] == 5
    assert set(span.attributes) <= GENAI_ATTRIBUTES


def test_a_model_called_directly_and_through_generate_is_one_model(cap: TelemetryCapture) -> None:
    """A forward pass called directly (the torch instrumentor) and a generate (this one) on the same model: one
    monitor, one identity, whichever instrumentor saw the model first."""
    model = _gpt2()
    prompt = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        model(prompt)
    model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=3, do_sample=False)
    identity = {"ml.model.name": "GPT2LMHeadModel", "ml.model.version": model_hash(model)}
    assert cap.histogram("ml.inference.duration", **identity).count == 1
    assert cap.histogram("gen_ai.server.request.duration", **identity).count == 1
    assert len(otel_ml.auto.monitors()) == 1


def test_a_callers_streamer_is_chained_and_beam_search_gets_none(cap: TelemetryCapture) -> None:
    """The caller's streamer sees the prompt, every token and the end, as without otel_ml; beam search,
    which refuses streamers, runs unchanged (no TTFT) and still refuses the caller's streamer."""
    from transformers.generation.streamers import BaseStreamer

    class Recorder(BaseStreamer):  # type: ignore[misc]
        def __init__(self) -> None:
            self.puts: list[Any] = []
            self.ended = False

        def put(self, value: Any) -> None:
            self.puts.append(value.tolist())

        def end(self) -> None:
            self.ended = True

    model = _gpt2()
    prompt = torch.tensor([[5, 6, 7, 8]])
    mask = torch.ones_like(prompt)
    plain = model.generate(prompt, attention_mask=mask, max_new_tokens=5, do_sample=False)
    recorder = Recorder()
    streamed = model.generate(prompt, attention_mask=mask, max_new_tokens=5, do_sample=False, streamer=recorder)
    assert torch.equal(plain, streamed)
    assert recorder.puts[0] == prompt.tolist() and recorder.ended
    assert [p[0] for p in recorder.puts[1:]] == streamed[0, 4:].tolist()
    assert cap.histogram("gen_ai.server.time_to_first_token").count == 2

    beams = model.generate(prompt, attention_mask=mask, max_new_tokens=5, num_beams=2, do_sample=False)
    assert _count(cap, "gen_ai.server.request.duration") == 3
    assert cap.histogram("gen_ai.server.time_to_first_token").count == 2
    assert _tokens(cap, "output") == 10 + _generated(beams, 4)
    with pytest.raises(ValueError, match="beam"):
        model.generate(prompt, attention_mask=mask, max_new_tokens=5, num_beams=2, streamer=Recorder())


def test_a_batch_counts_each_sequence_up_to_its_end_token(cap: TelemetryCapture) -> None:
    """Two left-padded prompts: input tokens from the attention mask; output tokens per row up to the first
    eos (the rest is padding); TTFT once; no per-token time for a batch."""
    model = _gpt2()
    prompts = torch.tensor([[PAD, 5, 6, 7], [9, 10, 11, 12]])
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    free = model.generate(prompts, attention_mask=mask, max_new_tokens=5, do_sample=False)
    eos = int(free[0, 5])  # the second token the first row generates: it now ends there
    out = model.generate(prompts, attention_mask=mask, max_new_tokens=5, do_sample=False, eos_token_id=eos)
    expected = _generated(out, 4, eos)
    assert expected < 10
    assert _tokens(cap, "input") == 7 + 7
    assert _tokens(cap, "output") == 10 + expected
    assert cap.histogram("gen_ai.server.time_to_first_token").count == 2
    assert cap.points("gen_ai.server.time_per_output_token") == []


def test_text_classification_pipeline_records_top_labels(cap: TelemetryCapture) -> None:
    """Each pipeline call is one inference (method pipeline, rows = inputs) with each input's top label and
    score; the BERT inside is not counted."""
    clf = transformers.pipeline("text-classification", model=_bert_classifier(), tokenizer=_tokenizer())
    one = clf("w1 w2 w3")
    many = clf(["w1", "w2 w3", "w4 w5 w6"])
    top2 = clf("w7 w8", top_k=2)
    tops = [one[0], *many, top2[0]]
    name = {"ml.model.name": "BertForSequenceClassification"}
    (point,) = cap.points("ml.inference.duration")
    assert point.attributes == {**name, "ml.model.version": model_hash(clf.model), "ml.model.method": "pipeline"}
    assert point.point.count == 3
    assert cap.histogram("ml.inference.batch.size", **name).sum == 5
    for label in ("negative", "positive"):
        assert cap.counter("ml.predictions", **{"ml.prediction.class": label}) == sum(
            t["label"] == label for t in tops)
    conf = cap.histogram("ml.prediction.confidence", **name)
    assert conf.count == 5 and conf.sum == pytest.approx(sum(t["score"] for t in tops), rel=1e-5)
    spans = cap.spans()
    assert [s.name for s in spans] == ["inference BertForSequenceClassification"] * 3
    assert spans[0].attributes is not None and spans[0].attributes["ml.model.task"] == "classification"
    assert spans[0].attributes["ml.prediction.class"] == one[0]["label"]


def test_text_generation_pipeline_is_one_generation(cap: TelemetryCapture) -> None:
    """The pipeline call is the generation (its generate inside is not a second one, its forward passes no
    inferences); the generated text appears nowhere."""
    model = _gpt2()
    generator = transformers.pipeline("text-generation", model=model, tokenizer=_tokenizer())
    out = generator("w1 w2 w3", max_new_tokens=5, do_sample=False)
    text = out[0]["generated_text"]
    assert isinstance(text, str) and text.startswith("w1 w2 w3")
    assert _count(cap, "gen_ai.server.request.duration") == 1
    assert _tokens(cap, "input") == 3 and _tokens(cap, "output") == 5
    assert cap.histogram("gen_ai.server.time_to_first_token").count == 1
    assert cap.histogram("gen_ai.server.time_per_output_token").count == 1
    assert cap.points("ml.inference.duration") == []
    (span,) = cap.spans()
    assert span.name == "text_completion GPT2LMHeadModel" and span.attributes is not None
    assert set(span.attributes) <= GENAI_ATTRIBUTES
    assert not any(isinstance(v, str) and "w1" in v for v in span.attributes.values())


def test_calls_behave_as_without_otel_ml(cap: TelemetryCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same sequences with and without the instrumentor; the very exception object a model raises, recorded
    as error.type; a failure counting tokens is counted, never raised."""
    import otel_ml.instrumentation.transformers as transformers_instrumentation

    model = _gpt2()
    prompt = torch.tensor([[5, 6, 7, 8]])
    instrumented = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=5, do_sample=False)
    _uninstrumented(cap)
    try:
        plain = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=5, do_sample=False)
    finally:
        _reinstrumented(cap)
    assert torch.equal(instrumented, plain)

    boom = RuntimeError("device lost")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise boom

    clf = transformers.pipeline("text-classification", model=_bert_classifier(), tokenizer=_tokenizer())
    monkeypatch.setattr(model, "forward", broken)
    monkeypatch.setattr(clf.model, "forward", broken)
    with pytest.raises(RuntimeError) as caught:
        model.generate(prompt, max_new_tokens=5)
    assert caught.value is boom
    with pytest.raises(RuntimeError) as caught:
        clf("w1 w2")
    assert caught.value is boom
    assert cap.histogram("gen_ai.server.request.duration", **{"error.type": "RuntimeError"}).count == 1
    assert cap.points("gen_ai.server.time_to_first_token") == []
    assert cap.histogram("ml.inference.duration", **{"error.type": "RuntimeError"}).count == 1
    monkeypatch.undo()

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("cannot count")

    monkeypatch.setattr(transformers_instrumentation, "_output_tokens", failing)
    again = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=5, do_sample=False)
    assert torch.equal(again, plain)
    assert selftelemetry.DEFAULT.count("auto_output_error") == 1
    selftelemetry.DEFAULT.reset()


def _uninstrumented(cap: TelemetryCapture) -> None:
    TransformersInstrumentor().uninstrument()
    TorchInstrumentor().uninstrument()


def _reinstrumented(cap: TelemetryCapture) -> None:
    for instrumentor in (TorchInstrumentor(), TransformersInstrumentor()):
        instrumentor.instrument(tracer_provider=cap.tracer_provider, meter_provider=cap.meter_provider)


def test_uninstrument_restores_every_original(cap: TelemetryCapture) -> None:
    """GenerationMixin.generate and Pipeline.__call__ are transformers' own again; nothing is recorded."""
    from transformers.generation.utils import GenerationMixin

    model = _gpt2()
    prompt = torch.tensor([[5, 6, 7, 8]])
    model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=2, do_sample=False)
    assert otel_ml.auto.monitor_of(model) is not None
    _uninstrumented(cap)
    try:
        assert not hasattr(GenerationMixin.generate, "_otel_ml_original")
        assert not hasattr(transformers.Pipeline.__call__, "_otel_ml_original")
        assert otel_ml.auto.monitor_of(model) is None
        model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=2, do_sample=False)
        assert cap.points("gen_ai.server.request.duration") == []  # the closed monitor exports nothing
        assert cap.points("ml.inference.duration") == []
        assert otel_ml.auto.monitors() == []
    finally:
        _reinstrumented(cap)
