"""Drift and data-quality instruments, through the public OpenTelemetry metrics API only.

All instruments are observable: nothing is recorded on the inference hot path, callbacks run
at collection time and share one evaluation per collection (:meth:`DriftTracker.evaluate_cached`).

=====================================  =========  ==========================================
instrument (Prometheus name)           type       attributes (besides the model attributes)
=====================================  =========  ==========================================
``ml.drift.score``                     gauge      ``ml.feature.name``, ``ml.drift.method``
(ml_drift_score_ratio)                            (psi | jensen_shannon | wasserstein | ks | chi2)
``ml.drift.p_value``                   gauge      ``ml.feature.name``, ``ml.drift.method`` (ks | chi2)
(ml_drift_p_value_ratio)
``ml.drift.status``                    gauge      ``ml.feature.name``; 0 ok, 1 warning, 2 drift,
(ml_drift_status)                                 -1 insufficient data
``ml.feature.bin.count``               counter    ``ml.feature.name``, ``ml.feature.bin`` (index)
(ml_feature_bin_count_total)
``ml.feature.reference.proportion``    gauge      ``ml.feature.name``, ``ml.feature.bin``
(ml_feature_reference_proportion_ratio)
``ml.feature.values``                  counter    ``ml.feature.name`` (valid, binned values)
(ml_feature_values_total)
``ml.data_quality.issues``             counter    ``ml.feature.name``, ``ml.data_quality.issue``
(ml_data_quality_issues_total)
=====================================  =========  ==========================================

Prediction drift is exported under ``ml.feature.name="__prediction__"``. Bin counters are
cumulative since process start and cover every bin (zeros included), so
``increase(ml_feature_bin_count_total[w])`` summed over replicas divided by its sum over bins is
the fleet's current distribution; ``alerts/drift.rules.yml`` turns it into fleet-wide PSI/JS.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from otel_ml._internal import names
from otel_ml._internal.drift.result import ISSUES

if TYPE_CHECKING:
    from otel_ml._internal.drift.tracker import DriftTracker

_SCORE_KEYS = {
    "psi": "psi",
    "jensen_shannon": "jensen_shannon",
    "wasserstein": "wasserstein",
    "ks_statistic": "ks",
    "chi2_statistic": "chi2",
}
_P_KEYS = {"ks_p_value": "ks", "chi2_p_value": "chi2"}


def register_drift_metrics(tracker: DriftTracker, meter: Any, attributes: dict[str, str]) -> None:
    from opentelemetry.metrics import CallbackOptions, Observation

    base = dict(attributes)

    def scores(_: CallbackOptions) -> Iterable[Observation]:
        for name, r in tracker.evaluate_cached().items():
            for key, method in _SCORE_KEYS.items():
                if key in r.scores:
                    yield Observation(r.scores[key], {**base, names.FEATURE_NAME: name,
                                                      names.DRIFT_METHOD: method})

    def p_values(_: CallbackOptions) -> Iterable[Observation]:
        for name, r in tracker.evaluate_cached().items():
            for key, method in _P_KEYS.items():
                if key in r.scores:
                    yield Observation(r.scores[key], {**base, names.FEATURE_NAME: name,
                                                      names.DRIFT_METHOD: method})

    def status(_: CallbackOptions) -> Iterable[Observation]:
        for name, r in tracker.evaluate_cached().items():
            yield Observation(r.status.value, {**base, names.FEATURE_NAME: name})

    def bins(_: CallbackOptions) -> Iterable[Observation]:
        for name, counts in tracker.cumulative_bins().items():
            for i, c in enumerate(counts):
                yield Observation(c, {**base, names.FEATURE_NAME: name, names.FEATURE_BIN: str(i)})

    profiles = list(tracker.profile.features)
    if tracker.profile.prediction is not None:
        profiles.append(tracker.profile.prediction)

    def reference(_: CallbackOptions) -> Iterable[Observation]:
        for f in profiles:
            for i, p in enumerate(f.proportions):
                yield Observation(p, {**base, names.FEATURE_NAME: f.name, names.FEATURE_BIN: str(i)})

    def values(_: CallbackOptions) -> Iterable[Observation]:
        for name, q in tracker.data_quality(cumulative=True).items():
            yield Observation(q.valid, {**base, names.FEATURE_NAME: name})

    def issues(_: CallbackOptions) -> Iterable[Observation]:
        for name, q in tracker.data_quality(cumulative=True).items():
            for issue in ISSUES:
                yield Observation(q.issues.get(issue, 0), {**base, names.FEATURE_NAME: name,
                                                           names.DATA_QUALITY_ISSUE: issue})

    meter.create_observable_gauge(names.DRIFT_SCORE, [scores], unit="1",
                                  description="Drift score of a feature over the current window")
    meter.create_observable_gauge(names.DRIFT_P_VALUE, [p_values], unit="1",
                                  description="p-value of a drift test (KS, chi²) over the current window")
    meter.create_observable_gauge(names.DRIFT_STATUS, [status],
                                  description="Drift status: 0 ok, 1 warning, 2 drift, -1 insufficient data")
    meter.create_observable_counter(names.FEATURE_BIN_COUNT, [bins], unit="{value}",
                                    description="Feature values per reference bin since start")
    meter.create_observable_gauge(names.FEATURE_REFERENCE_PROPORTION, [reference], unit="1",
                                  description="Share of reference values in each bin")
    meter.create_observable_counter(names.FEATURE_VALUES, [values], unit="{value}",
                                    description="Valid feature values observed since start")
    meter.create_observable_counter(names.DATA_QUALITY_ISSUES, [issues], unit="{value}",
                                    description="Feature values with a data-quality issue since start")
