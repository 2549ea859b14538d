"""One span, one log line, one histogram with an exemplar and one alert travel the whole stack.

Sent with the plain OpenTelemetry SDK over OTLP gRPC to the collector, then read back from
Jaeger (trace, redacted), Loki (log by trace id), Prometheus (series and exemplar) and
Alertmanager (the self-test alert from stack/selftest.rules.yml).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.stack.backends import Backends, poll

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Sent:
    service: str
    trace_id: str
    log_body: str


@pytest.fixture(scope="module")
def sent(backends: Backends) -> Iterator[Sent]:
    """Emit the test data once for the module; providers are private, never the global ones."""
    service = f"otel-ml-e2e-{uuid.uuid4().hex[:8]}"
    endpoint = backends.urls.otlp_grpc
    resource = Resource.create({"service.name": service, "service.instance.id": "e2e-1"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True))
    )
    # Only force_flush exports: the SDK keeps an exemplar for one collection only, and the collector's
    # prometheus exporter serves the latest point, so a later export would hide it before a scrape.
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=600_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    def selftest(options: CallbackOptions) -> list[Observation]:
        return [Observation(1)]

    meter = meter_provider.get_meter("otel_ml.e2e")
    histogram = meter.create_histogram("otel_ml.e2e.duration", unit="s")
    meter.create_observable_gauge("otel_ml.stack.selftest", callbacks=[selftest])
    log = logging.getLogger(f"otel_ml.e2e.{service}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(LoggingHandler(logger_provider=logger_provider))
    body = f"e2e prediction served {uuid.uuid4().hex}"

    with tracer_provider.get_tracer("otel_ml.e2e").start_as_current_span("e2e.predict") as span:
        span.set_attribute("ml.model.name", "e2e-model")
        span.set_attribute("gen_ai.prompt", "must be redacted")
        span.set_attribute("user.email", "someone@example.org")
        # Recorded inside a sampled span, so the SDK attaches the trace id as an exemplar.
        histogram.record(0.042, {"ml.model.name": "e2e-model"})
        log.info(body)
        trace_id = format(span.get_span_context().trace_id, "032x")

    tracer_provider.force_flush()
    logger_provider.force_flush()
    meter_provider.force_flush()
    try:
        yield Sent(service, trace_id, body)
    finally:
        # Keeps exporting (so the series stays fresh) until the module's tests are done.
        meter_provider.shutdown()
        tracer_provider.shutdown()
        logger_provider.shutdown()


def test_trace_reaches_jaeger_without_sensitive_attributes(backends: Backends, sent: Sent) -> None:
    """The span arrives in Jaeger; the redaction processor removed prompt and e-mail."""
    trace = backends.wait_trace(sent.trace_id, timeout=60)
    span = trace["spans"][0]
    tags = {t["key"]: t["value"] for t in span["tags"]}
    assert span["operationName"] == "e2e.predict"
    assert tags["ml.model.name"] == "e2e-model"
    assert "gen_ai.prompt" not in tags
    assert "user.email" not in tags
    process = trace["processes"][span["processID"]]
    assert process["serviceName"] == sent.service


def test_log_reaches_loki_and_is_found_by_trace_id(backends: Backends, sent: Sent) -> None:
    """The log record is stored in Loki with the span's trace id as structured metadata."""
    streams = backends.wait_logs(f'{{service_name="{sent.service}"}} | trace_id="{sent.trace_id}"', timeout=60)
    lines = [line for s in streams for _, line in s["values"]]
    assert sent.log_body in lines


def test_histogram_and_exemplar_reach_prometheus(backends: Backends, sent: Sent) -> None:
    """Prometheus has the histogram with resource labels, and an exemplar pointing at the trace."""
    series = backends.wait_prom(f'otel_ml_e2e_duration_seconds_count{{service_name="{sent.service}"}}', 60)
    labels = series[0]["metric"]
    assert labels["ml_model_name"] == "e2e-model"
    assert labels["service_instance_id"] == "e2e-1"

    def exemplar_trace_ids() -> set[str]:
        found = backends.prom_exemplars(f'otel_ml_e2e_duration_seconds_bucket{{service_name="{sent.service}"}}')
        return {e["labels"].get("trace_id", "") for s in found for e in s["exemplars"]}

    ids = poll(exemplar_trace_ids, "an exemplar on otel_ml_e2e_duration_seconds_bucket", timeout=60)
    assert sent.trace_id in ids


def test_alert_fires_into_alertmanager(backends: Backends, sent: Sent) -> None:
    """A rule on a metric we sent fires and Alertmanager receives the alert with its labels."""
    alerts = backends.wait_alert(timeout=90, alertname="OtelMlStackSelfTest", service_name=sent.service)
    assert alerts[0]["labels"]["severity"] == "info"
    assert alerts[0]["status"]["state"] == "active"
