"""Wires models to meter providers: their metric source to the provider's producer, their drift
and outcome trackers to one set of observable instruments per provider.

Trackers only hold state (a View decides what, a Reader when, an Exporter where: our trackers
are none of those). This module is the one place that turns their state into instruments:

=====================================  =========  ===========================================
instrument (Prometheus name)           type       attributes (besides the model attributes)
=====================================  =========  ===========================================
``ml.drift.score``                     gauge      ``ml.feature.name``, ``ml.drift.method``
(ml_drift_score_ratio)                            (psi | jensen_shannon | wasserstein | ks | chi2)
``ml.drift.p_value``                   gauge      ``ml.feature.name``, ``ml.drift.method`` (ks | chi2)
``ml.drift.status``                    gauge      ``ml.feature.name``; 0 ok, 1 warning, 2 drift,
                                                  -1 insufficient data
``ml.feature.bin.count``               counter    ``ml.feature.name``, ``ml.feature.bin`` (index)
``ml.feature.reference.proportion``    gauge      ``ml.feature.name``, ``ml.feature.bin``
``ml.feature.values``                  counter    ``ml.feature.name`` (valid, binned values)
``ml.data_quality.issues``             counter    ``ml.feature.name``, ``ml.data_quality.issue``
``ml.outcomes``                        counter    ``ml.prediction.class`` x ``ml.outcome.class``
``ml.outcomes.unmatched``              counter    ``otel_ml.reason`` (unknown | expired): labels
``ml.outcomes.pending``                gauge      predictions waiting for their label
``ml.predictions.unlabelled``          counter    ``otel_ml.reason`` (expired | evicted): predictions
                                                  that left the store without a label in time
``ml.quality.score``                   gauge      ``ml.quality.metric``
=====================================  =========  ===========================================

Why one instrument per name per provider: the SDK hands back the existing instrument when a
second one with the same name is created on a meter and drops the new callback, so per-model
registration exported only the first model. Here each callback walks every live model linked
to the provider (weakly: a model that is garbage-collected or closed disappears), so any number
of models, versions and variants export every signal. Two live models with identical attributes
(re-created before the old one was closed) are merged: counters add up, the newest gauge wins.

Prediction drift is exported under ``ml.feature.name="__prediction__"``. Bin counters are
cumulative since the model started and cover every bin (zeros included), so
``increase(ml_feature_bin_count_total[w])`` summed over replicas divided by its sum over bins is
the fleet's current distribution; ``alerts/drift.rules.yml`` turns it into fleet-wide PSI/JS.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

from otel_ml._internal import forksafe, names
from otel_ml._internal.context import ModelContext
from otel_ml._internal.producer import producer_for
from otel_ml._internal.version import __version__

if TYPE_CHECKING:
    from otel_ml._internal.drift.tracker import DriftTracker
    from otel_ml._internal.quality.tracker import OutcomeTracker

DRIFT_SCOPE = "otel_ml.drift"
QUALITY_SCOPE = "otel_ml.quality"

_SCORE_KEYS = {"psi": "psi", "jensen_shannon": "jensen_shannon", "wasserstein": "wasserstein",
               "ks_statistic": "ks", "chi2_statistic": "chi2"}
_P_KEYS = {"ks_p_value": "ks", "chi2_p_value": "chi2"}


class ModelLink:
    """One model's connection to a meter provider; the monitor owns it, the wiring holds it weakly."""

    def __init__(self, ctx: ModelContext, drift: DriftTracker | None) -> None:
        self.ctx = ctx
        self.drift = drift
        self.outcomes: OutcomeTracker | None = None
        self._provider: weakref.ref[SdkMeterProvider] | None = None
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")
        _PENDING.add(self)

    def attach(self) -> bool:
        """Link to the model's meter provider if it is an SDK one; True once linked."""
        with self._lock:
            if self._provider is not None:
                return True
            if self.ctx.closed:
                return False
            provider = self.ctx.meter_provider or otel_metrics.get_meter_provider()
            if not isinstance(provider, SdkMeterProvider):
                if self.ctx.meter_provider is not None:
                    self.ctx.selftelemetry.log_once(
                        f"meter_provider_not_sdk:{type(provider).__name__}",
                        "otel_ml: meter provider %s is not the OpenTelemetry SDK's; otel_ml metrics are "
                        "not exported", type(provider).__name__)
                return False
            producer_for(provider).add(self.ctx.source)
            _instruments_for(provider).links.add(self)
            self._provider = weakref.ref(provider)
            _PENDING.discard(self)
            return True

    def close(self) -> None:
        """Unlink from the provider (idempotent): the model's series stop being exported."""
        with self._lock:
            _PENDING.discard(self)
            ref, self._provider = self._provider, None
        provider = ref() if ref is not None else None
        if provider is not None:
            producer_for(provider).remove(self.ctx.source)
            _instruments_for(provider).links.discard(self)


class _Links:
    """Live links in the order they were added (weakly held; dead ones vanish)."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[ModelLink]] = {}
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")

    def add(self, link: ModelLink) -> None:
        key = id(link)

        def gone(_: object, key: int = key) -> None:
            with self._lock:
                self._refs.pop(key, None)

        with self._lock:
            self._refs[key] = weakref.ref(link, gone)

    def discard(self, link: ModelLink) -> None:
        with self._lock:
            ref = self._refs.get(id(link))
            if ref is not None and ref() is link:
                del self._refs[id(link)]

    def __iter__(self) -> Iterator[ModelLink]:
        with self._lock:
            refs = list(self._refs.values())
        for ref in refs:
            link = ref()
            if link is not None:
                yield link


Attrs = dict[str, Any]
Gen = Callable[[ModelLink], Iterable[tuple[Attrs, float]]]


def _merged(links: _Links, gen: Gen, add: bool) -> Iterable[Observation]:
    """Observations of every link; identical attribute sets summed (counters) or newest-wins (gauges)."""
    out: dict[tuple[tuple[str, Any], ...], tuple[Attrs, float]] = {}
    for link in links:
        try:
            for attrs, value in gen(link):
                key = tuple(sorted(attrs.items()))
                seen = out.get(key)
                out[key] = (attrs, seen[1] + value) if add and seen is not None else (attrs, value)
        except Exception as exc:
            link.ctx.selftelemetry.guard(exc, "metrics")
    return [Observation(v, a) for a, v in out.values()]


def _drift_scores(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    if link.drift is None:
        return
    base = link.ctx.attributes
    for feature, r in link.drift.evaluate_cached().items():
        for key, method in _SCORE_KEYS.items():
            if key in r.scores:
                yield {**base, names.FEATURE_NAME: feature, names.DRIFT_METHOD: method}, r.scores[key]


def _drift_p_values(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    if link.drift is None:
        return
    base = link.ctx.attributes
    for feature, r in link.drift.evaluate_cached().items():
        for key, method in _P_KEYS.items():
            if key in r.scores:
                yield {**base, names.FEATURE_NAME: feature, names.DRIFT_METHOD: method}, r.scores[key]


def _drift_status(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    if link.drift is None:
        return
    base = link.ctx.attributes
    for feature, r in link.drift.evaluate_cached().items():
        yield {**base, names.FEATURE_NAME: feature}, r.status.value


def _bins(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    if link.drift is None:
        return
    base = link.ctx.attributes
    for feature, counts in link.drift.cumulative_bins().items():
        for i, c in enumerate(counts):
            yield {**base, names.FEATURE_NAME: feature, names.FEATURE_BIN: str(i)}, c


def _reference(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    if link.drift is None:
        return
    base = link.ctx.attributes
    profile = link.drift.profile
    features = [*profile.features, *([profile.prediction] if profile.prediction is not None else [])]
    for f in features:
        for i, p in enumerate(f.proportions):
            yield {**base, names.FEATURE_NAME: f.name, names.FEATURE_BIN: str(i)}, p


def _values(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    if link.drift is None:
        return
    base = link.ctx.attributes
    for feature, q in link.drift.data_quality(cumulative=True).items():
        yield {**base, names.FEATURE_NAME: feature}, q.valid


def _issues(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    if link.drift is None:
        return
    base = link.ctx.attributes
    for feature, q in link.drift.data_quality(cumulative=True).items():
        for issue, n in q.issues.items():
            yield {**base, names.FEATURE_NAME: feature, names.DATA_QUALITY_ISSUE: issue}, n


def _outcomes(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    tracker = link.outcomes
    if tracker is None:
        return
    base = link.ctx.attributes
    classification = tracker.task == "classification"
    for (predicted, actual), n in tracker.outcome_counts().items():
        if classification:
            yield {**base, names.PREDICTION_CLASS: predicted, names.OUTCOME_CLASS: actual}, n
        else:
            yield dict(base), n


def _unmatched(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    tracker = link.outcomes
    if tracker is None:
        return
    base = link.ctx.attributes
    for reason, n in tracker.unmatched.items():
        yield {**base, names.REASON: reason}, n


def _pending(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    tracker = link.outcomes
    if tracker is None:
        return
    yield dict(link.ctx.attributes), tracker.pending


def _unlabelled(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    tracker = link.outcomes
    if tracker is None:
        return
    base = link.ctx.attributes
    for reason, n in tracker.unlabelled.items():
        yield {**base, names.REASON: reason}, n


def _quality_scores(link: ModelLink) -> Iterable[tuple[Attrs, float]]:
    tracker = link.outcomes
    if tracker is None:
        return
    base = link.ctx.attributes
    for metric, v in tracker.evaluate_cached().metrics().items():
        yield {**base, names.QUALITY_METRIC: metric}, v


class _ProviderInstruments:
    """The drift and quality instruments of one meter provider, created once."""

    def __init__(self, provider: SdkMeterProvider) -> None:
        self.links = _Links()

        def observe(gen: Gen, add: bool) -> Callable[[CallbackOptions], Iterable[Observation]]:
            return lambda _options: _merged(self.links, gen, add)

        drift = provider.get_meter(DRIFT_SCOPE, __version__)
        drift.create_observable_gauge(names.DRIFT_SCORE, [observe(_drift_scores, False)], unit="1",
                                      description="Drift score of a feature over the current window")
        drift.create_observable_gauge(names.DRIFT_P_VALUE, [observe(_drift_p_values, False)], unit="1",
                                      description="p-value of a drift test (KS, chi²) over the current window")
        drift.create_observable_gauge(names.DRIFT_STATUS, [observe(_drift_status, False)],
                                      description="Drift status: 0 ok, 1 warning, 2 drift, -1 insufficient data")
        drift.create_observable_counter(names.FEATURE_BIN_COUNT, [observe(_bins, True)], unit="{value}",
                                        description="Feature values per reference bin since start")
        drift.create_observable_gauge(names.FEATURE_REFERENCE_PROPORTION, [observe(_reference, False)], unit="1",
                                      description="Share of reference values in each bin")
        drift.create_observable_counter(names.FEATURE_VALUES, [observe(_values, True)], unit="{value}",
                                        description="Valid feature values observed since start")
        drift.create_observable_counter(names.DATA_QUALITY_ISSUES, [observe(_issues, True)], unit="{value}",
                                        description="Feature values with a data-quality issue since start")
        quality = provider.get_meter(QUALITY_SCOPE, __version__)
        quality.create_observable_counter(names.OUTCOMES, [observe(_outcomes, True)], unit="{outcome}",
                                          description="Predictions joined with their ground truth")
        quality.create_observable_counter(names.OUTCOMES_UNMATCHED, [observe(_unmatched, True)], unit="{outcome}",
                                          description="Ground truth that matched no remembered prediction")
        quality.create_observable_gauge(names.QUALITY_SCORE, [observe(_quality_scores, False)], unit="1",
                                        description="Model quality over the outcome window")
        quality.create_observable_gauge(names.OUTCOMES_PENDING, [observe(_pending, True)], unit="{prediction}",
                                        description="Predictions waiting for their ground truth")
        quality.create_observable_counter(names.PREDICTIONS_UNLABELLED, [observe(_unlabelled, True)],
                                          unit="{prediction}",
                                          description="Predictions that expired or were evicted before their label")


_INSTRUMENTS: weakref.WeakKeyDictionary[SdkMeterProvider, _ProviderInstruments] = weakref.WeakKeyDictionary()
_INSTRUMENTS_LOCK = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_INSTRUMENTS_LOCK")
_PENDING: weakref.WeakSet[ModelLink] = weakref.WeakSet()


def _instruments_for(provider: SdkMeterProvider) -> _ProviderInstruments:
    with _INSTRUMENTS_LOCK:
        found = _INSTRUMENTS.get(provider)
        if found is None:
            found = _INSTRUMENTS[provider] = _ProviderInstruments(provider)
        return found


def attach_pending() -> int:
    """Attach every model still waiting for an SDK meter provider (``configure()`` calls this)."""
    attached = 0
    for link in list(_PENDING):
        link.ctx.retry_attach(force=True)
        attached += link.ctx.attached
    return attached
