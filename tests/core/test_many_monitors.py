"""Any number of monitors per process, each exporting every signal; readers and providers in any order."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

from otel_ml import ModelMonitor, ReferenceProfile
from otel_ml._internal import sdk_seam, selftelemetry
from otel_ml.testing import TelemetryCapture

DRIFT_AND_QUALITY = ("ml.drift.score", "ml.drift.status", "ml.feature.bin.count", "ml.feature.reference.proportion",
                     "ml.feature.values", "ml.data_quality.issues", "ml.outcomes", "ml.quality.score",
                     "ml.outcomes.pending", "ml.predictions.unlabelled")
CLASSIC = ("ml.inference.duration", "ml.inference.batch.size", "ml.prediction.confidence", "ml.predictions")
IDENTITIES = [("a", "1", None), ("a", "1", "canary"), ("b", "7", None)]


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return ReferenceProfile.from_data({"x": rng.normal(size=2000), "y": rng.uniform(size=2000)},
                                      predictions=rng.uniform(size=2000))


def _drive(monitor: ModelMonitor, rows: int, seed: int, prefix: str) -> None:
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}-{i}" for i in range(rows)]
    x = rng.normal(size=rows)
    conf = rng.uniform(0.5, 1.0, size=rows)
    labels = np.where(x > 0, "up", "down")
    with monitor.inference(features={"x": x, "y": rng.uniform(size=rows)}, prediction_ids=ids) as inf:
        inf.record(predictions=labels, confidence=conf)
    monitor.record_outcomes(ids, labels)


def _identity(point_attrs: dict[str, Any]) -> tuple[str, str, str | None]:
    return point_attrs["ml.model.name"], point_attrs["ml.model.version"], point_attrs.get("ml.model.variant")


def _names_by_model(cap: TelemetryCapture) -> dict[tuple[str, str, str | None], set[str]]:
    out: dict[tuple[str, str, str | None], set[str]] = {}
    for p in cap.metrics():
        if "ml.model.name" in p.attributes:
            out.setdefault(_identity(p.attributes), set()).add(p.name)
    return out


def test_three_monitors_each_export_every_signal(cap: TelemetryCapture, profile: ReferenceProfile) -> None:
    """Two models and a canary variant on one provider each export classic, drift and quality metrics."""
    monitors = [cap.monitor(n, version=v, variant=var, reference=profile) for n, v, var in IDENTITIES]
    for i, m in enumerate(monitors):
        _drive(m, 200, seed=i, prefix=f"m{i}")
    by_model = _names_by_model(cap)
    for identity in IDENTITIES:
        missing = set(DRIFT_AND_QUALITY + CLASSIC) - by_model.get(identity, set())
        assert not missing, f"{identity} exports no {sorted(missing)}"
    for identity in IDENTITIES:
        name, version, variant = identity
        attrs = {"ml.model.name": name, "ml.model.version": version}
        points = [p for p in cap.points("ml.drift.status", **attrs, **{"ml.feature.name": "x"})
                  if p.attributes.get("ml.model.variant") == variant]
        assert len(points) == 1, points
    assert cap.dropped() == 0, cap.selftelemetry.snapshot()


def test_exported_drift_equals_the_monitor_and_scipy(cap: TelemetryCapture, profile: ReferenceProfile) -> None:
    """ModelMonitor(reference=...) exports drift scores equal to its own drift() and to scipy on the same sample."""
    from scipy.stats import ks_2samp, wasserstein_distance

    monitor = cap.monitor("shifted", version="1", reference=profile)
    rng = np.random.default_rng(5)
    x = rng.normal(loc=0.8, size=1500)
    with monitor.inference(features={"x": x, "y": rng.uniform(size=1500)}):
        pass
    results = monitor.drift()
    exported = {(p.attributes["ml.feature.name"], p.attributes["ml.drift.method"]): p.point.value
                for p in cap.points("ml.drift.score", **{"ml.model.name": "shifted"})}
    assert exported[("x", "psi")] == pytest.approx(results["x"].scores["psi"])
    assert exported[("x", "ks")] == pytest.approx(results["x"].scores["ks_statistic"])
    status = cap.points("ml.drift.status", **{"ml.model.name": "shifted", "ml.feature.name": "x"})
    assert status[0].point.value == 2  # a 0.8 sd shift over 1500 rows is drift
    # 1500 rows fit in the 2000-value sample: KS and Wasserstein see every row, as scipy does.
    ref = profile.feature("x").sample_array
    assert exported[("x", "ks")] == pytest.approx(ks_2samp(ref, x).statistic)
    assert exported[("x", "wasserstein")] == pytest.approx(
        wasserstein_distance(ref, x) / max(profile.feature("x").std, 1e-3))
    bins = {int(p.attributes["ml.feature.bin"]): p.point.value
            for p in cap.points("ml.feature.bin.count", **{"ml.model.name": "shifted", "ml.feature.name": "x"})}
    edges = np.asarray(profile.feature("x").edges)
    # Bin i of the documented layout: searchsorted(edges, x, "right") (no value equals the max here).
    expected = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    assert [bins[i] for i in range(len(edges) + 1)] == expected.tolist()


def test_closed_monitor_stops_exporting_and_a_recreated_one_starts(cap: TelemetryCapture,
                                                                   profile: ReferenceProfile) -> None:
    """close() unregisters a monitor (idempotently); the same identity re-created after a reload exports again."""
    first = cap.monitor("reload", version="1", reference=profile)
    _drive(first, 150, seed=1, prefix="r1")
    assert "ml.drift.status" in _names_by_model(cap)[("reload", "1", None)]
    first.close()
    first.close()
    assert ("reload", "1", None) not in _names_by_model(cap)
    with first.inference() as inf:  # a closed monitor still never raises
        inf.record(predictions="up", confidence=0.9)
    second = cap.monitor("reload", version="1", reference=profile)
    _drive(second, 120, seed=2, prefix="r2")
    names = _names_by_model(cap)[("reload", "1", None)]
    assert set(DRIFT_AND_QUALITY + CLASSIC) <= names
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "reload"}).count == 1
    assert cap.counter("ml.outcomes", **{"ml.model.name": "reload"}) == 120


def test_two_live_monitors_with_one_identity_merge(cap: TelemetryCapture, profile: ReferenceProfile) -> None:
    """A monitor re-created before the old one is closed: one series per attribute set, counters added up."""
    old = cap.monitor("twin", version="1", reference=profile)
    new = cap.monitor("twin", version="1", reference=profile)
    _drive(old, 100, seed=3, prefix="o")
    _drive(new, 130, seed=4, prefix="n")
    assert cap.histogram("ml.inference.duration", **{"ml.model.name": "twin"}).count == 2
    assert cap.counter("ml.outcomes", **{"ml.model.name": "twin"}) == 230
    values = cap.points("ml.feature.values", **{"ml.model.name": "twin", "ml.feature.name": "x"})
    assert len(values) == 1 and values[0].point.value == 230
    assert len(cap.points("ml.drift.status", **{"ml.model.name": "twin", "ml.feature.name": "x"})) == 1


def test_garbage_collected_monitor_disappears(cap: TelemetryCapture, profile: ReferenceProfile) -> None:
    """A monitor nobody holds any more is unlinked: its series are no longer exported."""
    monitor = cap.monitor("temp", version="1", reference=profile)
    _drive(monitor, 120, seed=6, prefix="t")
    cap._monitors.remove(monitor)
    del monitor
    gc.collect()
    assert ("temp", "1", None) not in _names_by_model(cap)


def _collect_names(reader: InMemoryMetricReader) -> set[str]:
    data: MetricsData | None = reader.get_metrics_data()
    if data is None:
        return set()
    return {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def test_reader_added_later_sees_every_signal(profile: ReferenceProfile) -> None:
    """A MetricReader added after the monitors attached gets classic, drift and quality metrics, as does the first."""
    first = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first])
    monitor = ModelMonitor("late-reader", version="1", meter_provider=provider, reference=profile)
    _drive(monitor, 150, seed=7, prefix="lr")
    second = InMemoryMetricReader()
    provider.add_metric_reader(second)
    for reader in (first, second):
        assert set(CLASSIC + DRIFT_AND_QUALITY) <= _collect_names(reader)
    monitor.close()
    provider.shutdown()


def test_provider_shutdown_leaves_monitors_working() -> None:
    """After the provider shuts down, inferences and outcomes still never raise and count no error."""
    registry = selftelemetry.SelfTelemetry()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    selftelemetry.bind(provider, registry)
    monitor = ModelMonitor("after-shutdown", version="1", meter_provider=provider)
    provider.shutdown()
    for i in range(3):
        with monitor.inference(prediction_id=i) as inf:
            inf.record(predictions="a", confidence=0.5)
        monitor.record_outcome(i, "a")
    assert monitor.quality().accuracy == 1.0
    assert registry.count(selftelemetry.INTERNAL_ERROR) == 0


def test_incompatible_sdk_is_counted_and_inference_keeps_working(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """When the seam cannot hook a reader it counts sdk_incompatible, logs once, and never raises."""
    broken = sdk_seam.Probe(sdk_seam.SDK_VERSION, producer_ok=False, temporality_ok=True, span_attributes_ok=True,
                            sampler_ok=True, problem="no measurement consumer (simulated)")
    monkeypatch.setattr(sdk_seam, "_probe_result", broken)
    registry = selftelemetry.SelfTelemetry()
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    selftelemetry.bind(provider, registry)
    for name in ("x1", "x2"):
        with ModelMonitor(name, version="1", meter_provider=provider).inference() as inf:
            inf.record(predictions="a", confidence=0.5)
    assert registry.count("sdk_incompatible") >= 1
    assert sum("lacks what otel_ml" in r.getMessage() for r in caplog.records) == 1
    assert registry.count(selftelemetry.INTERNAL_ERROR) == 0
    provider.shutdown()


def test_captures_do_not_count_into_each_other() -> None:
    """Self-telemetry is per capture: a drop in one capture is not seen by another or by the default registry."""
    from otel_ml.testing import capture_telemetry

    before = selftelemetry.DEFAULT.count()
    with capture_telemetry() as one, capture_telemetry() as two:
        with one.monitor("m", version="1").inference() as inf:
            inf.record(confidence=7.0)
        assert one.dropped("invalid_confidence") == 1
        assert two.dropped() == 0
        assert one.counter("otel_ml.dropped", **{"otel_ml.reason": "invalid_confidence"}) == 1
        assert two.counter("otel_ml.dropped", **{"otel_ml.reason": "invalid_confidence"}) == 0
    assert selftelemetry.DEFAULT.count() == before


def _run(code: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_ML_EXPORTER"] = "none"
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_monitors_created_before_configure_export_through_it() -> None:
    """Monitors made at import time, before configure(), are attached to the provider configure() installs."""
    got = _run("""
        import json
        import numpy as np
        import otel_ml
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        rng = np.random.default_rng(0)
        profile = otel_ml.ReferenceProfile.from_data({"x": rng.normal(size=500)})
        early = [otel_ml.ModelMonitor("early", version=v, reference=profile) for v in ("1", "2")]
        reader = InMemoryMetricReader()
        otel_ml.configure(service_name="svc", metric_readers=[reader])
        for m in early:
            with m.inference(features={"x": rng.normal(size=150)}) as inf:
                inf.record(predictions="a", confidence=0.9)
        data = reader.get_metrics_data()
        seen = sorted({(m.name, p.attributes.get("ml.model.version")) for rm in data.resource_metrics
                       for sm in rm.scope_metrics for m in sm.metrics for p in m.data.data_points
                       if m.name in ("ml.inference.duration", "ml.drift.status")})
        print(json.dumps({"seen": seen}))
    """)
    assert got["seen"] == [["ml.drift.status", "1"], ["ml.drift.status", "2"],
                           ["ml.inference.duration", "1"], ["ml.inference.duration", "2"]]


def test_global_provider_installed_later_is_found() -> None:
    """A monitor on the global (proxy) provider starts exporting once an SDK provider is installed globally."""
    got = _run("""
        import json, time
        import otel_ml
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        m = otel_ml.ModelMonitor("global-late", version="1")
        with m.inference() as inf:
            inf.record(predictions="a")
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        time.sleep(1.1)  # the monitor looks for a provider at most once a second
        with m.inference() as inf:
            inf.record(predictions="a")
        data = reader.get_metrics_data()
        counts = [p.count for rm in data.resource_metrics for sm in rm.scope_metrics for x in sm.metrics
                  if x.name == "ml.inference.duration" for p in x.data.data_points]
        print(json.dumps({"counts": counts}))
    """)
    # Both calls are counted: the series lived in the monitor before any provider existed.
    assert got["counts"] == [2]
