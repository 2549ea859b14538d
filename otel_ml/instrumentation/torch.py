"""Zero-code instrumentation of PyTorch modules.

Usage, with no change to the service's code::

    pip install 'otel-ml[torch,auto]'
    opentelemetry-instrument uvicorn app:app      # entry point "otel_ml_torch"

or in code: ``from otel_ml.instrumentation.torch import TorchInstrumentor;
TorchInstrumentor().instrument()``. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_torch`` turns it
off; ``uninstrument()`` restores every original (``nn.Module.__call__``, ``nn.Module.load_state_dict``,
``torch.load``, ``torch.jit.load``).

**What is an inference.** Every **outermost** call of a ``torch.nn.Module`` (``model(x)``, which
is ``nn.Module.__call__``: every module class that does not define its own ``__call__``) is one
inference of that module (``otel_ml.ModelMonitor``, ``ml.model.method = forward``), **unless the
module is in training mode with gradients enabled** - ``module.training`` is True (``train()``, the
default of a new module) and ``torch.is_grad_enabled()``: that is a training step, and nothing in
it is counted, not even an eval-mode submodule (a frozen backbone) it calls. So:

* ``model.eval()`` + ``model(x)``, ``with torch.no_grad():`` or ``with torch.inference_mode():`` -
  an inference; the span says which in ``ml.torch.grad_mode`` (``grad`` | ``no_grad`` |
  ``inference_mode``);
* a training loop (``model.train()``, grad enabled) - nothing;
* a validation pass inside a training script (eval mode or no_grad) *is* counted: it is an
  inference of the model. Keep training jobs out with
  ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_torch``.

The submodules a module calls run inside it and are not counted again; neither is a module called
inside another instrumented model call (a scikit-learn estimator, an ONNX session, a transformers
pipeline or ``generate``). Recorded per inference: latency with exemplars, ``error.type``, the
batch size (the first dimension of the first tensor argument, positional then keyword; the
length of a list of tensors), a span under the current span. Under an unsampled parent (parent-based
sampling, the production default) no span is made, and a one-row call is one append to the
model's QuickLane, folded into the same series when a reader collects; batches, errors and outputs
it does not take are recorded through the full path, timed from the same start.

**Outputs.** A module's output is only read when the model's classes are configured
(``OTEL_ML_CLASS_NAMES=0=setosa,1=versicolor,2=virginica`` or ``classes:`` in the mapping file,
with the raw classes ``0`` .. ``C-1``) and the output is a 2-D floating tensor ``[N, C]`` with
that ``C``: its rows are then taken as class scores - as probabilities when a row already is a
distribution (non-negative, summing to 1), else as logits (softmax) - giving the predicted class
(argmax, ``ml.predictions`` by label) and its probability as confidence (and, for two classes, the
probability of class ``1`` as score). Otherwise no output is read, so nothing waits for a CUDA
result: on a GPU the latency is then the time the call took to return (kernels launched
asynchronously may still be running), the same time the caller sees.

**Model identity**: see :mod:`otel_ml.auto`. By default the name is the stem of the file the
module was loaded from - ``torch.load(path)`` of a whole module, ``torch.jit.load(path)`` of a
TorchScript one (named after its original class otherwise), or ``load_state_dict`` of a state
dict (or a checkpoint's dict entry) that came from ``torch.load(path)`` - with that file's content
hash as version; else the module's class name with a hash of its ``state_dict`` as version (names,
shapes, dtypes, and up to 32 MiB of the tensors' bytes, spread over all tensors) - for a Hugging
Face model its ``name_or_path`` and the version the transformers instrumentor gives it (hub
commit, else config and parameter shapes), so both instrumentors name it alike. Never the torch
version. The identity is resolved at the module's first inference and kept: load weights before
serving.

A compiled module (``torch.compile(module)``, ``module.compile()``) is counted at its outermost
call, as the module it compiles; the compiled code is not changed (the wrapper steps aside while
Dynamo traces, so ``fullgraph=True`` holds), and modules called inside a compiled *function* are
part of that compiled code: not counted.

The module's call behaves exactly as without otel_ml: same return value, same exception object;
whatever otel_ml cannot record is counted in ``otel_ml.dropped``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_ml._internal import names, selftelemetry
from otel_ml._internal.auto import calls, origins
from otel_ml._internal.auto.identity import Resolver
from otel_ml._internal.auto.registry import MODELS, export_self_telemetry

_instruments = ("torch >= 2.1",)

FRAMEWORK = "torch"
METHOD = "forward"
# Span attribute: the autograd mode of the call - grad | no_grad | inference_mode.
GRAD_MODE = names.TORCH_GRAD_MODE
_MAX_HASH_BYTES = 32 * 2**20  # of tensor data hashed at a module's first call (plus every name and shape)
_MIN_HASH_BYTES_PER_TENSOR = 4096
_HASH_CHARS = 12  # as identity.py's content hashes

_INSIDE = calls.INSIDE.get


class _Torch:
    """What the per-call path needs of torch, bound by instrument() (torch is imported lazily)."""

    tensor: Any = None
    is_grad_enabled: Callable[[], bool] = staticmethod(lambda: True)
    is_inference_mode_enabled: Callable[[], bool] = staticmethod(lambda: False)
    is_compiling: Callable[[], bool] = staticmethod(lambda: False)
    module: Any = None


_T = _Torch()


def _call_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The replacement of ``nn.Module.__call__``. A plain function: a forward pass calls it once per
    submodule, and everything but the outermost call costs one context-variable read."""

    @functools.wraps(fn)
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE() or _T.is_compiling():
            # A submodule, a module inside another instrumented call, or Dynamo tracing.
            return fn(self, *args, **kwargs)
        if getattr(self, "training", False) and _T.is_grad_enabled():
            return _quiet(fn, self, args, kwargs)  # a training step
        return _serve(fn, self, args, kwargs)

    __call__._otel_ml_original = fn  # type: ignore[attr-defined]
    return __call__


def _quiet(fn: Callable[..., Any], obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A training forward pass: nothing inside it (eval-mode submodules included) is an inference."""
    token = calls.INSIDE.set(True)
    try:
        return fn(obj, *args, **kwargs)
    finally:
        calls.INSIDE.reset(token)


def _serve(fn: Callable[..., Any], obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One outermost call: one inference of the module ``obj``."""
    token = calls.INSIDE.set(True)
    try:
        model = _model(obj)
        if model is None:
            return fn(obj, *args, **kwargs)
        ids = calls.IDS.get()
        quick = model.quick
        if ids is None and quick is not None and quick.open():
            # No span to make (unsampled parent): a one-row call is one append to the model's
            # QuickLane; a batch, an error or an output it cannot take is recorded afterwards
            # through the full path, timed from the same start.
            return calls.quick_call(quick, fn, obj, args, kwargs, (model, args, kwargs), _quick_record,
                                    _record_late)
        monitor = model.monitor
        rows = _rows(args, kwargs)
        if ids is None and monitor.drift_tracker is None:
            inference = monitor.inference(batch_size=rows, method=METHOD)
        else:
            inference = monitor.inference(
                batch_size=rows, method=METHOD,
                features=_features(args, kwargs) if monitor.drift_tracker is not None else None,
                prediction_ids=ids if ids is not None and len(ids) != 1 else None,
                prediction_id=ids[0] if ids is not None and len(ids) == 1 else None)
        with inference as inf:
            span = inf.span
            if span.is_recording():
                _set_grad_mode(span)
            result = fn(obj, *args, **kwargs)
            if model.labels is not None:
                _record(inf, result, model.labels)
        return result
    finally:
        calls.INSIDE.reset(token)


def _quick_record(quick: Any, call: tuple[_Model, tuple[Any, ...], dict[str, Any]], result: Any,
                  duration: int) -> bool:
    """Hand a one-row call to ``quick``; False where it is not one it takes (never raises): the
    caller then records the call through the full path, which counts what it cannot read."""
    model, args, kwargs = call
    try:
        first = _first_tensor(args, kwargs)
        if first is None or not first.dim() or first.shape[0] != 1:
            return False
        labels = model.labels
        if labels is None:
            quick.add(METHOD, duration, None, None)  # no classes configured: the output is not read
            return True
        if type(result) is not _T.tensor or result.dim() != 2 or not result.is_floating_point() \
                or result.shape[0] != 1 or result.shape[1] != len(labels):
            return False
        row = result.tolist()[0]  # one row: plain floats (cheaper than tensor ops, as in _record)
        if not math.isfinite(sum(row)):  # a NaN or infinite score: the full path counts it
            return False
        top, probs = _top(row)
        quick.add(METHOD, duration, labels[top], probs[top])
        return True
    except Exception:
        return False


def _record_late(call: tuple[_Model, tuple[Any, ...], dict[str, Any]], t0: int, result: Any,
                 exc: BaseException | None) -> None:
    model, args, kwargs = call
    labels = model.labels
    calls.record_late(model.monitor, _rows(args, kwargs), METHOD, t0, result, exc,
                      None if labels is None else lambda inf, out: _record(inf, out, labels))


def _set_grad_mode(span: Any) -> None:
    try:
        mode = ("inference_mode" if _T.is_inference_mode_enabled() else
                "grad" if _T.is_grad_enabled() else "no_grad")
        span.set_attribute(GRAD_MODE, mode)
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "traces", detail=exc)


class _Model:
    """What a call needs of a module, resolved at its first inference and kept (weakly) with it."""

    __slots__ = ("__weakref__", "labels", "monitor", "quick")

    def __init__(self, monitor: Any, identity: Any) -> None:
        self.monitor = monitor
        self.quick = monitor.quick_lane()
        self.labels = _labels(identity.classes) if monitor.task == "classification" else None


# What each module's calls need, kept as long as the module lives (calls.ObjectCache).
_MODELS: calls.ObjectCache[_Model] = calls.ObjectCache()


def _model(obj: Any) -> _Model | None:
    kept = _MODELS.get(obj)
    if kept is not None:
        return kept  # the steady state: one dictionary lookup
    entry = _monitor(obj)
    if entry is None:
        return None
    model = _Model(entry[0], entry[1])
    _MODELS.put(obj, model)  # not kept when obj cannot be weakly referenced: resolved again next call
    return model


def _monitor(obj: Any) -> Any:
    # A torch.compile'd module (OptimizedModule) is the module it compiles: one identity, one monitor.
    inner = getattr(obj, "_orig_mod", None)
    if inner is not None and isinstance(inner, _T.module.nn.Module):
        obj = inner
    found = MODELS.lookup(obj)
    if found is not None:
        return found
    try:
        labels = _labels(_configured_classes(obj))
        return MODELS.monitor_for(obj, framework=FRAMEWORK, task="classification" if labels else "other",
                                  default_name=_default_name(obj),
                                  raw_classes=[str(i) for i in range(len(labels))] if labels else None,
                                  content_hash=lambda: _content_hash(obj))
    except Exception as exc:
        selftelemetry.dropped("auto_identity_error", "metrics", detail=exc)
        return None


def _configured_classes(obj: Any) -> Mapping[str, str]:
    """The class mapping the identity of ``obj`` will carry (mapping file rule, else
    ``OTEL_ML_CLASS_NAMES``): read before the monitor is made, since it decides the task."""
    resolver = Resolver()
    path = origins.path_of(obj)
    rule = next((r.values for r in resolver.rules if r.matches(path, type(obj), FRAMEWORK)), {})
    classes = rule.get("classes")
    return {str(k): str(v) for k, v in classes.items()} if isinstance(classes, dict) else resolver.classes


def _labels(mapping: Mapping[str, str]) -> list[str] | None:
    """Labels of the raw classes 0 .. C-1 when the mapping names exactly those (C > 1), else None."""
    n = len(mapping)
    if n < 2 or any(str(i) not in mapping for i in range(n)):
        return None
    return [mapping[str(i)] for i in range(n)]


def _default_name(obj: Any) -> str:
    """A Hugging Face model's ``name_or_path`` (the last part of a local folder), a TorchScript module's
    original class name, else the class name."""
    name = getattr(obj, "name_or_path", None)
    if isinstance(name, str) and name.strip():
        name = name.rstrip("/\\")
        return os.path.basename(name) if os.path.isdir(name) else name
    scripted = getattr(obj, "original_name", None) if isinstance(obj, _T.module.jit.ScriptModule) else None
    return scripted if isinstance(scripted, str) and scripted else type(obj).__name__


def _content_hash(module: Any) -> str | None:
    """A Hugging Face model's version as the transformers instrumentor gives it (hub commit, else config
    and parameter shapes), so it is one model whichever instrumentor sees it first; else the state's hash."""
    if hasattr(module, "config") and hasattr(module, "name_or_path"):
        from otel_ml.instrumentation.transformers import model_hash

        found = model_hash(module)
        if found is not None:
            return found
    return state_hash(module)


def state_hash(module: Any) -> str | None:
    """A content hash of ``module.state_dict()``: every entry's name, shape and dtype, and the first
    bytes of every tensor (at most ``_MAX_HASH_BYTES`` in all, spread over the tensors so a change in
    the last layer shows too). None when the state cannot be read."""
    try:
        state = module.state_dict()
    except Exception:
        return None
    tensor = _T.tensor
    tensors = [v for v in state.values() if tensor is not None and isinstance(v, tensor)]
    per_tensor = max(_MIN_HASH_BYTES_PER_TENSOR, _MAX_HASH_BYTES // max(1, len(tensors)))
    budget = _MAX_HASH_BYTES
    digest = hashlib.sha256()
    for key, value in state.items():
        digest.update(str(key).encode())
        if tensor is None or not isinstance(value, tensor):
            digest.update(type(value).__qualname__.encode())
            continue
        digest.update(f"{tuple(value.shape)}:{value.dtype}".encode())
        if budget <= 0:
            continue
        try:
            flat = value.detach().reshape(-1)
            n = min(flat.numel(), min(per_tensor, budget) // max(1, flat.element_size()))
            data = flat[:n].contiguous().view(_T.module.uint8).cpu().numpy()
            digest.update(data)
            budget -= data.nbytes
        except Exception:
            continue  # meta, quantized or otherwise unreadable tensors: their name and shape only
    return digest.hexdigest()[:_HASH_CHARS]


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The call's first tensor argument, positional then keyword; None without one."""
    tensor = _T.tensor
    for value in args:
        if isinstance(value, tensor):
            return value
    for value in kwargs.values():
        if isinstance(value, tensor):
            return value
    return None


def _rows(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    try:
        value = _first_tensor(args, kwargs)
        if value is not None:
            return int(value.shape[0]) if value.dim() else None
        first = args[0] if args else None
        if isinstance(first, (list, tuple)):
            return len(first)  # e.g. a list of images
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "metrics", detail=exc)
    return None


def _features(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The first tensor argument as a numpy array, for drift (only with a reference profile)."""
    try:
        value = _first_tensor(args, kwargs)
        if value is not None:
            return value.detach().cpu().numpy()
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "drift", detail=exc)
    return None


def _record(inf: Any, out: Any, labels: list[str]) -> None:
    """Predicted class and confidence from class scores ``[N, C]`` (see the module docstring)."""
    try:
        torch = _T.module
        if not isinstance(out, _T.tensor) or out.dim() != 2 or not out.is_floating_point():
            return
        n, c = out.shape
        if n == 0 or c != len(labels):
            return
        x = out.detach()
        if n == 1:
            # One row - the typical online request: plain floats are cheaper than tensor ops here.
            top, probs = _top(x[0].tolist())
            inf.record(predictions=labels[top], confidence=probs[top], score=probs[1] if c == 2 else None)
            return
        x = x.float()
        if not (bool((x >= 0).all()) and bool(((x.sum(dim=1) - 1).abs() <= 1e-3).all())):
            x = torch.softmax(x, dim=1)
        confidence, tops = x.max(dim=1)
        inf.record(predictions=[labels[i] for i in tops.tolist()], confidence=confidence.tolist(),
                   score=x[:, 1].tolist() if c == 2 else None)
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "metrics", detail=exc)


def _top(row: list[float]) -> tuple[int, list[float]]:
    """One row of class scores: the index of its predicted class, and the row as probabilities (a
    distribution as it is, else softmaxed logits)."""
    probs = row if _is_distribution(row) else _softmax(row)
    return max(range(len(probs)), key=probs.__getitem__), probs


def _is_distribution(row: list[float]) -> bool:
    return all(v >= 0 for v in row) and abs(sum(row) - 1.0) <= 1e-3


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


# -- load paths: torch.load(path) and load_state_dict(a state dict from torch.load(path)) ----------

def _remember(result: Any, path: Any) -> None:
    """Record ``path`` for what ``torch.load`` returned: a module or a state dict, or those found in
    a checkpoint dict (``{"model": state_dict, "optimizer": ...}``). Plain dicts are not recorded:
    they cannot be weakly referenced, and a reused id would name the wrong model."""
    keep = (_T.module.nn.Module, OrderedDict)
    if isinstance(result, keep):
        origins.record(result, path)
    if isinstance(result, Mapping):
        for value in list(result.values())[:64]:
            if isinstance(value, keep):
                origins.record(value, path)


def _load_function(original: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.load`` / ``torch.jit.load``, whose first argument (``f``) is the path or file."""

    @functools.wraps(original)
    def load(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        try:
            _remember(result, args[0] if args else kwargs.get("f"))
        except Exception:
            pass  # loading never fails because of this
        return result

    load._otel_ml_original = original  # type: ignore[attr-defined]
    return load


def _load_state_dict_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def load_state_dict(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = fn(self, *args, **kwargs)
        try:
            path = origins.path_of(args[0] if args else kwargs.get("state_dict"))
            if path is not None:
                origins.record(self, path)
        except Exception:
            pass
        return result

    load_state_dict._otel_ml_original = fn  # type: ignore[attr-defined]
    return load_state_dict


class TorchInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every ``torch.nn.Module`` (``__call__``) and ``torch.load``."""

    _lock = threading.Lock()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        # Imported by name, when instrumenting: torch is not in otel_ml's own environment (nor its
        # type check), and this module must not import it (nor shadow it: absolute imports only).
        torch = importlib.import_module("torch")

        MODELS.tracer_provider = kwargs.get("tracer_provider")
        MODELS.meter_provider = kwargs.get("meter_provider")
        export_self_telemetry(MODELS.meter_provider)
        with self._lock:
            _T.module = torch
            _T.tensor = torch.Tensor
            _T.is_grad_enabled = torch.is_grad_enabled
            _T.is_inference_mode_enabled = torch.is_inference_mode_enabled
            compiler = getattr(torch, "compiler", None)
            _T.is_compiling = getattr(compiler, "is_compiling", None) or (lambda: False)
            self._patched: list[tuple[Any, str, Any]] = []
            module = torch.nn.Module
            self._patch(module, "__call__", _call_function)
            self._patch(module, "load_state_dict", _load_state_dict_function)
            self._patch(torch, "load", _load_function)
            self._patch(torch.jit, "load", _load_function)  # TorchScript

    def _patch(self, owner: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        original = vars(owner).get(name)
        if not callable(original) or hasattr(original, "_otel_ml_original"):
            return
        setattr(owner, name, make(original))
        self._patched.append((owner, name, original))

    def _uninstrument(self, **kwargs: Any) -> None:
        with self._lock:
            for owner, name, original in reversed(getattr(self, "_patched", [])):
                setattr(owner, name, original)
            self._patched = []
        _MODELS.clear()  # their monitors are closed by the reset below
        MODELS.reset(FRAMEWORK)
