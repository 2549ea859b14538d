"""Every ``OTEL_ML_*`` environment variable otel_ml, its stack and its tests read, in one place.

The standard ``OTEL_*`` variables (endpoint, headers, protocol, service name, resource attributes,
sampler, export interval) keep their OpenTelemetry meaning and are read by the SDK itself; these
are otel_ml's own. Arguments given in code always win over the environment.
"""

from __future__ import annotations

import os
from typing import Final

# --- the package ----------------------------------------------------------------------------
CAPTURE_CONTENT: Final = "OTEL_ML_CAPTURE_CONTENT"
"""``true``: raw features and outputs may enter prediction logs (default off; ``capture_content=``)."""

EXPORTER: Final = "OTEL_ML_EXPORTER"
"""Where ``configure()`` sends telemetry: ``otlp`` (default), ``console`` (stdout) or ``none``."""

GPU: Final = "OTEL_ML_GPU"
"""``true``: ``configure()`` turns on GPU metrics (``otel_ml.gpu``; default off; ``gpu=``)."""

GPU_ENERGY: Final = "OTEL_ML_GPU_ENERGY"
"""``false``: GPU monitoring leaves energy per inference off (default on; ``otel_ml.gpu.enable(energy=)``)."""

EXPORT_BUFFER_SPANS: Final = "OTEL_ML_EXPORT_BUFFER_SPANS"
"""Spans ``configure()`` holds in memory while the OTLP endpoint is down, re-sent oldest first when it
answers again (default ``30000``: about 2 minutes at 250 spans/s; ``0``: no buffer, the SDK's own
behaviour). Beyond it the oldest are dropped and counted in ``otel_ml.dropped``."""

EXPORT_BUFFER_LOGS: Final = "OTEL_ML_EXPORT_BUFFER_LOGS"
"""The same for log records (default ``30000``; ``0``: no buffer)."""

STRICT: Final = "OTEL_ML_STRICT"
"""``true``: an exception otel_ml's guards catch (a bug in otel_ml) re-raises to the caller instead of
being counted as ``internal_error`` (development and tests; default off; ``otel_ml.testing`` turns it on)."""

# --- zero-code instrumentation (``opentelemetry-instrument`` with otel_ml's instrumentors) ----
MODEL_NAME: Final = "OTEL_ML_MODEL_NAME"
"""The model's name (``ml.model.name``) when the process serves one; several: use MODEL_MAP."""

MODEL_VERSION: Final = "OTEL_ML_MODEL_VERSION"
"""Its version; default: a content hash of the file it was loaded from (or of the object)."""

MODEL_VARIANT: Final = "OTEL_ML_MODEL_VARIANT"
"""Its deployment variant (``ml.model.variant``), e.g. ``canary``."""

CLASS_NAMES: Final = "OTEL_ML_CLASS_NAMES"
"""Class labels for the model's raw classes: ``0=ok,1=fraud`` (or a JSON object)."""

MODEL_MAP: Final = "OTEL_ML_MODEL_MAP"
"""A YAML/JSON file of rules naming models by load path, class or framework (see otel_ml.auto)."""

REFERENCE_PROFILE: Final = "OTEL_ML_REFERENCE_PROFILE"
"""A reference profile (``otel-ml profile``) for the process's model: drift without code changes."""

SKLEARN_TRANSFORM: Final = "OTEL_ML_SKLEARN_TRANSFORM"
"""Comma-separated scikit-learn classes whose outermost ``transform`` is a served call."""

# --- the local stack (``otel-ml stack``) ----------------------------------------------------
HOME: Final = "OTEL_ML_HOME"
"""The checkout whose configs the stack runs, when the command is not run inside one."""

ALERTMANAGER_SECRETS_DIR: Final = "OTEL_ML_ALERTMANAGER_SECRETS_DIR"
"""Folder holding the secret files alerts/alertmanager.yml names (default ``stack/secrets``)."""

RULES_TIME_SCALE: Final = "OTEL_ML_RULES_TIME_SCALE"
"""E.g. ``0.0333``: the local stack's Prometheus loads the rules with every duration scaled (demos)."""

# --- the collector (read by collector/config.yaml as ``${env:...}``) ---------------------------
COLLECTOR_HOST: Final = "OTEL_ML_COLLECTOR_HOST"
"""Address the collector's receivers and endpoints bind to (default ``127.0.0.1``; ``0.0.0.0`` in a container)."""

JAEGER_OTLP_ENDPOINT: Final = "OTEL_ML_JAEGER_OTLP_ENDPOINT"
"""Jaeger's OTLP gRPC endpoint for traces (default ``127.0.0.1:14317``)."""

LOKI_OTLP_ENDPOINT: Final = "OTEL_ML_LOKI_OTLP_ENDPOINT"
"""Loki's OTLP endpoint for logs (default ``http://127.0.0.1:3100/otlp``)."""

ENVIRONMENT: Final = "OTEL_ML_ENVIRONMENT"
"""``deployment.environment.name`` the collector sets where a service did not (default ``local``)."""

TRACE_SAMPLE_PERCENT: Final = "OTEL_ML_TRACE_SAMPLE_PERCENT"
"""Tail sampling: share of ordinary traces kept, in percent (default ``10``; errors and slow ones always)."""

SLOW_TRACE_MS: Final = "OTEL_ML_SLOW_TRACE_MS"
"""Tail sampling: traces longer than this are always kept (default ``1000``)."""

TAIL_DECISION_WAIT: Final = "OTEL_ML_TAIL_DECISION_WAIT"
"""Tail sampling: how long the collector waits for a trace's spans before deciding (default ``10s``)."""

MEMORY_LIMIT_MIB: Final = "OTEL_ML_MEMORY_LIMIT_MIB"
"""The collector's memory_limiter limit in MiB (default ``512``)."""

# --- TLS and authentication (read by collector/secure.yaml, an overlay on config.yaml) -----------
TLS_CERT_FILE: Final = "OTEL_ML_TLS_CERT_FILE"
"""Server certificate chain (PEM) of the OTLP receivers (default ``/etc/otel-ml/tls/tls.crt``)."""

TLS_KEY_FILE: Final = "OTEL_ML_TLS_KEY_FILE"
"""Its private key (PEM) (default ``/etc/otel-ml/tls/tls.key``)."""

AUTH_TOKEN_FILE: Final = "OTEL_ML_AUTH_TOKEN_FILE"
"""File with the accepted bearer token(s), one per line, re-read when it changes (set this or the next)."""

AUTH_TOKEN: Final = "OTEL_ML_AUTH_TOKEN"
"""The accepted bearer token itself, e.g. from a Kubernetes Secret; with neither set the collector refuses to start."""

# --- agents and gateways (read by collector/agent.yaml and collector/gateway.yaml) ---------------
OTLP_GRPC_PORT: Final = "OTEL_ML_OTLP_GRPC_PORT"
"""Agent/gateway OTLP gRPC receiver port (default ``4317``)."""

OTLP_HTTP_PORT: Final = "OTEL_ML_OTLP_HTTP_PORT"
"""Agent/gateway OTLP HTTP receiver port (default ``4318``)."""

PROMETHEUS_PORT: Final = "OTEL_ML_PROMETHEUS_PORT"
"""Gateway Prometheus exporter port, the scrape target (default ``8889``)."""

TELEMETRY_PORT: Final = "OTEL_ML_TELEMETRY_PORT"
"""Agent/gateway port of the collector's own metrics (default ``8888``)."""

HEALTH_PORT: Final = "OTEL_ML_HEALTH_PORT"
"""Agent/gateway health_check port (default ``13133``)."""

ZPAGES_PORT: Final = "OTEL_ML_ZPAGES_PORT"
"""Agent/gateway zpages port (default ``55679``)."""

PPROF_PORT: Final = "OTEL_ML_PPROF_PORT"
"""Agent/gateway pprof port (default ``1777``)."""

GATEWAY_ENDPOINTS: Final = "OTEL_ML_GATEWAY_ENDPOINTS"
"""Agent: the gateways' OTLP gRPC endpoints, a YAML list of ``host:port`` (default ``[127.0.0.1:4417]``)."""

GATEWAY_TLS_INSECURE: Final = "OTEL_ML_GATEWAY_TLS_INSECURE"
"""Agent: ``false`` sends to the gateways over TLS, verified with ``OTEL_ML_GATEWAY_CA_FILE`` (default ``true``)."""

GATEWAY_CA_FILE: Final = "OTEL_ML_GATEWAY_CA_FILE"
"""Agent: CA bundle that signed the gateways' certificates (default none)."""

GATEWAY_QUEUE_SIZE: Final = "OTEL_ML_GATEWAY_QUEUE_SIZE"
"""Agent: batches held in its persistent queue while gateways are unreachable (default ``5000``)."""

AGENT_QUEUE_DIR: Final = "OTEL_ML_AGENT_QUEUE_DIR"
"""Agent: directory of that queue, created if missing; one per agent process (default
``/tmp/otel-ml-agent-queue``; Kubernetes: a volume)."""

GATEWAY_TOKEN_FILE: Final = "OTEL_ML_GATEWAY_TOKEN_FILE"
"""Agent with ``agent-secure.yaml``: file with the bearer token it sends to the gateways, re-read
when it changes (set this or the next)."""

GATEWAY_TOKEN: Final = "OTEL_ML_GATEWAY_TOKEN"
"""Agent with ``agent-secure.yaml``: that token itself; with neither set the agent refuses to start."""

GATEWAY_RETRY_MAX_ELAPSED: Final = "OTEL_ML_GATEWAY_RETRY_MAX_ELAPSED"
"""Agent: how long a batch for a gateway is retried (default ``300s``)."""

# --- install and tests (scripts/, tests/) ---------------------------------------------------
SKIP_STACK_BUILD: Final = "OTEL_ML_SKIP_STACK_BUILD"
"""``1``: ``scripts/install`` skips building the Go backends."""

REQUIRE_STACK: Final = "OTEL_ML_REQUIRE_STACK"
"""``1``: stack-dependent tests fail instead of skipping when a backend is missing (CI sets it)."""

REQUIRE_HEAVY: Final = "OTEL_ML_REQUIRE_HEAVY"
"""``1``: the torch / transformers tests (tests/heavy) fail instead of skipping when either cannot be
imported (``scripts/test_heavy`` sets it)."""

REQUIRE_BROWSER: Final = "OTEL_ML_REQUIRE_BROWSER"
"""``1``: the report's headless-Chromium test fails instead of skipping when ``chromium`` is missing."""

TEST_ENDPOINT_PREFIX: Final = "OTEL_ML_TEST_"
"""``OTEL_ML_TEST_{OTLP_GRPC,OTLP_HTTP,PROMETHEUS,ALERTMANAGER,JAEGER,LOKI}``: backend URLs for tests."""

_TRUE = frozenset({"1", "true", "yes", "on"})


def flag(name: str) -> bool:
    """A boolean variable: ``1``/``true``/``yes``/``on`` (any case) is true, anything else false."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def choice(name: str, default: str) -> str:
    """A variable's trimmed, lower-cased value, or ``default`` when unset or empty."""
    return os.environ.get(name, "").strip().lower() or default
