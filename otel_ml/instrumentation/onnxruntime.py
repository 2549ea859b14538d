"""Zero-code instrumentation of ONNX Runtime sessions.

Usage, with no change to the service's code::

    pip install 'otel-ml[onnxruntime,auto]'
    opentelemetry-instrument uvicorn app:app      # entry point "otel_ml_onnxruntime"

or in code: ``from otel_ml.instrumentation.onnxruntime import OnnxRuntimeInstrumentor;
OnnxRuntimeInstrumentor().instrument()``. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_onnxruntime``
turns it off; ``uninstrument()`` restores ``InferenceSession.run`` and ``InferenceSession.__init__``.

Every **outermost** ``InferenceSession.run`` is one inference of that session's model
(``otel_ml.ModelMonitor``, ``ml.model.method`` = ``run``): latency with exemplars, batch size (the
first dimension of the first input fed), a span under the current (HTTP) span. What the model's
outputs say is read from their declared types:

* a classifier - a probability output (``seq(map(...))`` as skl2onnx's ZipMap makes, or a float
  ``[N, C]`` tensor named ``*prob*`` / ``*softmax*``) and/or a label output (an int or string
  tensor, ``[N]`` or ``[N, 1]``; with no probability output, one named ``*label*``): the predicted
  class from the label output, else the ZipMap's key, else the top column - named by the class list
  in the model's metadata (``classes``: a JSON list or ``a,b,c``; a label value that is not one
  of them is read as a column index) and mapped by ``OTEL_ML_CLASS_NAMES``; the top probability as
  confidence; the positive class's (second column's) probability as score for binary models. The
  class list is known to the monitor only from that metadata (a ZipMap's keys are seen per call);
* a regressor - a single float output ``[N]`` or ``[N, 1]``: its values as ``ml.prediction.value``;
* anything else: latency, batch size and errors only.

Only the outputs the call asked for (``output_names``) are read. A session run inside an
instrumented call - a scikit-learn estimator wrapping an ONNX session - is not counted again.

Model identity: see :mod:`otel_ml.auto` (``OTEL_ML_MODEL_NAME`` etc., a mapping file); otherwise a
session built from a file is named after the file's stem and versioned by the file's content hash;
one built from bytes is named after the model's graph name (else its producer) and versioned by a
hash of the bytes. Never the onnxruntime version.

The session's call behaves exactly as without otel_ml: same return value, same exception object;
whatever otel_ml cannot record is counted in ``otel_ml.dropped``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import threading
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_ml._internal import selftelemetry
from otel_ml._internal.auto import calls, origins
from otel_ml._internal.auto.identity import _HASH_CHARS
from otel_ml._internal.auto.registry import MODELS, export_self_telemetry, mapped
from otel_ml._internal.labels import label_of

_instruments = ("onnxruntime >= 1.17",)

FRAMEWORK = "onnxruntime"
METHOD = "run"
_FLOAT_TENSORS = frozenset({"tensor(float)", "tensor(double)", "tensor(float16)", "tensor(bfloat16)"})
_LABEL_TENSORS = frozenset({"tensor(int64)", "tensor(int32)", "tensor(string)"})
# Graph names exporters give every model: the producer says more.
_GENERIC_GRAPH_NAMES = frozenset({"", "main_graph", "torch_jit", "torch-jit-export", "graph", "model"})
_METADATA_CLASSES = ("classes", "class_labels", "labels", "classlabels")

_INSIDE = calls.INSIDE.get


class _Session:
    """What a call needs of a session, resolved at its first call and kept (weakly) with it."""

    __slots__ = ("__weakref__", "classes", "label", "label_pos", "labels", "lookup", "mapping", "monitor", "proba",
                 "proba_pos", "quick", "task", "translate", "value", "value_pos", "zipmap")

    def __init__(self, monitor: Any, mapping: Mapping[str, str], layout: _Layout,
                 classes: list[Any] | None) -> None:
        self.monitor = monitor
        self.quick = monitor.quick_lane()
        self.task = layout.task
        self.mapping = mapping
        # Output names, and their positions in the result when every output is returned.
        self.proba, self.label, self.value = layout.proba, layout.label, layout.value
        self.proba_pos, self.label_pos, self.value_pos = layout.proba_pos, layout.label_pos, layout.value_pos
        self.zipmap = layout.zipmap
        self.classes = classes
        self.labels = [mapped(mapping, c) for c in classes] if classes is not None else None
        # Raw class (its label_of form) -> label, with a class list: its classes, and the column indices
        # a label output may give instead (an exported argmax) - only where they are not classes themselves.
        self.lookup: dict[str, str | None] | None = None
        if classes is not None and self.labels is not None:
            lookup: dict[str, str | None] = {}
            for c, label in zip(classes, self.labels, strict=True):
                key = label_of(c)
                if key is not None:
                    lookup[key] = label
            for i, label in enumerate(self.labels):
                lookup.setdefault(str(i), label)
            self.lookup = lookup
        # Whether raw labels need translating at all (otherwise they are recorded as they come).
        self.translate = bool(mapping) or self.lookup is not None


class _Layout:
    """The model's task and which outputs hold what, read from the outputs' declared types."""

    __slots__ = ("label", "label_pos", "proba", "proba_pos", "task", "value", "value_pos", "zipmap")

    def __init__(self, outputs: Sequence[Any]) -> None:
        self.proba: str | None = None
        self.label: str | None = None
        self.value: str | None = None
        self.proba_pos: int | None = None
        self.label_pos: int | None = None
        self.value_pos: int | None = None
        self.zipmap = False
        for i, out in enumerate(outputs):
            kind, shape, name = str(out.type), list(out.shape or ()), str(out.name)
            lowered = name.lower()
            if self.proba is None and kind.startswith("seq(map("):
                self.proba, self.proba_pos, self.zipmap = name, i, True
            elif (self.proba is None and kind in _FLOAT_TENSORS and len(shape) == 2
                  and ("prob" in lowered or "softmax" in lowered)):
                self.proba, self.proba_pos = name, i
            elif (self.label is None and kind in _LABEL_TENSORS
                  and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))):
                self.label, self.label_pos = name, i
        if self.proba is not None or (self.label is not None and "label" in self.label.lower()):
            self.task = "classification"
            return
        self.label = self.label_pos = None
        if len(outputs) == 1:
            out = outputs[0]
            shape = list(out.shape or ())
            if str(out.type) in _FLOAT_TENSORS and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                self.task = "regression"
                self.value, self.value_pos = str(out.name), 0
                return
        self.task = "other"


def _run_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The wrapper that replaces ``Session.run``: a plain function, so a nested call costs one
    context-variable read."""

    @functools.wraps(fn)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE():
            return fn(self, *args, **kwargs)  # inside an instrumented call: counted there
        return _serve(fn, self, args, kwargs)

    run._otel_ml_original = fn  # type: ignore[attr-defined]
    return run


def _init_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The wrapper that replaces ``InferenceSession.__init__``: remembers where the model came from."""

    @functools.wraps(fn)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        fn(self, *args, **kwargs)
        _remember_origin(self, args[0] if args else kwargs.get("path_or_bytes"))

    init._otel_ml_original = fn  # type: ignore[attr-defined]
    return init


# Sessions built from bytes that onnxruntime did not keep: session -> hash of the bytes.
_BYTES_HASH: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _remember_origin(session: Any, source: object) -> None:
    try:
        if isinstance(source, (str, os.PathLike)):
            origins.record(session, source)
        elif isinstance(source, (bytes, bytearray, memoryview)) and (
                getattr(session, "_model_bytes", None) is not source):
            # onnxruntime keeps the bytes (hashed at the first call); a version that does not: hash them now.
            _BYTES_HASH[session] = hashlib.sha256(source).hexdigest()[:_HASH_CHARS]
    except Exception:
        pass  # loading never fails because of this


def _bytes_hash(session: Any) -> str | None:
    found = _BYTES_HASH.get(session)
    if found is not None:
        return found
    data = getattr(session, "_model_bytes", None)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data).hexdigest()[:_HASH_CHARS]
    return None


def _serve(fn: Callable[..., Any], obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One outermost ``run``: one inference of the session's model."""
    token = calls.INSIDE.set(True)
    try:
        session = _session(obj)
        if session is None:
            return fn(obj, *args, **kwargs)
        if len(args) >= 2:
            names, feed = args[0], args[1]
        else:
            names = args[0] if args else kwargs.get("output_names")
            feed = kwargs.get("input_feed")
        monitor = session.monitor
        first = _first_input(feed)
        ids = calls.IDS.get()
        quick = session.quick
        if ids is None and quick is not None and quick.open():
            # No span to make (unsampled parent): a one-row result is one append to the model's
            # QuickLane; anything else is recorded afterwards through the full path.
            return calls.quick_call(quick, fn, obj, args, kwargs, (session, names, first), _quick_record, _record_late)
        if ids is None and monitor.drift_tracker is None:
            inference = monitor.inference(batch_size=_rows(first), method=METHOD)
        else:
            inference = monitor.inference(
                batch_size=_rows(first), method=METHOD,
                features=first if monitor.drift_tracker is not None else None,
                prediction_ids=ids if ids is not None and len(ids) != 1 else None,
                prediction_id=ids[0] if ids is not None and len(ids) == 1 else None)
        with inference as inf:
            result = fn(obj, *args, **kwargs)
            if session.task != "other":
                _record(inf, result, names, session)
        return result
    finally:
        calls.INSIDE.reset(token)


def _quick_record(quick: Any, call: tuple[_Session, Any, Any], result: Any, duration: int) -> bool:
    """Hand a one-row call's outputs to ``quick``: what the full path would record for it, read by
    the same functions. False where it is not one row or not what the full path reads cleanly
    (never raises): the caller then records the call through the full path."""
    session, names, first = call
    try:
        if _rows(first) != 1:
            return False
        task = session.task
        if task == "other":
            quick.add(METHOD, duration, None, None)
            return True
        if task == "regression":
            pos = session.value_pos if not names else _position(names, session.value)
            if pos is None:
                return False
            values = result[pos]
            value = values.item() if values.size == 1 else None
            if type(value) is not float:
                return False
            quick.add(METHOD, duration, None, None, value)
            return True
        if names:
            proba_pos, label_pos = _position(names, session.proba), _position(names, session.label)
        else:
            proba_pos, label_pos = session.proba_pos, session.label_pos
        raw_labels = result[label_pos].ravel().tolist() if label_pos is not None else None
        if raw_labels is not None and len(raw_labels) != 1:
            return False
        if proba_pos is None:
            if raw_labels is None:
                return False
            quick.add(METHOD, duration, _label(session, raw_labels[0]), None)
            return True
        proba = result[proba_pos]
        if session.zipmap:
            if len(proba) != 1:
                return False
            predicted, confidence, score = _zipmap_row(session, proba[0], raw_labels)
        else:
            if proba.ndim != 2 or proba.shape[0] != 1:
                return False
            predicted, confidence, score = _proba_row(session, proba, raw_labels)
        # Only clean scores: the full path counts an invalid one (NaN, out of [0, 1]).
        if type(confidence) is not float or (score is not None and not 0.0 <= score <= 1.0):
            return False
        quick.add(METHOD, duration, predicted, confidence)
        return True
    except Exception:
        return False  # not added: the full path records the call and counts what it cannot read


def _record_late(call: tuple[_Session, Any, Any], t0: int, result: Any, exc: BaseException | None) -> None:
    session, names, first = call
    calls.record_late(session.monitor, _rows(first), METHOD, t0, result, exc,
                      None if session.task == "other" else lambda inf, out: _record(inf, out, names, session))


# What each session's calls need, kept as long as the session lives (calls.ObjectCache).
_SESSIONS: calls.ObjectCache[_Session] = calls.ObjectCache()


def _session(obj: Any) -> _Session | None:
    kept = _SESSIONS.get(obj)
    if kept is not None:
        return kept  # the steady state: one dictionary lookup
    made = _resolve(obj)
    if made is None:
        return None
    _SESSIONS.put(obj, made)  # not kept when obj cannot be weakly referenced: resolved again next call
    return made


def _resolve(obj: Any) -> _Session | None:
    try:
        layout = _Layout(obj.get_outputs())
        found = MODELS.lookup(obj)
        classes: list[Any] | None = None
        if found is None:
            if origins.path_of(obj) is None:
                path = getattr(obj, "_model_path", None)  # a session built before instrument()
                if isinstance(path, str) and path:
                    origins.record(obj, path)
            meta = obj.get_modelmeta()
            if layout.task == "classification":
                classes = _metadata_classes(meta.custom_metadata_map)
            found = MODELS.monitor_for(obj, framework=FRAMEWORK, task=layout.task, default_name=_default_name(meta),
                                       raw_classes=classes, content_hash=lambda: _bytes_hash(obj))
            if found is None:
                return None
        elif layout.task == "classification":
            classes = _metadata_classes(obj.get_modelmeta().custom_metadata_map)
        return _Session(found[0], found[1].classes, layout, classes)
    except Exception as exc:
        selftelemetry.dropped("auto_identity_error", "metrics", detail=exc)
        return None


def _default_name(meta: Any) -> str:
    graph = str(getattr(meta, "graph_name", "") or "").strip()
    if graph.lower() not in _GENERIC_GRAPH_NAMES:
        return graph
    producer = str(getattr(meta, "producer_name", "") or "").strip()
    return producer or graph or "onnx-model"


def _metadata_classes(metadata: Mapping[str, str] | None) -> list[Any] | None:
    """The class list a model carries in its metadata: a JSON list or ``a,b,c``."""
    if not metadata:
        return None
    for key in _METADATA_CLASSES:
        text = metadata.get(key)
        if not text:
            continue
        text = text.strip()
        if text.startswith("["):
            try:
                values = json.loads(text)
            except ValueError:
                continue
            if isinstance(values, list) and values:
                return values
            continue
        parts = [p.strip() for p in text.split(",")]
        if all(parts):
            return parts
    return None


def _first_input(feed: Any) -> Any:
    try:
        for value in feed.values():
            return value
    except Exception:
        pass
    return None


def _rows(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    if shape is not None:
        try:
            if callable(shape):  # OrtValue.shape()
                shape = shape()
            return int(shape[0])
        except (TypeError, IndexError, ValueError):
            return None
    if isinstance(x, (list, tuple)):
        return len(x)
    return None


def _position(names: Sequence[str], name: str | None) -> int | None:
    if name is None:
        return None
    try:
        return names.index(name)
    except ValueError:
        return None


def _record(inf: Any, result: Any, names: Any, session: _Session) -> None:
    try:
        if session.task == "regression":
            pos = session.value_pos if not names else _position(names, session.value)
            if pos is None:
                return
            values = result[pos]
            if values.size == 1:
                inf.record(predictions=values.item())  # one row: a plain float
            else:
                inf.record(predictions=values.ravel())
            return
        if names:
            proba_pos, label_pos = _position(names, session.proba), _position(names, session.label)
        else:
            proba_pos, label_pos = session.proba_pos, session.label_pos
        raw_labels = result[label_pos].ravel().tolist() if label_pos is not None else None
        if proba_pos is None:
            if raw_labels is not None:
                _record_labels(inf, raw_labels, session)
            return
        proba = result[proba_pos]
        if session.zipmap:
            _record_zipmap(inf, proba, raw_labels, session)
        else:
            _record_proba(inf, proba, raw_labels, session)
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "metrics", detail=exc)


def _label(session: _Session, raw: Any) -> str | None:
    """The label of one raw class value (a label output's value, a ZipMap key, a column index)."""
    key = label_of(raw)
    if key is None:
        return None
    lookup = session.lookup
    if lookup is not None:
        found = lookup.get(key)
        if found is not None:
            return found
    return session.mapping.get(key, key)


def _labels(session: _Session, raw: list[Any]) -> list[Any]:
    return [_label(session, v) for v in raw] if session.translate else raw


def _record_labels(inf: Any, raw: list[Any], session: _Session) -> None:
    if len(raw) == 1:
        inf.record(predictions=_label(session, raw[0]))
    else:
        inf.record(predictions=_labels(session, raw))


def _proba_row(session: _Session, proba: Any, raw_labels: list[Any] | None) -> tuple[Any, Any, Any]:
    """(class, confidence, score) of a one-row ``[1, C]`` probability tensor - the typical online
    request: plain floats are cheaper than numpy here."""
    labels = session.labels
    row = proba[0].tolist()
    if labels is not None and len(labels) != len(row):
        labels = None
    top = max(range(len(row)), key=row.__getitem__)
    if raw_labels is not None and len(raw_labels) == 1:
        predicted = _label(session, raw_labels[0])
    else:
        predicted = labels[top] if labels is not None else _label(session, top)
    return predicted, row[top], row[1] if len(row) == 2 else None


def _zipmap_row(session: _Session, row: Mapping[Any, Any], raw_labels: list[Any] | None) -> tuple[Any, Any, Any]:
    """(class, confidence, score) of one ZipMap row ``{class: probability}``."""
    top = max(row, key=row.__getitem__)
    score = None
    if len(row) == 2:
        _, score = row.values()
    return _label(session, raw_labels[0] if raw_labels is not None else top), row[top], score


def _record_proba(inf: Any, proba: Any, raw_labels: list[Any] | None, session: _Session) -> None:
    """A float ``[N, C]`` probability tensor, and the label output when the call returned it."""
    if proba.ndim != 2 or proba.shape[0] == 0:
        return
    labels = session.labels
    if labels is not None and len(labels) != proba.shape[1]:
        labels = None
    if raw_labels is not None and len(raw_labels) != proba.shape[0]:
        raw_labels = None
    if proba.shape[0] == 1:
        predicted, confidence, score = _proba_row(session, proba, raw_labels)
        inf.record(predictions=predicted, confidence=confidence, score=score)
        return
    import numpy as np

    tops = proba.argmax(axis=1)
    if raw_labels is not None:
        predictions: Any = _labels(session, raw_labels)
    elif labels is not None:
        predictions = [labels[i] for i in tops.tolist()]
    else:  # no class list: the column is the class
        predictions = _labels(session, tops.tolist()) if session.translate else tops
    inf.record(predictions=predictions, confidence=proba[np.arange(len(tops)), tops],
               score=proba[:, 1] if proba.shape[1] == 2 else None)


def _record_zipmap(inf: Any, rows: Any, raw_labels: list[Any] | None, session: _Session) -> None:
    """skl2onnx's ZipMap output: one ``{class: probability}`` dict per row."""
    n = len(rows)
    if n == 0:
        return
    if raw_labels is not None and len(raw_labels) != n:
        raw_labels = None
    if n == 1:
        predicted, confidence, score = _zipmap_row(session, rows[0], raw_labels)
        inf.record(predictions=predicted, confidence=confidence, score=score)
        return
    tops = [max(row, key=row.__getitem__) for row in rows]
    confidence = [row[top] for row, top in zip(rows, tops, strict=True)]
    score = [list(row.values())[1] for row in rows] if len(rows[0]) == 2 else None
    inf.record(predictions=_labels(session, raw_labels if raw_labels is not None else tops),
               confidence=confidence, score=score)


class OnnxRuntimeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments ``onnxruntime.InferenceSession``: every session, built before or after."""

    _lock = threading.Lock()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        # Imported by name: onnxruntime ships no type information.
        ort = importlib.import_module("onnxruntime")

        MODELS.tracer_provider = kwargs.get("tracer_provider")
        MODELS.meter_provider = kwargs.get("meter_provider")
        export_self_telemetry(MODELS.meter_provider)
        with self._lock:
            self._patched: list[tuple[type, str, Any]] = []
            cls = ort.InferenceSession
            for name, wrap in (("run", _run_function), ("__init__", _init_function)):
                # Patched where it is defined (run: the Session base class), so restoring it is exact.
                owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
                if owner is None or owner is object:
                    continue
                original = owner.__dict__[name]
                if hasattr(original, "_otel_ml_original") or not callable(original):
                    continue
                setattr(owner, name, wrap(original))
                self._patched.append((owner, name, original))

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            for owner, name, original in reversed(getattr(self, "_patched", [])):
                setattr(owner, name, original)
            self._patched = []
        # Their monitors are closed by the reset below. Where sessions came from (_BYTES_HASH, like
        # origins' paths) is kept: a session built now is still known if instrumented again.
        _SESSIONS.clear()
        MODELS.reset(FRAMEWORK)
