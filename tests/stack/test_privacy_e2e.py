"""Privacy end to end: what leaves a service by default, what opting in lets through, and the
collector's redaction agreeing with both - checked in Loki, Jaeger and Prometheus.

A child process (a service with ``otel_ml.configure()``) plants a secret in the features and output
of a monitor that did not opt in, and in content attributes a third-party instrumentation sets on
its own spans, log records and metric points; a second monitor opts in with a ``redact`` hook that
strips a card number. Then every backend is searched for the strings: the secret must be nowhere,
the opted-in content must be in Loki, and the card number the hook removed must be nowhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.stack.backends import Backends, get_json, poll

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

SERVICE_SCRIPT = textwrap.dedent('''
    import logging, sys
    import otel_ml
    from opentelemetry import metrics, trace

    service, secret, note, card = sys.argv[1:5]
    tel = otel_ml.configure(service_name=service, export_interval_ms=1000, system_metrics=False)

    def redact(kind, value):
        # The user's hook: card numbers never leave, the rest of the opted-in content does.
        return [v for v in value if not str(v).startswith("card=")]

    plain = otel_ml.ModelMonitor("privacy-plain", version="1")
    opted = otel_ml.ModelMonitor("privacy-optin", version="1", capture_content=True, redact=redact)
    for i in range(3):
        row = [0.5, "token=" + secret]
        with plain.inference(features=[[0.5, 1.0]], prediction_id=f"plain-{i}") as inf:
            inf.record(predictions="yes", confidence=0.9)
        plain.log_prediction(prediction="yes", confidence=0.9, prediction_id=f"plain-{i}",
                             features=row, output={"answer": secret})
        with opted.inference(features=[[0.5, 1.0]], prediction_id=f"optin-{i}") as inf:
            inf.record(predictions="no", confidence=0.8)
        opted.log_prediction(prediction="no", confidence=0.8, prediction_id=f"optin-{i}",
                             features=["note=" + note, "card=" + card], output=["card=" + card])

    # A third-party instrumentation that captures content on its own: spans, logs, metrics.
    tracer = trace.get_tracer("third.party.llm")
    with tracer.start_as_current_span("llm.chat") as span:
        span.set_attribute("gen_ai.prompt", secret)
        span.set_attribute("gen_ai.prompt.0.content", secret)
        span.set_attribute("ml.features", secret)
        span.set_attribute("http.request.header.authorization", "Bearer " + secret)
        span.set_attribute("privacy.marker", "third-party")
        logging.getLogger("third.party.llm").warning(
            "llm call", extra={"gen_ai.prompt": secret, "user.email": secret + "@example.org"})
    with tracer.start_as_current_span("llm.chat.optin") as span:
        # Content the service marked as opted in passes; secrets and personal data never do.
        span.set_attribute("otel_ml.content.captured", True)
        span.set_attribute("gen_ai.prompt", "optin-prompt " + note)
        span.set_attribute("user.email", secret + "@example.org")
    metrics.get_meter("third.party.llm").create_counter("privacy.probe").add(
        1, {"ml.features": secret, "gen_ai.prompt": secret, "privacy.marker": "third-party"})
    tel.shutdown()
''')


def _loki_dump(backends: Backends, service: str) -> str:
    return json.dumps(backends.loki_query_range(f'{{service_name="{service}"}}'))


def _jaeger_dump(backends: Backends, service: str) -> str:
    body = get_json(f"{backends.urls.jaeger}/api/traces", {"service": service, "limit": "100", "lookback": "1h"})
    return json.dumps((body or {}).get("data") or [])


def _prom_dump(backends: Backends, service: str) -> str:
    body = get_json(f"{backends.urls.prometheus}/api/v1/series",
                    {"match[]": f'{{service_name="{service}"}}', "start": str(time.time() - 600)})
    return json.dumps(body["data"])


def test_secrets_never_reach_a_backend_and_opted_in_content_does(backends: Backends) -> None:
    service = f"otel-ml-privacy-{uuid.uuid4().hex[:8]}"
    secret, note, card = f"s3cr3t{uuid.uuid4().hex}", f"optin{uuid.uuid4().hex}", "4111111111111111"
    proc = subprocess.run([sys.executable, "-c", SERVICE_SCRIPT, service, secret, note, card], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{backends.urls.otlp_grpc}",
                               "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BLRP_SCHEDULE_DELAY": "200"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert secret not in proc.stderr  # otel_ml logged nothing with the secret either

    # Everything arrived (so an absence below is redaction, not a lost export) ...
    def when(dump: Callable[[Backends, str], str], *needles: str) -> Callable[[], str | None]:
        def fetch() -> str | None:
            text = dump(backends, service)
            return text if all(n in text for n in needles) else None
        return fetch

    logs = poll(when(_loki_dump, "ml.prediction", note, "llm call"), "the service's logs in Loki", timeout=90)
    traces = poll(when(_jaeger_dump, "llm.chat.optin", "inference privacy-optin"), "its traces in Jaeger", timeout=90)
    series = poll(when(_prom_dump, "privacy_probe", "ml_inference_duration_seconds"), "its series in Prometheus",
                  timeout=90)

    # ... the secret planted without opting in is nowhere ...
    for backend, dump in (("Loki", logs), ("Jaeger", traces), ("Prometheus", series)):
        assert secret not in dump, f"{backend} holds the secret"
        assert card not in dump, f"{backend} holds the card number the redact hook removed"
    # ... the plain monitor's records say how much content there was, not what it was ...
    assert "ml.features.count" in logs or "ml_features_count" in logs
    # ... the opted-in monitor's content (after the hook) and the marked span's prompt are kept.
    assert f"note={note}" in logs
    assert f"optin-prompt {note}" in traces
    assert '"third-party"' in traces and "privacy_marker" in series  # the rest of those items survived
