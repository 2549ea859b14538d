"""GenAI generations record the semantic-convention metrics, exact for streaming."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from otel_ml._internal.instruments import GENAI_DURATION_BUCKETS, GENAI_TOKEN_BUCKETS, GENAI_TTFT_BUCKETS
from otel_ml.testing import TelemetryCapture

GEN = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "llama-3-8b", "gen_ai.provider.name": "vllm"}


def _stream(first_delay: float, gap: float, n: int) -> Iterator[str]:
    time.sleep(first_delay)
    for i in range(n):
        if i:
            time.sleep(gap)
        yield f"tok{i}"


def test_streaming_ttft_tpot_and_tokens(cap: TelemetryCapture) -> None:
    """TTFT is the first token's arrival; TPOT is the mean gap after it; tokens are counted."""
    monitor = cap.monitor("llm", version="1", task="generation")
    consumer_delay = 0.05
    with monitor.generation(request_model="llama-3-8b", provider="vllm", input_tokens=12) as gen:
        for _ in gen.wrap(_stream(first_delay=0.04, gap=0.01, n=5)):
            time.sleep(consumer_delay if _ == "tok0" else 0)  # a slow consumer must not inflate TTFT
    ttft = cap.histogram("gen_ai.server.time_to_first_token", **GEN)
    assert ttft.count == 1
    assert 0.04 <= ttft.sum < 0.04 + consumer_delay  # arrival, not consumption, of the first token
    assert list(ttft.explicit_bounds) == list(GENAI_TTFT_BUCKETS)
    tpot = cap.histogram("gen_ai.server.time_per_output_token", **GEN)
    # (last - first) / (n - 1) includes the consumer's pause after the first token
    assert (0.01 * 4 + consumer_delay) / 4 * 0.9 <= tpot.sum <= 0.2
    duration = cap.histogram("gen_ai.server.request.duration", **GEN)
    assert list(duration.explicit_bounds) == list(GENAI_DURATION_BUCKETS)
    assert duration.sum >= 0.04 + 0.04
    out = cap.histogram("gen_ai.client.token.usage", **GEN, **{"gen_ai.token.type": "output"})
    inp = cap.histogram("gen_ai.client.token.usage", **GEN, **{"gen_ai.token.type": "input"})
    assert (out.count, out.sum, inp.sum) == (1, 5, 12)
    assert list(out.explicit_bounds) == list(GENAI_TOKEN_BUCKETS)
    (span,) = cap.spans("chat llama-3-8b")
    assert span.attributes is not None
    assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert span.attributes["ml.model.version"] == "1"


def test_usage_report_overrides_counted_tokens(cap: TelemetryCapture) -> None:
    """Exact usage from the server wins over the number of streamed chunks."""
    monitor = cap.monitor("llm", version="1", task="generation")
    with monitor.generation(request_model="llama-3-8b", provider="vllm") as gen:
        for _ in gen.wrap(["Hello", " world"]):
            pass
        gen.set_usage(input_tokens=7, output_tokens=3)
    out = cap.histogram("gen_ai.client.token.usage", **GEN, **{"gen_ai.token.type": "output"})
    assert out.sum == 3


def test_async_stream_wrapped_after_handler_returns(cap: TelemetryCapture) -> None:
    """wrap_stream times an async stream consumed later, from the call to exhaustion."""
    monitor = cap.monitor("llm", version="1", task="generation")

    async def tokens() -> AsyncIterator[str]:
        await asyncio.sleep(0.02)
        for t in ("a", "b", "c"):
            yield t

    async def main() -> list[str]:
        stream = monitor.wrap_stream(tokens(), request_model="llama-3-8b", provider="vllm")
        return [t async for t in stream]

    assert asyncio.run(main()) == ["a", "b", "c"]
    assert cap.histogram("gen_ai.server.time_to_first_token", **GEN).sum >= 0.02
    out = cap.histogram("gen_ai.client.token.usage", **GEN, **{"gen_ai.token.type": "output"})
    assert out.sum == 3


def test_failed_generation_has_error_type_and_no_ttft(cap: TelemetryCapture) -> None:
    """A stream that fails records duration with error.type; TTFT is for successful responses only."""
    monitor = cap.monitor("llm", version="1", task="generation")

    def broken() -> Iterator[str]:
        yield "a"
        raise TimeoutError("upstream")

    with pytest.raises(TimeoutError):
        for _ in monitor.wrap_stream(broken(), request_model="llama-3-8b", provider="vllm"):
            pass
    point = cap.histogram("gen_ai.server.request.duration", **GEN, **{"error.type": "TimeoutError"})
    assert point.count == 1
    assert cap.points("gen_ai.server.time_to_first_token") == []


def test_observe_generator_on_generation_monitor(cap: TelemetryCapture) -> None:
    """@observe on a generator of a generation monitor counts yielded items as output tokens."""
    monitor = cap.monitor("llm", version="1", task="generation")

    @monitor.observe
    def generate(prompt: str) -> Iterator[str]:
        yield from prompt.split()

    assert list(generate("one two three four")) == ["one", "two", "three", "four"]
    out = cap.histogram("gen_ai.client.token.usage", **{"gen_ai.token.type": "output"})
    assert out.sum == 4


def test_energy_meter_attributes_joules_per_call_and_per_token(cap: TelemetryCapture) -> None:
    """With an energy meter installed, each inference and generation records its joules (per token too)."""
    from otel_ml._internal import energy

    class Meter:
        def __init__(self) -> None:
            self.readings = iter([10.0, 12.5, 100.0, 130.0])  # counter reads at start/stop of two calls

        def start(self) -> object:
            return next(self.readings)

        def stop(self, token: object) -> float | None:
            return next(self.readings) - float(token)  # type: ignore[arg-type]

    monitor = cap.monitor("llm", version="1", task="generation")
    classic = cap.monitor("clf", version="1")
    assert not cap.points("ml.inference.energy")  # no meter: absent, not zero
    energy.set_meter(Meter())
    try:
        with classic.inference() as inf:
            inf.record(predictions="a")
        with monitor.generation() as gen:
            gen.token(10)
    finally:
        energy.set_meter(None)
    assert cap.histogram("ml.inference.energy", **{"ml.model.name": "clf"}).sum == pytest.approx(2.5)
    assert cap.histogram("ml.generation.energy", **{"ml.model.name": "llm"}).sum == pytest.approx(30.0)
    assert cap.histogram("ml.generation.energy.per_token", **{"ml.model.name": "llm"}).sum == pytest.approx(3.0)
