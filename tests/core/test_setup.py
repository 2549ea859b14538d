"""configure() builds OTLP providers from arguments and OTEL_* variables, and reuses existing ones.

Global providers can be set once per process, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, **env: str) -> dict[str, object]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update(env)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=full_env, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_resource_from_arguments_and_env() -> None:
    """service name/version/environment, OTEL_RESOURCE_ATTRIBUTES and a service.instance.id."""
    got = _run("""
        import json, otel_ml
        t = otel_ml.configure(service_name="fraud-api", service_version="1.2",
                              deployment_environment="prod", console=False)
        r = dict(t.tracer_provider.resource.attributes)
        m = dict(t.meter_provider._sdk_config.resource.attributes)
        print(json.dumps({"r": r, "same": r == m, "created": t.created}))
    """, OTEL_RESOURCE_ATTRIBUTES="team=ml", OTEL_ML_EXPORTER="none")
    r = got["r"]
    assert isinstance(r, dict)
    assert r["service.name"] == "fraud-api"
    assert r["service.version"] == "1.2"
    assert r["deployment.environment.name"] == "prod"
    assert r["team"] == "ml"
    assert len(str(r["service.instance.id"])) == 36
    assert got["same"] is True
    assert got["created"] == {"traces": True, "metrics": True, "logs": True}


def test_service_name_from_env_when_not_given() -> None:
    """OTEL_SERVICE_NAME applies when configure() gets no service_name."""
    got = _run("""
        import json, otel_ml
        t = otel_ml.configure()
        print(json.dumps({"name": t.tracer_provider.resource.attributes["service.name"]}))
    """, OTEL_SERVICE_NAME="from-env", OTEL_ML_EXPORTER="none")
    assert got["name"] == "from-env"


def test_existing_providers_are_reused_not_replaced() -> None:
    """Providers installed before (as opentelemetry-instrument does) stay the global ones."""
    got = _run("""
        import json
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        reader = InMemoryMetricReader()
        tp, mp = TracerProvider(), MeterProvider(metric_readers=[reader])
        trace.set_tracer_provider(tp); metrics.set_meter_provider(mp)
        import otel_ml
        t = otel_ml.configure(service_name="x")
        m = otel_ml.ModelMonitor("fraud", version="1")
        with m.inference() as inf:
            inf.record(predictions="a", confidence=0.5)
        names = [x.name for rm in reader.get_metrics_data().resource_metrics
                 for sm in rm.scope_metrics for x in sm.metrics]
        print(json.dumps({"tp": trace.get_tracer_provider() is tp, "mp": metrics.get_meter_provider() is mp,
                          "created": t.created, "names": names}))
    """, OTEL_ML_EXPORTER="none")
    assert got["tp"] is True and got["mp"] is True
    assert got["created"] == {"traces": False, "metrics": False, "logs": True}
    assert "ml.inference.duration" in got["names"]  # type: ignore[operator]


def test_service_instance_id_differs_after_fork() -> None:
    """A pre-forked worker reports its own service.instance.id, not its parent's."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    got = _run("""
        import json, os, otel_ml
        t = otel_ml.configure(service_name="x")
        parent = t.tracer_provider.resource.attributes["service.instance.id"]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, t.tracer_provider.resource.attributes["service.instance.id"].encode()); os._exit(0)
        os.waitpid(pid, 0)
        child = os.read(r, 100).decode()
        print(json.dumps({"parent": parent, "child": child}))
    """, OTEL_ML_EXPORTER="none")
    assert got["parent"] != got["child"]
    assert len(str(got["child"])) == 36


def test_bad_arguments_raise_at_once() -> None:
    """An unknown protocol or a bad interval is a ValueError before anything is installed."""
    import otel_ml

    with pytest.raises(ValueError, match="protocol"):
        otel_ml.configure(protocol="udp")
    with pytest.raises(ValueError, match="export_interval_ms"):
        otel_ml.configure(export_interval_ms=0)


def test_dead_collector_does_not_raise() -> None:
    """With nothing listening on the OTLP port, inference and shutdown still return normally."""
    got = _run("""
        import json, otel_ml, logging
        t = otel_ml.configure(service_name="x", endpoint="http://127.0.0.1:9", export_interval_ms=200)
        m = otel_ml.ModelMonitor("fraud", version="1")
        for i in range(200):
            with m.inference() as inf:
                inf.record(predictions="a", confidence=0.5)
            logging.getLogger("svc").warning("row %d", i)
        t.shutdown()
        print(json.dumps({"ok": True}))
    """, OTEL_EXPORTER_OTLP_TIMEOUT="1", OTEL_BSP_EXPORT_TIMEOUT="1000", OTEL_BLRP_EXPORT_TIMEOUT="1000")
    assert got["ok"] is True


def test_configure_exports_process_metrics() -> None:
    """configure() adds the process's CPU, memory, threads and GC metrics through the contrib instrumentation."""
    got = _run("""
        import json, otel_ml
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        reader = InMemoryMetricReader()
        otel_ml.configure(service_name="x", metric_readers=[reader])
        names = sorted({m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                        for m in sm.metrics})
        print(json.dumps({"names": names}))
    """, OTEL_ML_EXPORTER="none")
    names = set(got["names"])  # type: ignore[arg-type]
    assert {"process.cpu.time", "process.memory.usage", "process.thread.count", "cpython.gc.collections"} <= names
    assert not [n for n in names if n.startswith(("system.network", "system.disk"))]
