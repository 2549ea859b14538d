"""Wires a monitor's drift and outcome trackers to it and to its meter provider.

The trackers live in ``drift/`` and ``quality/`` and export through observable instruments of
the public metrics API (evaluated at collection time, off the hot path). A tracker may be
created before or after the monitor finds its SDK meter provider, so registration happens
when both exist, exactly once per tracker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

from otel_ml._internal.labels import label_of
from otel_ml._internal.version import __version__

if TYPE_CHECKING:
    from otel_ml._internal.monitor import ModelMonitor

_METER_SCOPE = "otel_ml.quality"


def make_drift_tracker(monitor: ModelMonitor, reference: Any, window_s: float) -> Any:
    from otel_ml._internal.drift import DriftTracker, ReferenceProfile

    if not isinstance(reference, ReferenceProfile):
        raise TypeError(f"reference must be a ReferenceProfile, got {type(reference).__name__}")
    tracker = DriftTracker(reference, window_s=window_s)
    _register(monitor, tracker)
    return tracker


def make_outcome_tracker(monitor: ModelMonitor, ttl_s: float, max_pending: int) -> Any:
    from otel_ml._internal.quality import OutcomeTracker

    task = "regression" if monitor.task == "regression" else "classification"
    # Class labels travel as strings (see labels.py), so the positive one must too.
    positive = 1 if monitor.positive_class is None else monitor.positive_class
    tracker = OutcomeTracker(task=task, max_pending=max_pending, ttl_s=ttl_s,
                             positive_label=label_of(positive) or positive)
    _register(monitor, tracker)
    return tracker


def on_meter_provider(monitor: ModelMonitor, provider: SdkMeterProvider) -> None:
    monitor._sdk_meter_provider = provider
    for tracker in (monitor._drift, monitor._outcomes):
        if tracker is not None:
            _register(monitor, tracker)


def _register(monitor: ModelMonitor, tracker: Any) -> None:
    provider = monitor._sdk_meter_provider
    if provider is None or getattr(tracker, "_otel_ml_registered", False):
        return
    meter = provider.get_meter(_METER_SCOPE, __version__)
    tracker.register_metrics(meter, dict(monitor.attributes))
    tracker._otel_ml_registered = True
