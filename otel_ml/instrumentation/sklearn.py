"""Zero-code instrumentation of scikit-learn models.

Usage, with no change to the service's code::

    pip install 'otel-ml[sklearn,auto]'
    opentelemetry-instrument uvicorn app:app      # entry point "otel_ml_sklearn"

or in code: ``from otel_ml.instrumentation.sklearn import SklearnInstrumentor;
SklearnInstrumentor().instrument()``. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_sklearn``
turns it off; ``uninstrument()`` restores every original method.

Every **outermost** call of ``predict``, ``predict_proba``, ``predict_log_proba``,
``decision_function`` or ``score_samples`` on a scikit-learn estimator - classifiers, regressors,
``Pipeline``, searches and other meta-estimators, your own ``BaseEstimator`` subclasses - is one
inference of that model (``otel_ml.ModelMonitor``): latency with exemplars, batch size (rows: a
dict fed to a ``DictVectorizer`` pipeline is one row, a list of dicts one per dict), a span under
the current (HTTP) span, ``ml.model.method``; with ``predict_proba`` the predicted class
(``classes_``, mapped by ``OTEL_ML_CLASS_NAMES``) and its probability as confidence, and the
positive class's probability as score for binary models; class labels from a classifier's
``predict``; a regressor's outputs as ``ml.prediction.value``. The steps a Pipeline or a search
calls inside are not counted again. ``transform`` counts as served on ``Pipeline``,
``ColumnTransformer`` and ``FeatureUnion`` and on the classes listed in
``OTEL_ML_SKLEARN_TRANSFORM`` (a scaler in front of a model is not a model).

Model identity: see :mod:`otel_ml.auto` (``OTEL_ML_MODEL_NAME`` etc., a mapping file, or the file
the model was loaded from with ``joblib.load`` / ``pickle.load``, or the final estimator's class,
with a content hash as version). Prediction ids for delayed labels:
``with otel_ml.auto.prediction_ids(ids): model.predict_proba(X)``.

The model's call behaves exactly as without otel_ml: same return value, same exception object;
whatever otel_ml cannot record is counted in ``otel_ml.dropped``.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import types
from collections.abc import Callable, Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_ml._internal import env, selftelemetry
from otel_ml._internal.auto import calls, origins
from otel_ml._internal.auto.identity import pickle_hash
from otel_ml._internal.auto.registry import MODELS, export_self_telemetry, mapped

_instruments = ("scikit-learn >= 1.3",)

SERVED = ("predict", "predict_proba", "predict_log_proba", "decision_function", "score_samples", "transform")
# Training and evaluation call the served methods internally (cross-validation, early stopping,
# score): inside these nothing is an inference.
QUIET = ("fit", "fit_transform", "fit_predict", "partial_fit", "score")
TRANSFORM_SERVED = ("Pipeline", "ColumnTransformer", "FeatureUnion")
FRAMEWORK = "sklearn"
_TRANSFORM: set[str] = set(TRANSFORM_SERVED)


_INSIDE = calls.INSIDE.get
# numpy.ndarray once instrumented (this module is imported by opentelemetry-instrument even where
# numpy is not installed: it must not import it at load).
_ndarray: Any = type(None)


def _served_function(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    """The wrapper that replaces a served method's function. A plain function (not a descriptor
    object) so looking the method up costs what it did before: scikit-learn looks methods up many
    times per call (``available_if`` checks, tags), only the outermost call pays for more."""

    @functools.wraps(fn)
    def served(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE() or (method == "transform" and type(self).__name__ not in _TRANSFORM):
            # A step inside an instrumented call, or a preprocessing step called on its own.
            return fn(self, *args, **kwargs)
        return _serve(fn, self, method, args, kwargs)

    served._otel_ml_original = fn  # type: ignore[attr-defined]
    return served


def _quiet_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fit, score, ...: the served methods they call are not inferences."""

    @functools.wraps(fn)
    def quiet(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = calls.INSIDE.set(True)
        try:
            return fn(self, *args, **kwargs)
        finally:
            calls.INSIDE.reset(token)

    quiet._otel_ml_original = fn  # type: ignore[attr-defined]
    return quiet


def _wrapped(original: Any, method: str, quiet: bool) -> Any:
    """The replacement for one class attribute, or None where it is not one we can wrap.

    A function is wrapped; scikit-learn's ``available_if`` descriptor is copied with its function
    wrapped, so ``hasattr(model, "predict_proba")`` stays what it was."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        return _quiet_function(fn) if quiet else _served_function(fn, method)

    if isinstance(original, types.FunctionType):
        return wrap(original)
    fn = getattr(original, "fn", None)
    if isinstance(fn, types.FunctionType) and hasattr(original, "check") and hasattr(type(original), "__get__"):
        replacement = copy.copy(original)
        replacement.fn = wrap(fn)
        return replacement
    return None


def _is_ours(attribute: Any) -> bool:
    return hasattr(attribute, "_otel_ml_original") or hasattr(getattr(attribute, "fn", None), "_otel_ml_original")


class _Model:
    """What a call needs of a model, resolved at its first call and kept (weakly) with it."""

    __slots__ = ("__weakref__", "classes", "labels", "mapping", "monitor", "quick", "task")

    def __init__(self, monitor: Any, identity: Any, obj: Any) -> None:
        self.monitor = monitor
        self.task = monitor.task
        self.quick = monitor.quick_lane()
        self.classes: Any = None
        self.labels: list[str | None] | None = None
        self.mapping: Any = {}
        self.refresh(obj, identity.classes)

    def refresh(self, obj: Any, mapping: Any) -> None:
        self.mapping = mapping if mapping is not None else {}
        classes = getattr(obj, "classes_", None) if self.task == "classification" else None
        self.classes = classes
        self.labels = [mapped(mapping, c) for c in classes] if classes is not None else None


def _serve(fn: Callable[..., Any], obj: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One outermost call: one inference of the model ``obj``."""
    token = calls.INSIDE.set(True)
    try:
        model = _model(obj)
        if model is None:
            return fn(obj, *args, **kwargs)
        quick = model.quick
        ids = calls.IDS.get()
        if ids is None and quick is not None and quick.open():
            # No span to make (unsampled parent): a one-row result is one append to the model's
            # QuickLane; a batch, an error or an odd output is recorded afterwards through the
            # full path, timed from the same start.
            return calls.quick_call(quick, fn, obj, args, kwargs, (model, method, args, kwargs),
                                    _quick_record, _record_late)
        monitor = model.monitor
        x = args[0] if args else kwargs.get("X")
        if ids is None and monitor.drift_tracker is None:
            inference = monitor.inference(batch_size=_rows(x), method=method)
        else:
            inference = monitor.inference(
                batch_size=_rows(x), method=method,
                features=x if monitor.drift_tracker is not None else None,
                prediction_ids=ids if ids is not None and len(ids) != 1 else None,
                prediction_id=ids[0] if ids is not None and len(ids) == 1 else None)
        with inference as inf:
            result = fn(obj, *args, **kwargs)
            _record(inf, method, result, model)
        return result
    finally:
        calls.INSIDE.reset(token)


def _quick_record(quick: Any, call: tuple[_Model, str, Any, Any], result: Any, duration: int) -> bool:
    """Hand a one-row result to ``quick``; False where it is not one it takes (never raises): the
    caller then records the call through the full path."""
    model, method = call[0], call[1]
    try:
        if type(result) is _ndarray and 0 < result.ndim < 3 and result.shape[0] == 1:
            task = model.task
            if method == "predict_proba" and task == "classification" and result.ndim == 2 \
                    and result.dtype.kind == "f":
                row = result.tolist()[0]
                labels = model.labels
                # A binary model's positive-class score is checked as the full path checks it.
                if row and (labels is None or len(labels) == len(row)) and (
                        len(row) != 2 or 0.0 <= row[1] <= 1.0):
                    confidence = max(row)
                    top = row.index(confidence)
                    quick.add(method, duration, labels[top] if labels is not None else top, confidence)
                    return True
            elif method == "predict" and result.ndim == 1:
                raw = result.tolist()[0]
                if task == "classification":
                    quick.add(method, duration, mapped(model.mapping, raw), None)
                    return True
                if task == "regression" and type(raw) is float:
                    quick.add(method, duration, None, None, raw)
                    return True
    except Exception:
        return False  # not added: the full path records the call and counts what it cannot read
    return False


def _record_late(call: tuple[_Model, str, tuple[Any, ...], dict[str, Any]], t0: int, result: Any,
                 exc: BaseException | None) -> None:
    model, method, args, kwargs = call
    calls.record_late(model.monitor, _rows(args[0] if args else kwargs.get("X")), method, t0, result, exc,
                      lambda inf, out: _record(inf, method, out, model))


# What each model's calls need, kept as long as the model lives (calls.ObjectCache).
_MODELS: calls.ObjectCache[_Model] = calls.ObjectCache()


def _model(obj: Any) -> _Model | None:
    found = _MODELS.get(obj)
    if found is not None:
        if found.classes is not None and getattr(obj, "classes_", None) is not found.classes:
            registered = MODELS.lookup(obj)
            if registered is not None:
                found.refresh(obj, registered[1].classes)  # refitted in place: new classes
        return found  # the steady state: one dictionary lookup
    entry = _monitor(obj)
    if entry is None:
        return None
    model = _Model(entry[0], entry[1], obj)
    _MODELS.put(obj, model)  # not kept when obj cannot be weakly referenced: resolved again next call
    return model


def _monitor(obj: Any) -> Any:
    found = MODELS.lookup(obj)
    if found is not None:
        return found
    try:
        from sklearn.base import is_classifier, is_regressor

        task = "classification" if is_classifier(obj) else "regression" if is_regressor(obj) else "other"
        classes = getattr(obj, "classes_", None) if task == "classification" else None
        return MODELS.monitor_for(obj, framework=FRAMEWORK, task=task, default_name=_default_name(obj),
                                  raw_classes=list(classes) if classes is not None else None,
                                  content_hash=lambda: pickle_hash(obj))
    except Exception as exc:
        selftelemetry.dropped("auto_identity_error", "metrics", detail=exc)
        return None


def _default_name(obj: Any) -> str:
    """A Pipeline or search is known by the estimator it ends in."""
    inner = obj
    for _ in range(8):
        steps = getattr(inner, "steps", None)
        if steps:
            inner = steps[-1][1]
            continue
        nested = getattr(inner, "best_estimator_", None) or getattr(inner, "estimator", None)
        if nested is not None and nested is not inner and hasattr(nested, "get_params"):
            inner = nested
            continue
        break
    return type(inner).__name__


def _rows(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    if shape is not None:
        try:
            return int(shape[0])
        except (TypeError, IndexError, ValueError):
            return None
    if isinstance(x, dict):
        return 1  # one sample for DictVectorizer
    if isinstance(x, (list, tuple)):
        return len(x)
    return None


def _record(inf: Any, method: str, result: Any, model: _Model) -> None:
    try:
        task = model.task
        if method in ("predict_proba", "predict_log_proba") and task == "classification":
            import numpy as np

            proba = result if type(result) is np.ndarray and result.dtype == np.float64 else np.asarray(
                result, dtype=np.float64)
            if method == "predict_log_proba":
                proba = np.exp(proba)
            if proba.ndim != 2 or proba.shape[0] == 0:
                return
            labels = model.labels
            if labels is not None and len(labels) != proba.shape[1]:
                labels = None
            if proba.shape[0] == 1:
                # One row - the typical online request: plain floats are cheaper than numpy here.
                row = proba[0].tolist()
                top = max(range(len(row)), key=row.__getitem__)
                inf.record(predictions=labels[top] if labels is not None else top, confidence=row[top],
                           score=row[1] if len(row) == 2 else None)
                return
            tops = proba.argmax(axis=1)
            predictions = [labels[i] for i in tops.tolist()] if labels is not None else tops
            score = proba[:, 1] if proba.shape[1] == 2 else None
            inf.record(predictions=predictions, confidence=proba[np.arange(len(tops)), tops], score=score)
        elif method == "predict" and task == "classification":
            import numpy as np

            table = model.mapping
            raw = np.asarray(result).ravel().tolist()
            if len(raw) == 1:
                inf.record(predictions=mapped(table, raw[0]))
            else:
                inf.record(predictions=[mapped(table, v) for v in raw])
        elif method == "predict" and task == "regression":
            inf.record(predictions=result)
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "metrics", detail=exc)


class SklearnInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every scikit-learn estimator class, now and defined later."""

    _lock = threading.Lock()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        global _ndarray
        from numpy import ndarray
        from sklearn.base import BaseEstimator

        _ndarray = ndarray

        MODELS.tracer_provider = kwargs.get("tracer_provider")
        MODELS.meter_provider = kwargs.get("meter_provider")
        export_self_telemetry(MODELS.meter_provider)
        with self._lock:
            self._patched: list[tuple[type, str, Any]] = []
            extra = {c.strip() for c in os.environ.get(env.SKLEARN_TRANSFORM, "").split(",") if c.strip()}
            _TRANSFORM.clear()
            _TRANSFORM.update(TRANSFORM_SERVED, extra)
            stack = [BaseEstimator]
            seen: set[type] = set()
            while stack:
                cls = stack.pop()
                if cls in seen:
                    continue
                seen.add(cls)
                self._patch(cls)
                stack.extend(cls.__subclasses__())
            # Classes defined later - scikit-learn modules imported lazily, the service's own
            # estimators - are patched as they are created.
            original = BaseEstimator.__dict__.get("__init_subclass__")
            self._init_subclass = original
            instrumentor = self

            def init_subclass(cls: Any, /, **kw: Any) -> None:
                parent = super(BaseEstimator, cls).__init_subclass__ if original is None else (
                    original.__get__(None, cls))
                parent(**kw)
                instrumentor._patch(cls)

            BaseEstimator.__init_subclass__ = classmethod(init_subclass)
        origins.install_pickle_and_joblib()

    def _patch(self, cls: type) -> None:
        """Patch each served and quiet method where ``cls`` gets it from - often a mixin outside the
        BaseEstimator tree (``predict`` of a linear classifier is ``LinearClassifierMixin``'s)."""
        for name in SERVED + QUIET:
            if name == "transform" and cls.__name__ not in _TRANSFORM:
                # A scaler's transform is a step, never served: left unwrapped it costs nothing
                # inside a Pipeline call (a served class inheriting it patches it when patched).
                continue
            owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
            if owner is None or owner is object:
                continue
            original = owner.__dict__[name]
            if _is_ours(original):
                continue
            replacement = _wrapped(original, name, quiet=name in QUIET)
            if replacement is None:
                continue  # a property or other descriptor: left as it is
            try:
                setattr(owner, name, replacement)
            except (TypeError, AttributeError):
                continue
            self._patched.append((owner, name, original))

    def _uninstrument(self, **kwargs: Any) -> None:
        from sklearn.base import BaseEstimator

        with self._lock:
            for cls, name, original in reversed(self._patched):
                setattr(cls, name, original)
            self._patched = []
            if self._init_subclass is None:
                del BaseEstimator.__init_subclass__
            else:
                BaseEstimator.__init_subclass__ = self._init_subclass
        origins.uninstall()
        _MODELS.clear()  # their monitors are closed by the reset below
        MODELS.reset(FRAMEWORK)
