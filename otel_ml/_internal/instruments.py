"""The pre-aggregated instruments of one model: names, units, descriptions, buckets and scopes.

Instrumentation scopes say what they hold: ``otel_ml.inference`` (classic inference),
``otel_ml.genai`` (GenAI semantic-convention metrics), ``otel_ml.self`` (what otel_ml dropped);
the observable drift and quality instruments live in ``otel_ml.drift`` and ``otel_ml.quality``
(``wiring.py``). Prometheus shows the scope as the ``otel_scope_name`` label.
"""

from __future__ import annotations

from otel_ml._internal import names
from otel_ml._internal.producer import InstrumentSpec

INFERENCE_SCOPE = "otel_ml.inference"
GENAI_SCOPE = "otel_ml.genai"

# Inference latency: 1 ms .. 30 s, dense where online models live (5-500 ms).
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0,
)
# Confidence is a probability: 0.05 steps, finer near 1 where confident models concentrate.
CONFIDENCE_BUCKETS = (
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9,
    0.925, 0.95, 0.975, 0.99, 1.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
# Regression outputs have no natural scale: 1-2-5 steps per decade from 1e-3 to 1e6, both signs,
# so a shift of an order of magnitude (units, a broken feature) shows wherever the values live.
_POSITIVE = (*(round(m * 10.0 ** e, 10) for e in range(-3, 6) for m in (1, 2, 5)), 1e6)
VALUE_BUCKETS = tuple(sorted({-v for v in _POSITIVE} | {0.0} | set(_POSITIVE)))

# Advisory bucket boundaries from the GenAI semantic conventions.
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
GENAI_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
GENAI_TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
GENAI_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)


def inference_duration(buckets: tuple[float, ...] = DURATION_BUCKETS) -> InstrumentSpec:
    return InstrumentSpec(names.INFERENCE_DURATION, "s", "Duration of one model inference call.",
                          "histogram", buckets, INFERENCE_SCOPE)


BATCH_SIZE = InstrumentSpec(names.INFERENCE_BATCH_SIZE, "{row}", "Rows scored per inference call.",
                            "histogram", BATCH_BUCKETS, INFERENCE_SCOPE)
CONFIDENCE = InstrumentSpec(names.PREDICTION_CONFIDENCE, "1",
                            "Confidence (top-class probability or score) of each prediction.",
                            "histogram", CONFIDENCE_BUCKETS, INFERENCE_SCOPE)
PREDICTION_VALUE = InstrumentSpec(names.PREDICTION_VALUE, "1", "Regression model outputs.", "histogram",
                                  VALUE_BUCKETS, INFERENCE_SCOPE)
PREDICTIONS = InstrumentSpec(names.PREDICTIONS, "{prediction}", "Predictions made, by predicted class.",
                             "counter", (), INFERENCE_SCOPE)

GENAI_DURATION = InstrumentSpec(names.GENAI_REQUEST_DURATION, "s",
                                "Generative AI server request duration such as time-to-last byte or last "
                                "output token.", "histogram", GENAI_DURATION_BUCKETS, GENAI_SCOPE)
GENAI_TTFT = InstrumentSpec(names.GENAI_TTFT, "s", "Time to generate first token for successful responses.",
                            "histogram", GENAI_TTFT_BUCKETS, GENAI_SCOPE)
GENAI_TPOT = InstrumentSpec(names.GENAI_TPOT, "s",
                            "Time per output token generated after the first token for successful responses.",
                            "histogram", GENAI_TPOT_BUCKETS, GENAI_SCOPE)
GENAI_TOKENS = InstrumentSpec(names.GENAI_TOKEN_USAGE, "{token}", "Number of input and output tokens used.",
                              "histogram", GENAI_TOKEN_BUCKETS, GENAI_SCOPE)

# Energy per call in joules: 1 mJ (a small model on a mostly idle GPU) .. 10 kJ (a long generation).
ENERGY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 10000.0)
ENERGY_PER_TOKEN_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
INFERENCE_ENERGY = InstrumentSpec(names.INFERENCE_ENERGY, "J", "Accelerator energy attributed to one inference call.",
                                  "histogram", ENERGY_BUCKETS, INFERENCE_SCOPE)
GENERATION_ENERGY = InstrumentSpec(names.GENERATION_ENERGY, "J", "Accelerator energy attributed to one generation.",
                                   "histogram", ENERGY_BUCKETS, GENAI_SCOPE)
GENERATION_ENERGY_PER_TOKEN = InstrumentSpec(names.GENERATION_ENERGY_PER_TOKEN, "J",
                                             "Accelerator energy of one generation divided by its output tokens.",
                                             "histogram", ENERGY_PER_TOKEN_BUCKETS, GENAI_SCOPE)
