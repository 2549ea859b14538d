"""Every metric name, unit and attribute key otel_ml emits, in one place.

GenAI names follow the OpenTelemetry GenAI semantic conventions. Classic inference has no
semconv yet, so otel_ml uses a small ``ml.*`` namespace built the same way. Prometheus sees
these through the collector's translation: dots become underscores, the unit becomes a suffix
(``s`` -> ``_seconds``, ``1`` -> ``_ratio`` on gauges only, ``{...}`` units are dropped) and counters gain
``_total``; the PromQL names are listed beside each metric so rules and dashboards can be
checked against this file.
"""

from __future__ import annotations

from typing import Final

# --- attributes on every otel_ml signal -------------------------------------------------
MODEL_NAME: Final = "ml.model.name"
MODEL_VERSION: Final = "ml.model.version"
# A/B tests and canaries: which variant of the deployment served the request.
MODEL_VARIANT: Final = "ml.model.variant"
MODEL_TASK: Final = "ml.model.task"  # classification | regression | generation | ...
MODEL_METHOD: Final = "ml.model.method"  # the method served: predict | predict_proba | ... (zero-code)
TORCH_GRAD_MODE: Final = "ml.torch.grad_mode"  # span: grad | no_grad | inference_mode (zero-code torch)
ERROR_TYPE: Final = "error.type"

# --- classic inference ----------------------------------------------------------------
INFERENCE_DURATION: Final = "ml.inference.duration"  # s; ml_inference_duration_seconds
INFERENCE_BATCH_SIZE: Final = "ml.inference.batch.size"  # {row}; ml_inference_batch_size
# 1; ml_prediction_confidence (the _ratio suffix for unit 1 applies to gauges, not histograms)
PREDICTION_CONFIDENCE: Final = "ml.prediction.confidence"
PREDICTIONS: Final = "ml.predictions"  # {prediction}; ml_predictions_total
PREDICTION_CLASS: Final = "ml.prediction.class"
# 1; ml_prediction_value: regression outputs (symmetric log-spaced buckets, any scale)
PREDICTION_VALUE: Final = "ml.prediction.value"

# --- GenAI (semantic conventions) -------------------------------------------------------
GENAI_REQUEST_DURATION: Final = "gen_ai.server.request.duration"  # s
GENAI_TTFT: Final = "gen_ai.server.time_to_first_token"  # s
GENAI_TPOT: Final = "gen_ai.server.time_per_output_token"  # s
GENAI_TOKEN_USAGE: Final = "gen_ai.client.token.usage"  # {token}
GENAI_OPERATION_NAME: Final = "gen_ai.operation.name"
GENAI_REQUEST_MODEL: Final = "gen_ai.request.model"
GENAI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GENAI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GENAI_TOKEN_TYPE: Final = "gen_ai.token.type"  # input | output

# --- drift and data quality -------------------------------------------------------------
DRIFT_SCORE: Final = "ml.drift.score"  # 1, gauge; ml_drift_score_ratio
DRIFT_P_VALUE: Final = "ml.drift.p_value"  # 1, gauge; ml_drift_p_value_ratio
DRIFT_STATUS: Final = "ml.drift.status"  # gauge: 0 ok, 1 warning, 2 drift, -1 insufficient data
FEATURE_BIN_COUNT: Final = "ml.feature.bin.count"  # {value}, counter; ml_feature_bin_count_total
FEATURE_REFERENCE_PROPORTION: Final = "ml.feature.reference.proportion"  # 1, gauge
FEATURE_VALUES: Final = "ml.feature.values"  # {value}, counter; ml_feature_values_total
DATA_QUALITY_ISSUES: Final = "ml.data_quality.issues"  # {value}, counter
FEATURE_NAME: Final = "ml.feature.name"
FEATURE_BIN: Final = "ml.feature.bin"
DRIFT_METHOD: Final = "ml.drift.method"  # psi | jensen_shannon | wasserstein | ks | chi2
DATA_QUALITY_ISSUE: Final = "ml.data_quality.issue"
# missing | nan | inf | unseen_category | out_of_range | type_mismatch

# --- delayed ground truth ---------------------------------------------------------------
OUTCOMES: Final = "ml.outcomes"  # {outcome}, counter (predicted x actual); ml_outcomes_total
OUTCOME_CLASS: Final = "ml.outcome.class"
OUTCOMES_UNMATCHED: Final = "ml.outcomes.unmatched"  # {outcome}, counter, attr REASON
OUTCOMES_PENDING: Final = "ml.outcomes.pending"  # {prediction}, gauge; ml_outcomes_pending
# {prediction}, counter, attr REASON (expired | evicted); ml_predictions_unlabelled_total
PREDICTIONS_UNLABELLED: Final = "ml.predictions.unlabelled"
QUALITY_SCORE: Final = "ml.quality.score"  # 1, gauge, attr QUALITY_METRIC
QUALITY_METRIC: Final = "ml.quality.metric"  # accuracy | precision | recall | f1 | roc_auc | mae | ...
REGRESSION_ERROR: Final = "ml.outcome.error"  # histogram of |predicted - actual|, unit of the target

# --- GPU (hardware semantic conventions; otel_ml.gpu) ------------------------------------
GPU_UTILIZATION: Final = "hw.gpu.utilization"  # 1, gauge, attr GPU_TASK; hw_gpu_utilization_ratio
GPU_MEMORY_USAGE: Final = "hw.gpu.memory.usage"  # By, updowncounter; hw_gpu_memory_usage_bytes
GPU_MEMORY_LIMIT: Final = "hw.gpu.memory.limit"  # By, updowncounter; hw_gpu_memory_limit_bytes
# 1, gauge: usage / limit (the semconv's "fraction of GPU memory used"); hw_gpu_memory_utilization_ratio
GPU_MEMORY_UTILIZATION: Final = "hw.gpu.memory.utilization"
HW_POWER: Final = "hw.power"  # W, gauge; hw_power_watts
HW_ENERGY: Final = "hw.energy"  # J, counter; hw_energy_joules_total
HW_TEMPERATURE: Final = "hw.temperature"  # Cel, gauge; hw_temperature_celsius
HW_ERRORS: Final = "hw.errors"  # {error}, counter, attr ERROR_TYPE (corrected | uncorrected); hw_errors_total
HW_STATUS: Final = "hw.status"  # 1, updowncounter, attr HW_STATE (1 for the current state); hw_status
# By, updowncounter: this process's memory on a device (no semconv yet); process_gpu_memory_usage_bytes
PROCESS_GPU_MEMORY_USAGE: Final = "process.gpu.memory.usage"
HW_ID: Final = "hw.id"  # UUID (else PCI bus id) of the device
HW_NAME: Final = "hw.name"  # gpu0, gpu1, ... (NVML index)
HW_TYPE: Final = "hw.type"  # gpu
HW_VENDOR: Final = "hw.vendor"  # NVIDIA
HW_MODEL: Final = "hw.model"  # e.g. NVIDIA H100 80GB HBM3
HW_DRIVER_VERSION: Final = "hw.driver_version"
HW_STATE: Final = "hw.state"  # ok | degraded | failed
GPU_TASK: Final = "hw.gpu.task"  # general | encoder | decoder | memory_controller

# --- energy per call (an accelerator energy meter is set: otel_ml.gpu) --------------------
INFERENCE_ENERGY: Final = "ml.inference.energy"  # J, histogram; ml_inference_energy_joules
GENERATION_ENERGY: Final = "ml.generation.energy"  # J, histogram; ml_generation_energy_joules
# J, histogram; ml_generation_energy_per_token_joules
GENERATION_ENERGY_PER_TOKEN: Final = "ml.generation.energy.per_token"

# --- self-telemetry ---------------------------------------------------------------------
DROPPED: Final = "otel_ml.dropped"  # {item}, counter; otel_ml_dropped_total
REASON: Final = "otel_ml.reason"
SIGNAL: Final = "otel_ml.signal"

# --- cardinality caps -------------------------------------------------------------------
# Every metric attribute whose values can come from data or from the caller has one cap. Past
# it, values become OVERFLOW_VALUE (error.type: the semantic conventions' "_OTHER" fallback),
# counted in otel_ml.dropped with reason "<attribute>_cardinality_cap" and logged once.
#
#   ml.model.name        MAX_MODEL_NAMES per meter provider      model_name_cardinality_cap
#   ml.model.version     MAX_MODEL_VERSIONS per model name       model_version_cardinality_cap
#   ml.model.variant     MAX_MODEL_VARIANTS per model name       model_variant_cardinality_cap
#   ml.prediction.class  max_classes per monitor (default 50)    label_cardinality_cap / unknown_class
#   ml.outcome.class     max_classes per monitor (default 64)    (shares ``other``)
#   ml.model.method      MAX_METHODS per monitor                 method_cardinality_cap
#   error.type           MAX_ERROR_TYPES per monitor             error_type_cardinality_cap
#   gen_ai.operation.name    MAX_GENAI_OPERATIONS per monitor    genai_operation_cardinality_cap
#   gen_ai.request.model     MAX_GENAI_MODELS per monitor        genai_request_model_cardinality_cap
#   gen_ai.provider.name     MAX_GENAI_PROVIDERS per monitor     genai_provider_cardinality_cap
#   otel_ml.reason       64 per registry (code-defined set)      (shares ``other``)
#   ml.feature.name / ml.feature.bin: fixed by the reference profile (categories capped there).
#   Backstop: MAX_SERIES_PER_INSTRUMENT attribute sets per instrument per monitor; past it
#   the SDK's convention, one series marked ``otel.metric.overflow=true`` (reason cardinality_cap).
MAX_MODEL_NAMES: Final = 100
MAX_MODEL_VERSIONS: Final = 20
MAX_MODEL_VARIANTS: Final = 20
MAX_METHODS: Final = 20
MAX_ERROR_TYPES: Final = 20
MAX_GENAI_OPERATIONS: Final = 20
MAX_GENAI_MODELS: Final = 50
MAX_GENAI_PROVIDERS: Final = 20
MAX_SERIES_PER_INSTRUMENT: Final = 2000

# Label value that absorbs everything past a cardinality cap.
OVERFLOW_VALUE: Final = "other"
# error.type's overflow value: the semantic conventions' fallback for an unknown error.
ERROR_TYPE_OVERFLOW: Final = "_OTHER"
