"""Outcome and quality instruments (public OpenTelemetry metrics API, observable only).

* ``ml.outcomes`` (counter, ``{outcome}``; ``ml_outcomes_total``): joined outcomes since start,
  by ``ml.prediction.class`` x ``ml.outcome.class`` for classification (no class attributes for
  regression), so PromQL can compute fleet accuracy:
  ``sum(rate(ml_outcomes_total{...}[1h]) and on() ...)`` where predicted == actual.
* ``ml.outcomes.unmatched`` (counter, ``otel_ml.reason`` = unknown | expired).
* ``ml.quality.score`` (gauge, unit 1, ``ml.quality.metric`` = accuracy | precision | recall |
  f1 | *_macro | *_weighted | roc_auc | mae | rmse | mape), one evaluation per collection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from otel_ml._internal import names

if TYPE_CHECKING:
    from otel_ml._internal.quality.tracker import OutcomeTracker


def register_quality_metrics(tracker: OutcomeTracker, meter: Any, attributes: dict[str, str]) -> None:
    from opentelemetry.metrics import CallbackOptions, Observation

    base = dict(attributes)
    classification = tracker.task == "classification"

    def outcomes(_: CallbackOptions) -> Iterable[Observation]:
        for (p, a), n in tracker.outcome_counts().items():
            attrs = {**base, names.PREDICTION_CLASS: p, names.OUTCOME_CLASS: a} if classification else base
            yield Observation(n, attrs)

    def unmatched(_: CallbackOptions) -> Iterable[Observation]:
        for reason, n in tracker.unmatched.items():
            yield Observation(n, {**base, names.REASON: reason})

    def scores(_: CallbackOptions) -> Iterable[Observation]:
        for metric, v in tracker.evaluate_cached().metrics().items():
            yield Observation(v, {**base, names.QUALITY_METRIC: metric})

    meter.create_observable_counter(names.OUTCOMES, [outcomes], unit="{outcome}",
                                    description="Predictions joined with their ground truth")
    meter.create_observable_counter(names.OUTCOMES_UNMATCHED, [unmatched], unit="{outcome}",
                                    description="Ground truth that matched no remembered prediction")
    meter.create_observable_gauge(names.QUALITY_SCORE, [scores], unit="1",
                                  description="Model quality over the outcome window")
