"""The agent/gateway layout (collector/agent.yaml, collector/gateway.yaml) keeps traces whole.

Two agents and two gateways run on private loopback addresses; the gateways export to the shared
Jaeger. Every trace has spans sent through *both* agents (root and grandchild through agent A,
child and great-grandchild through agent B), so only trace-id routing brings them together at one
gateway's tail sampler. The gateways keep errors (the error is on a span that went through agent B)
and, with OTEL_ML_TRACE_SAMPLE_PERCENT=0, nothing else. One gateway is stopped between two waves
and started again while the agents still hold the spans meant for it.

Asserted: every kept trace is in Jaeger with exactly the spans sent for it, and Jaeger has no
other trace of these services (no dropped trace leaked, not even in part). Metrics sent through
both agents reach exactly one gateway's Prometheus endpoint (routed by service).

The secured fleet: a gateway with secure.yaml and two agents with secure.yaml + agent-secure.yaml
(TLS and tokens on every hop, CA and certificate made here). Services reach their agent over TLS
with the agents' token; the agent holding the gateway's token delivers to Jaeger, the one holding
a wrong token is refused by the gateway and delivers nothing.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.stack.backends import Backends, get_json, poll
from tests.stack.collectors import BINARY, REPO, Collector, make_certs, scrape, secret_file

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not BINARY.is_file(), reason=f"{BINARY} not built (run `otel-ml stack build`)"),
]

AGENTS = ("127.0.0.21", "127.0.0.22")
GATEWAYS = ("127.0.0.23", "127.0.0.24")
DECISION_WAIT_S = 8  # above the skew between two agents retrying the same gateway
TRACES_PER_WAVE = 12
SPANS_PER_TRACE = 4


def _gateway(host: str, d: Path) -> Collector:
    env = {
        "OTEL_ML_COLLECTOR_HOST": host,
        "OTEL_ML_TRACE_SAMPLE_PERCENT": "0",  # keep errors only: which traces survive is known
        "OTEL_ML_SLOW_TRACE_MS": "600000",
        "OTEL_ML_TAIL_DECISION_WAIT": f"{DECISION_WAIT_S}s",
        "OTEL_ML_LOKI_OTLP_ENDPOINT": f"http://{host}:3100/otlp",  # nothing listens: no logs sent anyway
    }
    configs = [REPO / "collector/config.yaml", REPO / "collector/gateway.yaml"]
    return Collector(configs, env, d / f"gateway-{host}.log", f"http://{host}:13133/")


def _agent(host: str, d: Path) -> Collector:
    env = {
        "OTEL_ML_COLLECTOR_HOST": host,
        "OTEL_ML_GATEWAY_ENDPOINTS": "[" + ", ".join(f"{g}:4317" for g in GATEWAYS) + "]",
        "OTEL_ML_AGENT_QUEUE_DIR": str(d / f"queue-{host}"),  # one per agent (a file lock each)
    }
    return Collector([REPO / "collector/agent.yaml"], env, d / f"agent-{host}.log", f"http://{host}:13133/")


@dataclass
class Fleet:
    agents: list[Collector]
    gateways: list[Collector]
    service: str
    providers: list[TracerProvider] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)  # trace id -> spans sent
    dropped: set[str] = field(default_factory=set)

    def send_wave(self, n: int) -> None:
        """``n`` traces, every other one with an error on the span that goes through agent B."""
        tracer_a, tracer_b = (p.get_tracer("otel_ml.fleet") for p in self.providers)
        for i in range(n):
            error = i % 2 == 0
            with tracer_a.start_as_current_span("fleet.request") as root:
                with tracer_b.start_as_current_span("fleet.predict") as child:
                    with tracer_a.start_as_current_span("fleet.features"), \
                            tracer_b.start_as_current_span("fleet.model"):
                        pass
                    if error:
                        child.set_status(Status(StatusCode.ERROR, "model failed"))
                trace_id = format(root.get_span_context().trace_id, "032x")
            if error:
                self.kept[trace_id] = SPANS_PER_TRACE
            else:
                self.dropped.add(trace_id)
        for p in self.providers:
            p.force_flush()


def _accepted_spans(host: str) -> float:
    text = scrape(f"http://{host}:8888/metrics")
    return sum(float(v) for v in re.findall(r"^otelcol_receiver_accepted_spans\S*\{[^}]*\} (\S+)$", text, re.M))


@pytest.fixture
def fleet(backends: Backends, tmp_path: Path) -> Iterator[Fleet]:
    gateways = [_gateway(h, tmp_path) for h in GATEWAYS]
    agents = [_agent(h, tmp_path) for h in AGENTS]
    started: list[Collector] = []
    providers: list[TracerProvider] = []
    try:
        for c in (*gateways, *agents):
            started.append(c.start())
        service = f"otel-ml-fleet-{uuid.uuid4().hex[:8]}"
        for host, part in zip(AGENTS, ("a", "b"), strict=True):
            provider = TracerProvider(resource=Resource.create({"service.name": f"{service}-{part}"}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{host}:4317", insecure=True)))
            providers.append(provider)
        yield Fleet(agents, gateways, service, providers)
    finally:
        for p in providers:
            p.shutdown()
        for c in started:
            c.stop()


def test_fleet_routes_a_services_metrics_to_one_gateway(fleet: Fleet) -> None:
    """A counter sent through both agents ends up, summed, on exactly one gateway's :8889."""
    service = f"{fleet.service}-metrics"
    readers = []
    for host in AGENTS:
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{host}:4317", insecure=True),
                                               export_interval_millis=600_000)
        provider = MeterProvider(resource=Resource.create({"service.name": service, "service.instance.id": host}),
                                 metric_readers=[reader])
        provider.get_meter("otel_ml.fleet").create_counter("otel_ml.fleet.probe").add(3)
        readers.append(provider)
    try:
        for provider in readers:
            provider.force_flush()
        selector = f'service_name="{service}"'

        def holders() -> list[str] | None:
            found = [g for g in GATEWAYS if selector in scrape(f"http://{g}:8889/metrics")]
            series = [line for g in found for line in scrape(f"http://{g}:8889/metrics").splitlines()
                      if line.startswith("otel_ml_fleet_probe") and selector in line]
            return found if len(series) == len(AGENTS) else None

        assert len(poll(holders, f"{service}'s probe from both agents on a gateway", timeout=30)) == 1
    finally:
        for provider in readers:
            provider.shutdown()


def _jaeger_span_counts(backends: Backends, service: str) -> dict[str, int]:
    body = get_json(f"{backends.urls.jaeger}/api/traces", {"service": service, "limit": "1000", "lookback": "1h"})
    return {t["traceID"]: len(t["spans"]) for t in (body or {}).get("data") or []}


def test_fleet_keeps_whole_traces_across_a_gateway_restart(backends: Backends, fleet: Fleet) -> None:
    fleet.send_wave(TRACES_PER_WAVE)
    # Let the gateways decide on wave 1: a stopped gateway drops the traces it holds undecided.
    time.sleep(DECISION_WAIT_S + 2)
    restarted = fleet.gateways[1]
    restarted.stop()
    fleet.send_wave(TRACES_PER_WAVE)  # the agents queue the restarted gateway's share and retry
    time.sleep(2)
    restarted.start()
    # The queued spans reach the new process (its counters start from zero) before wave 3 is sent.
    poll(lambda: _accepted_spans(GATEWAYS[1]) > 0, f"agents' retries reaching the restarted gateway {GATEWAYS[1]}",
         timeout=45)
    fleet.send_wave(TRACES_PER_WAVE)

    def complete() -> dict[str, int] | None:
        counts = _jaeger_span_counts(backends, f"{fleet.service}-a")
        return counts if all(counts.get(t) == n for t, n in fleet.kept.items()) else None

    poll(complete, f"{len(fleet.kept)} kept traces, {SPANS_PER_TRACE} spans each, in Jaeger", timeout=90)
    # Dropped traces were decided with the kept ones; give stragglers one more decision period.
    time.sleep(DECISION_WAIT_S + 2)
    for part in ("a", "b"):
        counts = _jaeger_span_counts(backends, f"{fleet.service}-{part}")
        assert counts == fleet.kept, f"service {fleet.service}-{part}"
    # Both gateways took part (trace-id routing spread the traces), so the restart was exercised.
    assert all(_accepted_spans(g) > 0 for g in GATEWAYS)


SECURE_AGENTS = {"right": "127.0.0.45", "wrong": "127.0.0.46"}
SECURE_GATEWAYS = ("127.0.0.47", "127.0.0.48")
SECURE_TRACES = 20  # per agent: both gateways get some (all on one: a 2**-19 chance)


def test_secured_fleet_authenticates_every_hop(backends: Backends, tmp_path: Path) -> None:
    """Two secured gateways behind two secured agents: every hop is TLS with a bearer token, and the
    agents' load balancing uses TLS and the token to each gateway."""
    ca, cert, key = make_certs(tmp_path, [*SECURE_GATEWAYS, *SECURE_AGENTS.values()])
    tls = {"OTEL_ML_TLS_CERT_FILE": str(cert), "OTEL_ML_TLS_KEY_FILE": str(key), "OTEL_ML_AUTH_TOKEN": ""}
    service_token, gateway_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    accepts = secret_file(tmp_path / "gateway-accepts", gateway_token)
    gateways = [
        Collector(
            [REPO / "collector/config.yaml", REPO / "collector/gateway.yaml", REPO / "collector/secure.yaml"],
            {**tls, "OTEL_ML_COLLECTOR_HOST": host, "OTEL_ML_TRACE_SAMPLE_PERCENT": "100",
             "OTEL_ML_TAIL_DECISION_WAIT": "2s", "OTEL_ML_LOKI_OTLP_ENDPOINT": f"http://{host}:3100/otlp",
             "OTEL_ML_AUTH_TOKEN_FILE": str(accepts)},
            tmp_path / f"gateway-{i}.log", f"http://{host}:13133/")
        for i, host in enumerate(SECURE_GATEWAYS)
    ]
    endpoints = "[" + ", ".join(f"{host}:4317" for host in SECURE_GATEWAYS) + "]"
    agents = {
        name: Collector(
            [REPO / "collector/agent.yaml", REPO / "collector/secure.yaml", REPO / "collector/agent-secure.yaml"],
            {**tls, "OTEL_ML_COLLECTOR_HOST": host, "OTEL_ML_GATEWAY_ENDPOINTS": endpoints,
             "OTEL_ML_GATEWAY_CA_FILE": str(ca), "OTEL_ML_AGENT_QUEUE_DIR": str(tmp_path / f"queue-{name}"),
             "OTEL_ML_AUTH_TOKEN_FILE": str(secret_file(tmp_path / f"agent-{name}-accepts", service_token)),
             "OTEL_ML_GATEWAY_TOKEN_FILE": str(secret_file(
                 tmp_path / f"agent-{name}-sends", gateway_token if name == "right" else "not-" + gateway_token))},
            tmp_path / f"agent-{name}.log", f"http://{host}:13133/")
        for name, host in SECURE_AGENTS.items()
    }
    credentials = grpc.ssl_channel_credentials(ca.read_bytes())
    run = uuid.uuid4().hex[:8]
    providers: dict[str, TracerProvider] = {}
    sent: dict[str, set[str]] = {}
    try:
        for gateway in gateways:
            gateway.start()
        for agent in agents.values():
            agent.start()
        for name, host in SECURE_AGENTS.items():
            provider = TracerProvider(resource=Resource.create({"service.name": f"otel-ml-secure-{name}-{run}"}))
            exporter = OTLPSpanExporter(endpoint=f"{host}:4317", credentials=credentials,
                                        headers={"authorization": f"Bearer {service_token}"})
            provider.add_span_processor(BatchSpanProcessor(exporter))
            providers[name] = provider
            tracer = provider.get_tracer("otel_ml.fleet")
            sent[name] = set()
            for _ in range(SECURE_TRACES):
                with tracer.start_as_current_span("secure.request") as root, \
                        tracer.start_as_current_span("secure.predict"):
                    sent[name].add(format(root.get_span_context().trace_id, "032x"))
            assert provider.force_flush(15_000)  # the agent accepted them: service -> agent is fine

        def arrived(name: str) -> dict[str, int]:
            return _jaeger_span_counts(backends, f"otel-ml-secure-{name}-{run}")

        got = poll(lambda: arrived("right") if set(arrived("right")) == sent["right"] else None,
                   f"the right-token agent's {SECURE_TRACES} traces in Jaeger", timeout=60)
        assert all(n == 2 for n in got.values()), got
        # The wrong-token agent's spans were sent at the same time; give them a decision period more.
        time.sleep(5)
        assert arrived("wrong") == {}
        assert "Unauthenticated" in agents["wrong"].output() or "unauthenticated" in agents["wrong"].output()
        accepted = [_accepted_spans(host) for host in SECURE_GATEWAYS]
        # The right agent's spans, shared by trace id between both gateways; the wrong one's never got in.
        assert sum(accepted) == 2 * SECURE_TRACES and all(accepted), accepted
        # The refusal is permanent: the wrong agent gave its spans up and counted them, where an
        # operator's alert on otelcol_exporter_send_failed_* sees them.
        failed = sum(float(v) for v in re.findall(r"^otelcol_exporter_send_failed_spans\S*\{[^}]*\} (\S+)$",
                                                  scrape(f"http://{SECURE_AGENTS['wrong']}:8888/metrics"), re.M))
        assert failed == 2 * SECURE_TRACES, failed
    finally:
        for provider in providers.values():
            provider.shutdown()
        for collector in (*agents.values(), *gateways):
            collector.stop()
    for collector in (*agents.values(), *gateways):
        text = collector.output()
        assert service_token not in text and gateway_token not in text, "a collector logged a token"
