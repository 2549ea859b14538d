"""Zero-code instrumentation of Hugging Face transformers: pipelines and ``generate``.

Usage, with no change to the service's code::

    pip install 'otel-ml[transformers,auto]'
    opentelemetry-instrument uvicorn app:app      # entry point "otel_ml_transformers"

or in code: ``from otel_ml.instrumentation.transformers import TransformersInstrumentor;
TransformersInstrumentor().instrument()``. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_ml_transformers``
turns it off; ``uninstrument()`` restores ``Pipeline.__call__`` and ``GenerationMixin.generate``.

**Generations.** Every outermost ``model.generate(...)`` is one generation of that model
(``ModelMonitor.generation``, GenAI semantic conventions, ``gen_ai.operation.name =
text_completion``): ``gen_ai.server.request.duration``; ``gen_ai.client.token.usage`` with the
input tokens (the attention mask's sum, else the prompt ids' count) and the output tokens (per
returned sequence: the tokens after the prompt - after the decoder start token for
encoder-decoder models - up to and including the first end-of-sequence token, summed);
``gen_ai.server.time_to_first_token`` and, for a single sequence, ``gen_ai.server.time_per_output_token``,
timed by a streamer handed to ``generate``: the first ``put`` after the prompt is the first token.
A streamer the caller passed is chained: it receives every ``put`` and ``end`` as before. Where
``generate`` does not take a streamer (beam search, constrained or paged/continuous-batching
generation, ``custom_generate``) none is added, and only duration and tokens are recorded.
``gen_ai.request.model`` is the model's ``name_or_path``.

**Pipelines.** Every outermost pipeline call (``Pipeline.__call__``, which every pipeline's call
ends in) is one inference of the pipeline (``ml.model.method = pipeline``; batch size = inputs:
one string, dict or chat, or a list's length) - or, for a pipeline that generates
(``text-generation``, ``image-text-to-text``, ...), one generation as above (``chat`` for chat
inputs), its tokens summed over the ``generate`` calls inside and its first token timed from the
pipeline call's start (tokenization included). Classification pipelines (``text-classification``,
``image-classification``, ``audio-classification``) record each input's top label
(``ml.predictions``, through ``OTEL_ML_CLASS_NAMES`` when set) and its score as confidence. A
pipeline fed a generator or a ``Dataset`` returns a lazy iterator: that call is not counted, the
``generate`` calls or forward passes it runs while iterated are.

Inside a counted call nothing else is counted: the ``generate`` a pipeline runs, the torch
modules that ``generate`` or a pipeline calls (``otel_ml_torch``), an assistant model's
``generate``. Model identity: see :mod:`otel_ml.auto`; by default the name is the model's
``name_or_path`` (the last part of a local folder; the class name for a model built from a
config), the version the hub commit (``config._commit_hash``) or else a hash of the config and
the parameters' names, shapes and dtypes - never the transformers version.

Prompts and generated text never leave the process: no text is put on any span, metric or log
(``OTEL_ML_CAPTURE_CONTENT`` only concerns prediction logs, which this instrumentor does not
write); class labels are the model's ``id2label`` names.

The call behaves exactly as without otel_ml: same return value, same exception object; whatever
otel_ml cannot record is counted in ``otel_ml.dropped``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import os
import threading
import types
from collections.abc import Callable, Collection, Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_ml._internal import selftelemetry
from otel_ml._internal.auto import calls
from otel_ml._internal.auto.registry import MODELS, export_self_telemetry, mapped

_instruments = ("transformers >= 4.40",)

FRAMEWORK = "transformers"
PIPELINE_METHOD = "pipeline"
CLASSIFICATION_TASKS = frozenset({"text-classification", "sentiment-analysis", "image-classification",
                                  "audio-classification", "video-classification"})
# transformers < 4.46 does not say which pipelines generate (``_pipeline_calls_generate``).
GENERATIVE_TASKS = frozenset({"text-generation", "text2text-generation", "summarization", "image-to-text",
                              "image-text-to-text", "translation"})
_MAX_CLASSES = 50
_HASH_CHARS = 12

_INSIDE = calls.INSIDE.get


class _Generation:
    """One counted generation: the Generation it records into, and the tokens fed to it."""

    __slots__ = ("calls", "gen", "input_tokens", "output_tokens", "tpot")

    def __init__(self, gen: Any, tpot: bool) -> None:
        self.gen = gen
        self.tpot = tpot  # time per output token: for one sequence only
        self.calls = 0
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def token(self) -> None:
        if self.tpot:
            self.gen.token(0)  # counted from the returned sequences at the end
        else:
            self.gen.first_token()

    def add(self, input_tokens: int | None, output_tokens: int | None) -> None:
        if input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + input_tokens
        if output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + output_tokens

    def finish(self) -> None:
        if self.input_tokens is not None or self.output_tokens is not None:
            self.gen.set_usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)


# The generation a pipeline call opened, which the generate calls inside it feed.
_CURRENT: ContextVar[_Generation | None] = ContextVar("otel_ml_transformers_generation", default=None)


class _Streamer:
    """Handed to ``generate`` as ``streamer``: marks the first token (the first ``put`` after the
    prompt's) and every later one, then passes each call to the caller's own streamer, if any."""

    def __init__(self, generation: _Generation, user: Any) -> None:
        self._generation = generation
        self._user = user
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if self._prompt_seen:
            try:
                self._generation.token()
            except Exception as exc:
                selftelemetry.dropped("auto_output_error", "metrics", detail=exc)
        else:
            self._prompt_seen = True
        if self._user is not None:
            self._user.put(value)

    def end(self) -> None:
        if self._user is not None:
            self._user.end()


class _Lib:
    """What the per-call path needs of torch / transformers, bound by instrument()."""

    tensor: Any = None
    dataset: Any = None
    isin: Any = None
    streamer_index: int | None = None  # of ``streamer`` among generate's positional parameters
    config_index: int | None = None  # of ``generation_config``


_L = _Lib()


# -- generate ---------------------------------------------------------------------------------

def _generate_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def generate(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE():
            current = _CURRENT.get()
            if current is None:
                return fn(self, *args, **kwargs)  # inside another instrumented call
            return _generate(fn, self, args, kwargs, current)  # a pipeline's generate
        return _serve_generate(fn, self, args, kwargs)

    generate._otel_ml_original = fn  # type: ignore[attr-defined]
    return generate


def _serve_generate(fn: Callable[..., Any], obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One outermost generate: one generation of the model ``obj``."""
    token = calls.INSIDE.set(True)
    try:
        model = _model(obj, None)
        if model is None:
            return fn(obj, *args, **kwargs)
        with model.monitor.generation(operation="text_completion", request_model=model.request_model) as gen:
            generation = _Generation(gen, tpot=True)
            try:
                return _generate(fn, obj, args, kwargs, generation)
            finally:
                generation.finish()
    finally:
        calls.INSIDE.reset(token)


def _generate(fn: Callable[..., Any], obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
              generation: _Generation) -> Any:
    """Run ``generate`` feeding ``generation``: a streamer for the token times, the tokens counted
    from the prompt and the returned sequences."""
    call_args, call_kwargs = args, kwargs
    config: Any = None
    try:
        config = _generation_config(obj, args, kwargs)
        generation.calls += 1
        if generation.calls > 1 or not _one_sequence(args, kwargs, config):
            generation.tpot = False
        call_args, call_kwargs = _with_streamer(args, kwargs, config, generation)
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "metrics", detail=exc)
    # Nested generate calls (an assistant model's) are part of this one.
    nested = _CURRENT.set(None)
    try:
        result = fn(obj, *call_args, **call_kwargs)
    finally:
        _CURRENT.reset(nested)
    try:
        prompt = _prompt(args, kwargs)
        generation.add(_input_tokens(prompt, kwargs), _output_tokens(obj, prompt, result, kwargs, config))
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "metrics", detail=exc)
    return result


def _prompt(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    prompt = kwargs.get("inputs")
    return prompt if prompt is not None else kwargs.get("input_ids")


def _generation_config(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    index = _L.config_index
    config = kwargs.get("generation_config")
    if config is None and index is not None and len(args) > index:
        config = args[index]
    return config if config is not None else getattr(obj, "generation_config", None)


def _setting(name: str, kwargs: dict[str, Any], config: Any, default: Any) -> Any:
    value = kwargs.get(name)
    if value is None:
        value = getattr(config, name, None)
    return default if value is None else value


def _one_sequence(args: tuple[Any, ...], kwargs: dict[str, Any], config: Any) -> bool:
    prompt = _prompt(args, kwargs)
    rows = int(prompt.shape[0]) if isinstance(prompt, _L.tensor) and prompt.dim() == 2 else 1
    return rows == 1 and _setting("num_return_sequences", kwargs, config, 1) == 1


def _with_streamer(args: tuple[Any, ...], kwargs: dict[str, Any], config: Any,
                   generation: _Generation) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``args, kwargs`` with our streamer in, chained to the caller's; unchanged where generate
    would refuse a streamer."""
    index = _L.streamer_index
    positional = index is not None and len(args) > index
    user = args[index] if positional and index is not None else kwargs.get("streamer")
    if user is None and not _streams(kwargs, config):
        return args, kwargs
    streamer = _Streamer(generation, user)
    if positional and index is not None:
        return (*args[:index], streamer, *args[index + 1:]), kwargs
    return args, {**kwargs, "streamer": streamer}


def _streams(kwargs: dict[str, Any], config: Any) -> bool:
    """Whether generate accepts a streamer for this call: greedy, sampling, contrastive or assisted
    decoding (one beam); not beam search, constraints, continuous batching or custom_generate."""
    if kwargs.get("custom_generate") is not None:
        return False
    if _setting("cache_implementation", kwargs, config, None) == "paged":
        return False
    if _setting("constraints", kwargs, config, None) is not None:
        return False
    if _setting("force_words_ids", kwargs, config, None) is not None:
        return False
    return bool(_setting("num_beams", kwargs, config, 1) == 1)


def _input_tokens(prompt: Any, kwargs: dict[str, Any]) -> int | None:
    tensor = _L.tensor
    mask = kwargs.get("attention_mask")
    if isinstance(mask, tensor):
        return int(mask.sum())
    if isinstance(prompt, tensor) and not prompt.is_floating_point():
        return int(prompt.numel())
    embeds = kwargs.get("inputs_embeds")
    if isinstance(embeds, tensor) and embeds.dim() == 3:
        return int(embeds.shape[0] * embeds.shape[1])
    return None  # e.g. audio features: not tokens


def _output_tokens(obj: Any, prompt: Any, result: Any, kwargs: dict[str, Any], config: Any) -> int | None:
    tensor = _L.tensor
    sequences = result if isinstance(result, tensor) else getattr(result, "sequences", None)
    if not isinstance(sequences, tensor) or sequences.dim() != 2:
        return None
    length = int(sequences.shape[1])
    if getattr(getattr(obj, "config", None), "is_encoder_decoder", False):
        start = 1  # the decoder start token
    elif isinstance(prompt, tensor) and prompt.dim() == 2 and not prompt.is_floating_point():
        start = int(prompt.shape[1])
    else:
        start = 0  # generated from embeddings only: the sequences hold the new tokens
    new = sequences[:, min(start, length):]
    steps = int(new.shape[1])
    eos = _eos_ids(kwargs, config)
    if not eos or steps == 0:
        return int(new.numel())
    is_eos = _L.isin(new, _L.tensor(eos).to(device=new.device, dtype=new.dtype))
    first = is_eos.int().argmax(dim=1)
    counts = (first + 1).where(is_eos.any(dim=1), first.new_full(first.shape, steps))
    return int(counts.sum())


def _eos_ids(kwargs: dict[str, Any], config: Any) -> list[int]:
    eos = _setting("eos_token_id", kwargs, config, None)
    if eos is None:
        return []
    if isinstance(eos, _L.tensor):
        return [int(v) for v in eos.reshape(-1).tolist()]
    if isinstance(eos, int):
        return [eos]
    return [int(v) for v in eos]


# -- pipelines --------------------------------------------------------------------------------

def _pipeline_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE():
            return fn(self, *args, **kwargs)
        return _serve_pipeline(fn, self, args, kwargs)

    __call__._otel_ml_original = fn  # type: ignore[attr-defined]
    return __call__


_INPUT_KEYWORDS = ("inputs", "text_inputs", "sequences", "images", "image", "audio", "text")


def _serve_pipeline(fn: Callable[..., Any], pipe: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    inputs = args[0] if args else next((kwargs[k] for k in _INPUT_KEYWORDS if k in kwargs), None)
    if isinstance(inputs, types.GeneratorType) or (_L.dataset is not None and isinstance(inputs, _L.dataset)):
        return fn(pipe, *args, **kwargs)  # a lazy iterator: its inner calls are counted as it runs
    token = calls.INSIDE.set(True)
    try:
        model = _model(pipe, pipe)
        if model is None:
            return fn(pipe, *args, **kwargs)
        single = _single(inputs)
        if model.generative:
            operation = "chat" if _is_chat(inputs) or (not single and _is_chat(_first(inputs))) else "text_completion"
            with model.monitor.generation(operation=operation, request_model=model.request_model) as gen:
                generation = _Generation(gen, tpot=single)
                current = _CURRENT.set(generation)
                try:
                    return fn(pipe, *args, **kwargs)
                finally:
                    _CURRENT.reset(current)
                    generation.finish()
        with model.monitor.inference(batch_size=1 if single else _length(inputs), method=PIPELINE_METHOD) as inf:
            result = fn(pipe, *args, **kwargs)
            if model.classification:
                _record_labels(inf, single, result, model.mapping)
        return result
    finally:
        calls.INSIDE.reset(token)


def _first(inputs: Any) -> Any:
    return inputs[0] if isinstance(inputs, (list, tuple)) and inputs else None


def _is_chat(value: Any) -> bool:
    """A conversation: a list of ``{"role": ..., "content": ...}`` messages (or transformers' Chat)."""
    if type(value).__name__ == "Chat" and hasattr(value, "messages"):
        return True
    first = _first(value)
    return isinstance(first, Mapping) and "role" in first and "content" in first


def _single(inputs: Any) -> bool:
    return not isinstance(inputs, (list, tuple)) or _is_chat(inputs)


def _length(inputs: Any) -> int | None:
    try:
        return len(inputs)
    except TypeError:
        return None


def _record_labels(inf: Any, single: bool, result: Any, mapping: Mapping[str, str]) -> None:
    """Each input's top ``{"label", "score"}`` (a single input's result is one row: a dict, or a list
    of dicts with ``top_k``; a list input's, one such row per input)."""
    try:
        rows = [result] if single else list(result)
        labels: list[str | None] = []
        scores: list[float] = []
        for row in rows:
            top = _top(row)
            if top is None:
                selftelemetry.dropped("auto_output_error", "metrics", detail=type(row).__name__)
                return
            labels.append(mapped(mapping, top[0]))
            scores.append(top[1])
        if len(labels) == 1:
            inf.record(predictions=labels[0], confidence=scores[0])
        elif labels:
            inf.record(predictions=labels, confidence=scores)
    except Exception as exc:
        selftelemetry.dropped("auto_output_error", "metrics", detail=exc)


def _top(row: Any) -> tuple[Any, float] | None:
    candidates = [row] if isinstance(row, Mapping) else row if isinstance(row, list) else None
    if not candidates or not all(isinstance(c, Mapping) and "label" in c and "score" in c for c in candidates):
        return None
    best = max(candidates, key=lambda c: float(c["score"]))
    return best["label"], float(best["score"])


# -- models -----------------------------------------------------------------------------------

class _Model:
    """What a call needs of a model or pipeline, resolved at its first call and kept (weakly)."""

    __slots__ = ("__weakref__", "classification", "generative", "mapping", "monitor", "request_model")

    def __init__(self, monitor: Any, identity: Any, task: str, request_model: str | None) -> None:
        self.monitor = monitor
        self.generative = task == "generation"
        self.classification = task == "classification"
        self.mapping: Mapping[str, str] = identity.classes
        self.request_model = request_model


# What each object's calls need, kept as long as the object lives (calls.ObjectCache).
_MODELS: calls.ObjectCache[_Model] = calls.ObjectCache()


def _model(obj: Any, pipe: Any) -> _Model | None:
    """The model of a generate call (``pipe`` None) or of the pipeline ``pipe``."""
    kept = _MODELS.get(obj)
    if kept is not None:
        return kept
    try:
        hf_model = pipe.model if pipe is not None else obj
        task = _pipeline_task(pipe) if pipe is not None else "generation"
        classes = None
        if task == "classification":
            id2label = getattr(getattr(hf_model, "config", None), "id2label", None) or {}
            classes = [id2label[k] for k in sorted(id2label)] if 0 < len(id2label) <= _MAX_CLASSES else None
        entry = MODELS.monitor_for(obj, framework=FRAMEWORK, task=task, default_name=_name(hf_model),
                                   raw_classes=classes, content_hash=lambda: model_hash(hf_model))
        if entry is None:
            return None
        name_or_path = getattr(hf_model, "name_or_path", None)
        model = _Model(entry[0], entry[1], task, _name(hf_model) if name_or_path else None)
    except Exception as exc:
        selftelemetry.dropped("auto_identity_error", "metrics", detail=exc)
        return None
    _MODELS.put(obj, model)  # not kept when obj cannot be weakly referenced: resolved again next call
    return model


def _pipeline_task(pipe: Any) -> str:
    task = str(getattr(pipe, "task", "") or "")
    calls_generate = getattr(type(pipe), "_pipeline_calls_generate", None)
    if calls_generate is None:
        calls_generate = task in GENERATIVE_TASKS or task.startswith("translation")
    can_generate = getattr(pipe.model, "can_generate", None)
    if calls_generate and (can_generate is None or can_generate()):
        return "generation"
    return "classification" if task in CLASSIFICATION_TASKS else "other"


def _name(hf_model: Any) -> str:
    """``name_or_path`` (a hub id, or the last part of a local folder), else the class name."""
    name = getattr(hf_model, "name_or_path", None)
    if not isinstance(name, str) or not name.strip():
        name = getattr(getattr(hf_model, "config", None), "_name_or_path", None)
    if isinstance(name, str) and name.strip():
        name = name.rstrip("/\\")
        return os.path.basename(name) if os.path.isdir(name) else name
    return type(hf_model).__name__


def model_hash(hf_model: Any) -> str | None:
    """The hub commit the model was downloaded at, else a hash of its config (without the
    transformers version) and its parameters' names, shapes and dtypes."""
    config = getattr(hf_model, "config", None)
    commit = getattr(config, "_commit_hash", None)
    if isinstance(commit, str) and commit:
        return commit[:_HASH_CHARS]
    digest = hashlib.sha256()
    try:
        settings = config.to_dict() if config is not None else {}
        settings.pop("transformers_version", None)
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
        for name, param in hf_model.named_parameters():
            digest.update(f"{name}:{tuple(param.shape)}:{param.dtype}".encode())
    except Exception:
        return None
    return digest.hexdigest()[:_HASH_CHARS]


class TransformersInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments ``transformers.Pipeline.__call__`` and ``GenerationMixin.generate``."""

    _lock = threading.Lock()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        # Imported by name, when instrumenting: neither library is in otel_ml's own environment (nor its
        # type check), and this module must not import them (nor shadow them: absolute imports only).
        try:
            torch = importlib.import_module("torch")
            transformers = importlib.import_module("transformers")
            GenerationMixin = importlib.import_module("transformers.generation.utils").GenerationMixin
        except ImportError as exc:  # transformers without torch: nothing of it runs models here
            selftelemetry.log_once("auto_transformers_import", "otel_ml: not instrumenting transformers: %s", exc)
            return
        MODELS.tracer_provider = kwargs.get("tracer_provider")
        MODELS.meter_provider = kwargs.get("meter_provider")
        export_self_telemetry(MODELS.meter_provider)
        with self._lock:
            _L.tensor = torch.Tensor
            _L.isin = torch.isin
            try:
                _L.dataset = importlib.import_module("torch.utils.data").Dataset
            except (ImportError, AttributeError):
                _L.dataset = None
            self._patched: list[tuple[Any, str, Any]] = []
            generate = GenerationMixin.__dict__.get("generate")
            if callable(generate):
                params = [p.name for p in inspect.signature(generate).parameters.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1:]  # without self
                _L.streamer_index = params.index("streamer") if "streamer" in params else None
                _L.config_index = params.index("generation_config") if "generation_config" in params else None
            self._patch(GenerationMixin, "generate", _generate_function)
            self._patch(transformers.Pipeline, "__call__", _pipeline_function)

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
