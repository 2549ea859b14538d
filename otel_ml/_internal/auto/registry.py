"""One ModelMonitor per model, created at the model's first instrumented call.

Objects are looked up weakly (a model garbage-collected takes its entry with it); identities map
to one monitor, so a model re-loaded from the same file, or two workers' copies, share one. The
number of monitors is capped: past :data:`MAX_MODELS` identities, a model's calls are recorded
under one overflow monitor per task, named and versioned ``other`` (the same overflow value as every
other capped attribute), and each model object that lands there is counted (``auto_model_cap``; once
per object, or per call for objects that cannot be weakly referenced and so are resolved each call).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from otel_ml._internal import forksafe, names, selftelemetry
from otel_ml._internal.auto.identity import Identity, Resolver
from otel_ml._internal.auto.origins import path_of
from otel_ml._internal.labels import label_of
from otel_ml._internal.monitor import TASKS, ModelMonitor, Task

MAX_MODELS = 64


class Models:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")
        self._by_object: weakref.WeakKeyDictionary[Any, tuple[ModelMonitor, Identity] | None] = (
            weakref.WeakKeyDictionary())
        self._by_identity: dict[tuple[str, str, str | None], ModelMonitor] = {}
        self._framework: dict[tuple[str, str, str | None], str] = {}
        # task -> (monitor, framework) of the models past MAX_MODELS
        self._overflow: dict[str, tuple[ModelMonitor, str]] = {}
        self._resolver: Resolver | None = None
        # Providers given to an instrumentor's instrument(); None: the global ones.
        self.tracer_provider: Any = None
        self.meter_provider: Any = None

    def reset(self, framework: str | None = None) -> None:
        """Forget the models of ``framework`` (an instrumentor's uninstrument), or all (tests).
        Their monitors are closed; the other frameworks' instrumentors keep theirs."""
        with self._lock:
            keys = [k for k, f in self._framework.items() if framework is None or f == framework]
            for key in keys:
                self._by_identity.pop(key).close()
                del self._framework[key]
            for task, (overflow, owner) in list(self._overflow.items()):
                if framework is None or owner == framework:
                    overflow.close()
                    del self._overflow[task]
            if framework is None or not self._by_identity:
                self._by_object = weakref.WeakKeyDictionary()
                self._resolver = None
                # The providers stay while other instrumentors are on (their next model needs them).
                if framework is None:
                    self.tracer_provider = self.meter_provider = None
            else:
                for obj, entry in list(self._by_object.items()):
                    if entry is not None and entry[0].closed:
                        del self._by_object[obj]

    def lookup(self, obj: object) -> tuple[ModelMonitor, Identity] | None:
        try:
            return self._by_object.get(obj)
        except TypeError:
            return None

    def monitor_for(self, obj: object, *, framework: str, task: str, default_name: str,
                    raw_classes: Sequence[Any] | None = None,
                    content_hash: Callable[[], str | None] = lambda: None) -> tuple[ModelMonitor, Identity] | None:
        """The monitor of ``obj`` (created on first use), or None when it cannot be made (counted)."""
        found = self.lookup(obj)
        if found is not None:
            return found
        with self._lock:
            found = self.lookup(obj)
            if found is not None:
                return found
            if self._resolver is None:
                self._resolver = Resolver()
            identity = self._resolver.resolve(obj, framework=framework, default_name=default_name,
                                              path=path_of(obj), content_hash=content_hash)
            monitor = self._by_identity.get(identity.key)
            if monitor is None and len(self._by_identity) >= MAX_MODELS:
                selftelemetry.dropped("auto_model_cap", "metrics", detail=identity.name)
                identity = Identity(names.OVERFLOW_VALUE, names.OVERFLOW_VALUE)
                found_overflow = self._overflow.get(task)
                if found_overflow is None:  # one per task at most: bounded
                    found_overflow = self._overflow[task] = (
                        _make(identity, task, None, self.tracer_provider, self.meter_provider), framework)
                monitor = found_overflow[0]
            if monitor is None:
                monitor = self._by_identity[identity.key] = _make(identity, task, raw_classes,
                                                                  self.tracer_provider, self.meter_provider)
                self._framework[identity.key] = framework
            entry = (monitor, identity)
            try:
                self._by_object[obj] = entry
            except TypeError:
                pass  # not weakly referenceable: resolved again next call, still one monitor per identity
            return entry

    def monitors(self) -> list[ModelMonitor]:
        with self._lock:
            return [*self._by_identity.values(), *(monitor for monitor, _ in self._overflow.values())]


def _make(identity: Identity, task: str, raw_classes: Sequence[Any] | None, tracer_provider: Any,
          meter_provider: Any) -> ModelMonitor:
    classes = None
    positive: str | None = identity.positive_class
    if raw_classes is not None and task == "classification":
        labels = [mapped(identity.classes, c) for c in raw_classes]
        classes = [label for label in labels if label is not None]
        if positive is None and len(classes) == 2:
            positive = classes[1]  # scikit-learn's convention: the positive class sorts last
    reference = None
    if identity.reference:
        try:
            from otel_ml._internal.drift import ReferenceProfile

            reference = ReferenceProfile.load(identity.reference)
        except Exception as exc:  # a bad profile must not stop the model from serving
            selftelemetry.DEFAULT.log_once(f"auto_reference:{identity.reference}",
                                           "otel_ml: cannot load reference profile %s: %s", identity.reference, exc)
    kind: Task = cast(Task, task) if task in TASKS else "other"
    return ModelMonitor(identity.name, version=identity.version, variant=identity.variant, task=kind,
                        classes=classes or None, positive_class=positive, reference=reference,
                        tracer_provider=tracer_provider, meter_provider=meter_provider)


def mapped(mapping: Mapping[str, str], raw: Any) -> str | None:
    """The label of a raw class through the identity's class mapping (label_of form otherwise)."""
    label = label_of(raw)
    if label is None:
        return None
    return mapping.get(label, label)


MODELS = Models()


def export_self_telemetry(meter_provider: Any) -> None:
    """Export ``otel_ml.dropped`` on ``meter_provider`` (the global one when None) from the start,
    so what an instrumentor cannot record is counted even before its first model call."""
    try:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

        from otel_ml._internal.producer import producer_for

        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        if isinstance(provider, SdkMeterProvider):
            producer_for(provider)
    except Exception as exc:  # never fail instrument() over it
        selftelemetry.guard(exc, "metrics")
