"""collector/secure.yaml: TLS and bearer-token auth on the OTLP receivers, end to end.

A private collector (config.yaml + secure.yaml) runs on 127.0.0.3 with a CA and server certificate
made here and a token in a file. A service set up with ``otel_ml.configure(endpoint="https://...",
headers={"authorization": "Bearer <token>"})`` and ``OTEL_EXPORTER_OTLP_CERTIFICATE=<ca>`` gets its
metrics into the collector's Prometheus exporter (gRPC and HTTP); a wrong token, no token or a
plaintext connection is refused, and the service's code does not see an exception.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import otel_ml
from tests.stack.backends import poll
from tests.stack.collectors import BINARY, REPO, Collector, make_certs, scrape, secret_file

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not BINARY.is_file(), reason=f"{BINARY} not built (run `otel-ml stack build`)"),
]

HOST = "127.0.0.3"
METRICS_URL = f"http://{HOST}:8889/metrics"


@dataclass(frozen=True)
class Secure:
    ca: Path
    token: str
    collector: Collector


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    d = tmp_path_factory.mktemp("secure-collector")
    ca, cert, key = make_certs(d, [HOST])
    token = secrets.token_urlsafe(24)
    token_file = secret_file(d / "token", token)
    env = {
        "OTEL_ML_COLLECTOR_HOST": HOST,
        "OTEL_ML_TLS_CERT_FILE": str(cert),
        "OTEL_ML_TLS_KEY_FILE": str(key),
        "OTEL_ML_AUTH_TOKEN_FILE": str(token_file),
        "OTEL_ML_AUTH_TOKEN": "",
        # Keep this collector's traces and logs out of the shared Jaeger and Loki: nothing listens here.
        "OTEL_ML_JAEGER_OTLP_ENDPOINT": f"{HOST}:14317",
        "OTEL_ML_LOKI_OTLP_ENDPOINT": f"http://{HOST}:3100/otlp",
    }
    collector = Collector([REPO / "collector/config.yaml", REPO / "collector/secure.yaml"], env, d / "collector.log",
                          f"http://{HOST}:13133/").start()
    try:
        yield Secure(ca, token, collector)
    finally:
        collector.stop()
    assert token not in collector.output(), "the collector logged the bearer token"


def _serve_one_inference(service: str, endpoint: str, protocol: str, headers: dict[str, str] | None) -> None:
    """What a service does: configure, serve an inference, flush. Must not raise whatever the collector says."""
    telemetry = otel_ml.configure(service_name=service, endpoint=endpoint, protocol=protocol, headers=headers,
                                  set_global=False, logging_handler=False, system_metrics=False, gpu=False,
                                  export_interval_ms=600_000)
    try:
        monitor = otel_ml.ModelMonitor("auth-probe", tracer_provider=telemetry.tracer_provider,
                                  meter_provider=telemetry.meter_provider)
        with monitor.inference(batch_size=1):
            pass
        telemetry.force_flush(timeout_millis=15_000)
    finally:
        telemetry.shutdown()


def _arrived(service: str) -> bool:
    return f'service_name="{service}"' in scrape(METRICS_URL)


ENDPOINTS = {"grpc": f"https://{HOST}:4317", "http/protobuf": f"https://{HOST}:4318"}


def trust(ca: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust ``ca`` the way a service would: OTEL_EXPORTER_OTLP_CERTIFICATE. The HTTP exporter's
    requests session lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on many machines, this one too)
    override that, so a service using http/protobuf must not have them set (collector/README.md)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(ca))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.mark.parametrize("protocol", sorted(ENDPOINTS))
def test_right_token_over_tls_arrives(secure: Secure, protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trust(secure.ca, monkeypatch)
    service = f"otel-ml-auth-ok-{uuid.uuid4().hex[:8]}"
    _serve_one_inference(service, ENDPOINTS[protocol], protocol, {"authorization": f"Bearer {secure.token}"})
    poll(lambda: _arrived(service), f"{service} on {METRICS_URL}", timeout=30)


REFUSED: dict[str, tuple[str, str, Callable[[str], dict[str, str] | None]]] = {
    "wrong-token": ("grpc", "https", lambda token: {"authorization": "Bearer not-" + token}),
    "no-token": ("grpc", "https", lambda token: None),
    "wrong-token-http": ("http/protobuf", "https", lambda token: {"authorization": "Bearer not-" + token}),
    "no-token-http": ("http/protobuf", "https", lambda token: None),
    # The right token over plaintext: the TLS listener never accepts it (and the token never
    # crosses the wire in the clear to a collector that expects TLS).
    "plaintext": ("grpc", "http", lambda token: {"authorization": f"Bearer {token}"}),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_without_raising(secure: Secure, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refused service runs to the end without an exception; then a correctly authenticated
    canary, sent after the refused export had finished, arrives while the refused one never does."""
    trust(secure.ca, monkeypatch)
    protocol, scheme, headers = REFUSED[case]
    refused = f"otel-ml-auth-refused-{uuid.uuid4().hex[:8]}"
    endpoint = ENDPOINTS[protocol].replace("https://", f"{scheme}://")
    _serve_one_inference(refused, endpoint, protocol, headers(secure.token))
    canary = f"otel-ml-auth-canary-{uuid.uuid4().hex[:8]}"
    _serve_one_inference(canary, ENDPOINTS[protocol], protocol, {"authorization": f"Bearer {secure.token}"})
    poll(lambda: _arrived(canary), f"{canary} on {METRICS_URL}", timeout=30)
    assert not _arrived(refused)
