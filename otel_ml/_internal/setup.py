"""``configure()``: tracer, meter and logger providers with OTLP export, or the ones already there.

The standard ``OTEL_*`` variables apply as they do for the OpenTelemetry SDK itself:
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``_HEADERS`` / ``_PROTOCOL`` (and their per-signal forms),
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` / ``_ARG``,
``OTEL_METRIC_EXPORT_INTERVAL``. Arguments given to :func:`configure` win over the environment.
``OTEL_ML_EXPORTER`` = ``otlp`` (default), ``console`` (print to stdout) or ``none``.
``OTEL_ML_GPU=true`` (or ``gpu=True``) adds GPU metrics and energy per inference (``otel_ml.gpu``).

A collector that is down for a while (a restart, a deploy) loses no spans or log records: the OTLP
span and log exporters keep failed batches in a bounded buffer (``OTEL_ML_EXPORT_BUFFER_SPANS`` /
``_LOGS``, 30 000 items each by default) and re-send them once it answers; what the bound forces out
is counted in ``otel_ml.dropped`` (see :mod:`otel_ml._internal.export_buffer`). Metrics need no
buffer: their cumulative sums catch up on the first export after the outage.

When a provider of a signal is already installed (``opentelemetry-instrument``, the user's own
setup) it is reused, never replaced: otel_ml then only adds what it needs on top (its metric
producer, its logging filter). Monitors created before ``configure()`` are attached to the
meter provider it installs or finds.

``service.instance.id`` comes from the SDK's resource detector: a UUID per process, renewed in
pre-forked workers (gunicorn, uvicorn ``--workers``) after the fork.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from otel_ml._internal import env, forksafe, selftelemetry, wiring
from otel_ml._internal.export_buffer import (
    BufferedLogExporter,
    BufferedSpanExporter,
    CountingBatchLogRecordProcessor,
    CountingBatchSpanProcessor,
    capacity_from_env,
)
from otel_ml._internal.logs import add_model_attributes, is_otel_handler, make_handler
from otel_ml._internal.producer import producer_for

_PROTOCOLS = ("grpc", "http/protobuf")
_lock = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_lock")


@dataclass
class Telemetry:
    """What :func:`configure` set up (or found): the three providers and whether otel_ml made them."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: Any
    created: dict[str, bool] = field(default_factory=dict)
    log_handler: logging.Handler | None = None

    def shutdown(self) -> None:
        """Flush and stop the providers otel_ml created (not ones it found)."""
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
        for key, provider in (("traces", self.tracer_provider), ("metrics", self.meter_provider),
                              ("logs", self.logger_provider)):
            if self.created.get(key):
                shutdown = getattr(provider, "shutdown", None)
                if shutdown is not None:
                    shutdown()

    def force_flush(self, timeout_millis: int = 10_000) -> None:
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                flush(timeout_millis)


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    deployment_environment: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    sampler: Sampler | None = None,
    export_interval_ms: int | None = None,
    console: bool = False,
    logging_handler: bool = True,
    log_level: int = logging.INFO,
    system_metrics: bool = True,
    metric_readers: Sequence[MetricReader] = (),
    span_exporters: Sequence[SpanExporter] = (),
    log_exporters: Sequence[LogRecordExporter] = (),
    set_global: bool = True,
    gpu: bool | None = None,
) -> Telemetry:
    """Set up OpenTelemetry for a model service; safe to call more than once.

    Args:
        service_name, service_version, deployment_environment: resource attributes
            ``service.name``, ``service.version``, ``deployment.environment.name``.
        endpoint: OTLP endpoint (default from ``OTEL_EXPORTER_OTLP_ENDPOINT``, else the SDK's
            ``localhost:4317`` for gRPC / ``localhost:4318`` for HTTP).
        protocol: ``grpc`` (default) or ``http/protobuf`` (default from ``OTEL_EXPORTER_OTLP_PROTOCOL``).
        headers: extra OTLP headers (e.g. an auth token).
        resource_attributes: more resource attributes.
        sampler: trace sampler (default from ``OTEL_TRACES_SAMPLER``, else parent-based always-on).
        export_interval_ms: metric export interval (default ``OTEL_METRIC_EXPORT_INTERVAL`` or 60 s).
        console: export to stdout instead of OTLP (for trying things out).
        logging_handler: bridge Python ``logging`` (root logger, ``log_level`` and above) to OTel logs.
        system_metrics: process CPU, memory, threads, file descriptors, context switches, GC and the
            host's CPU and memory utilisation, through OpenTelemetry's system-metrics instrumentation
            (skipped when ``opentelemetry-instrument`` already runs it).
        metric_readers, span_exporters, log_exporters: added beside (or, with ``console``,
            instead of) the OTLP ones; used by :mod:`otel_ml.testing`.
        set_global: install the providers as the global ones (default True).
        gpu: export GPU metrics and energy per inference on the meter provider (``otel_ml.gpu``;
            default from ``OTEL_ML_GPU``, off). Without a GPU or NVML this logs one line and
            exports nothing.

    Raises:
        ValueError: for an unknown ``protocol`` or a non-positive ``export_interval_ms``.
    """
    protocol = (protocol or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
    if protocol not in _PROTOCOLS:
        raise ValueError(f"protocol must be one of {_PROTOCOLS}, got {protocol!r}")
    if export_interval_ms is not None and (not isinstance(export_interval_ms, int) or export_interval_ms <= 0):
        raise ValueError(f"export_interval_ms must be a positive int, got {export_interval_ms!r}")
    # OTEL_ML_EXPORTER=otlp (default) | console | none: where to send without touching code.
    exporter_env = env.choice(env.EXPORTER, "otlp")
    console = console or exporter_env == "console"
    otlp = not console and exporter_env != "none"

    with _lock:
        resource = _resource(service_name, service_version, deployment_environment, resource_attributes)
        created: dict[str, bool] = {}

        tracer_provider = trace.get_tracer_provider()
        if isinstance(tracer_provider, TracerProvider):
            created["traces"] = False
        else:
            tracer_provider = TracerProvider(resource=resource, sampler=sampler)
            exporters = list(span_exporters)
            if otlp:
                exporters.append(_span_exporter(protocol, endpoint, headers))
            if console:
                exporters.append(ConsoleSpanExporter())
            for exporter in exporters:
                tracer_provider.add_span_processor(CountingBatchSpanProcessor(exporter))
            created["traces"] = True
            if set_global:
                trace.set_tracer_provider(tracer_provider)

        meter_provider = metrics.get_meter_provider()
        if isinstance(meter_provider, MeterProvider):
            created["metrics"] = False
            for reader in metric_readers:
                meter_provider.add_metric_reader(reader)
        else:
            readers = list(metric_readers)
            interval = export_interval_ms
            if otlp:
                readers.append(PeriodicExportingMetricReader(_metric_exporter(protocol, endpoint, headers),
                                                             export_interval_millis=interval))
            if console:
                readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(),
                                                             export_interval_millis=interval))
            meter_provider = MeterProvider(resource=resource, metric_readers=readers)
            created["metrics"] = True
            if set_global:
                metrics.set_meter_provider(meter_provider)
        producer_for(meter_provider)

        logger_provider: Any = get_logger_provider()
        if isinstance(logger_provider, LoggerProvider):
            created["logs"] = False
        else:
            logger_provider = LoggerProvider(resource=resource)
            log_exps = list(log_exporters)
            if otlp:
                log_exps.append(_log_exporter(protocol, endpoint, headers))
            if console:
                log_exps.append(ConsoleLogRecordExporter())
            for log_exporter in log_exps:
                logger_provider.add_log_record_processor(CountingBatchLogRecordProcessor(log_exporter))
            created["logs"] = True
            if set_global:
                set_logger_provider(logger_provider)

        handler: logging.Handler | None = None
        if logging_handler:
            handler = _install_handler(logger_provider, log_level)
        if system_metrics:
            _system_metrics(meter_provider)
    if set_global:
        wiring.attach_pending()
    if gpu if gpu is not None else env.flag(env.GPU):
        # Imported here: most services have no GPU and should not pay for the import.
        from otel_ml._internal.gpu import control as gpu_control

        gpu_control.start(meter_provider)
    return Telemetry(tracer_provider, meter_provider, logger_provider, created, handler)


# The process's own health beside its models', and the host's CPU and memory: what a model service's
# dashboards and capacity alerts need, without the per-disk and per-interface series.
SYSTEM_METRICS: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": ["user", "system"],
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
    "process.context_switches": ["involuntary", "voluntary"],
    "cpython.gc.collections": None,
    "cpython.gc.collected_objects": None,
    "system.cpu.utilization": ["idle", "user", "system", "irq"],
    "system.memory.utilization": ["used", "free", "cached"],
}


def _system_metrics(meter_provider: metrics.MeterProvider) -> None:
    try:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    except ImportError:
        return
    instrumentor = SystemMetricsInstrumentor(config=SYSTEM_METRICS)
    if instrumentor.is_instrumented_by_opentelemetry:  # opentelemetry-instrument ran it already
        return
    try:
        instrumentor.instrument(meter_provider=meter_provider)
    except Exception as exc:  # never fail configure() over process metrics
        selftelemetry.log_once("system_metrics", "otel_ml: process metrics unavailable: %s", exc)


def _install_handler(logger_provider: Any, level: int) -> logging.Handler:
    root = logging.getLogger()
    for existing in root.handlers:
        # One OTel bridge per process: reuse the one opentelemetry-instrument (or we) installed.
        if is_otel_handler(existing):
            add_model_attributes(existing)
            return existing
    handler = make_handler(logger_provider, level=level)
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    return handler


def _resource(name: str | None, version: str | None, environment: str | None,
              extra: Mapping[str, Any] | None) -> Resource:
    attrs: dict[str, Any] = {}
    if extra:
        attrs.update(extra)
    if name:
        attrs["service.name"] = name
    if version:
        attrs["service.version"] = version
    if environment:
        attrs["deployment.environment.name"] = environment
    # Resource.create adds the SDK's detectors: OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME and a
    # per-process service.instance.id. Explicit arguments win over the environment.
    detected = Resource.create({})
    return detected.merge(Resource(attrs))


def _span_exporter(protocol: str, endpoint: str | None, headers: Mapping[str, str] | None) -> SpanExporter:
    exporter: SpanExporter
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        exporter = Grpc(endpoint=endpoint, headers=dict(headers) if headers else None)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

        exporter = Http(endpoint=_http(endpoint, "traces"), headers=dict(headers) if headers else None)
    # A collector restart must not lose spans silently: hold failed batches (bounded) and re-send.
    capacity = capacity_from_env(env.EXPORT_BUFFER_SPANS)
    return BufferedSpanExporter(exporter, capacity) if capacity else exporter


def _metric_exporter(protocol: str, endpoint: str | None, headers: Mapping[str, str] | None) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

        return Grpc(endpoint=endpoint, headers=dict(headers) if headers else None)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

    return Http(endpoint=_http(endpoint, "metrics"), headers=dict(headers) if headers else None)


def _log_exporter(protocol: str, endpoint: str | None, headers: Mapping[str, str] | None) -> LogRecordExporter:
    exporter: LogRecordExporter
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as Grpc

        exporter = Grpc(endpoint=endpoint, headers=dict(headers) if headers else None)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as Http

        exporter = Http(endpoint=_http(endpoint, "logs"), headers=dict(headers) if headers else None)
    capacity = capacity_from_env(env.EXPORT_BUFFER_LOGS)
    return BufferedLogExporter(exporter, capacity) if capacity else exporter


def _http(endpoint: str | None, signal: str) -> str | None:
    # The HTTP exporters take the full per-signal URL; a base endpoint gets /v1/<signal> appended,
    # as OTEL_EXPORTER_OTLP_ENDPOINT does.
    if endpoint is None:
        return None
    return endpoint.rstrip("/") + f"/v1/{signal}"
