"""Turning values from data into bounded, well-formed label values."""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any

from otel_ml._internal import forksafe, names, selftelemetry

_MAX_LABEL_LEN = 64


def label_of(value: Any) -> str | None:
    """A short string for a class label taken from model output, or None if it is not one.

    Accepts str, bool, int and their numpy scalar forms; floats only when integral (a class id
    stored as 3.0). Anything else (None, NaN, containers, objects) is not a class label.
    """
    if isinstance(value, str):
        return value[:_MAX_LABEL_LEN]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return None
    item = getattr(value, "item", None)  # numpy scalars
    if item is not None and getattr(value, "ndim", None) == 0:
        try:
            return label_of(item())
        except Exception:
            return None
    return None


class BoundedLabels:
    """Maps raw class values to at most ``limit`` label values; the rest become ``other``.

    With ``allowed`` given, only those labels are kept (an unknown class is counted as dropped
    with reason ``unknown_class``); otherwise the first ``limit`` distinct labels seen are kept
    (later ones are counted with reason ``label_cardinality_cap``).
    """

    def __init__(self, limit: int, allowed: frozenset[str] | None = None,
                 registry: selftelemetry.SelfTelemetry | None = None) -> None:
        self._registry = registry or selftelemetry.DEFAULT
        self._limit = limit
        self._allowed = allowed
        # raw value -> (label, reason it went to ``other`` or None); bounded.
        self._seen: dict[Any, tuple[str, str | None]] = {}
        self._distinct: set[str] = set()
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")

    def get(self, value: Any) -> str | None:
        try:
            hit = self._seen.get(value)
        except TypeError:  # unhashable
            hit = None
        if hit is None:
            hit = self._resolve(value)
            if hit is None:
                return None
        label, reason = hit
        if reason is not None:
            self._registry.dropped(reason, "metrics", detail=value)
        return label

    def _resolve(self, value: Any) -> tuple[str, str | None] | None:
        label = label_of(value)
        if label is None:
            self._registry.dropped("invalid_class_label", "metrics", detail=type(value).__name__)
            return None
        reason: str | None = None
        with self._lock:
            if self._allowed is not None:
                if label not in self._allowed:
                    reason, label = "unknown_class", names.OVERFLOW_VALUE
            elif label not in self._distinct:
                if len(self._distinct) >= self._limit:
                    reason, label = "label_cardinality_cap", names.OVERFLOW_VALUE
                else:
                    self._distinct.add(label)
            if len(self._seen) < 4 * self._limit:
                try:
                    self._seen[value] = (label, reason)
                except TypeError:
                    pass
        return label, reason


_VALUES_LOCK = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_VALUES_LOCK")


class BoundedValues:
    """The first ``limit`` distinct values of one metric attribute pass; later ones become ``overflow``.

    Every value mapped to ``overflow`` is counted in ``otel_ml.dropped`` with reason ``reason``
    (``<attribute>_cardinality_cap``) and logged once. Memory: at most ``limit`` strings. Values
    are truncated to ``max_len`` characters first.
    """

    __slots__ = ("_kept", "_registry", "limit", "max_len", "overflow", "reason")

    def __init__(self, limit: int, reason: str, registry: selftelemetry.SelfTelemetry | None = None,
                 overflow: str = names.OVERFLOW_VALUE, max_len: int = 128) -> None:
        self.limit = limit
        self.reason = reason
        self.overflow = overflow
        self.max_len = max_len
        self._registry = registry or selftelemetry.DEFAULT
        self._kept: set[str] = set()

    def get(self, raw: Any) -> str:
        value: str = raw if type(raw) is str else str(raw)
        if value in self._kept:  # the hot path: a value seen before, no lock
            return value
        value = value[:self.max_len]
        with _VALUES_LOCK:  # only new values take it: one lock for all, no per-instance fork hook
            if value in self._kept:
                return value
            if len(self._kept) < self.limit:
                self._kept.add(value)
                return value
        self._registry.dropped(self.reason, "metrics", detail=value)
        return self.overflow


class IdentityCaps:
    """Caps on the model identity attributes of the monitors counting into one registry.

    ``ml.model.name``: :data:`names.MAX_MODEL_NAMES` per registry; ``ml.model.version`` and
    ``ml.model.variant``: :data:`names.MAX_MODEL_VERSIONS` / :data:`names.MAX_MODEL_VARIANTS` per
    model name. A monitor past a cap keeps its real identity on spans and logs, but its metrics
    carry ``other`` and merge with every other overflowing monitor of that model into one series.
    """

    def __init__(self, registry: selftelemetry.SelfTelemetry) -> None:
        self._registry = registry
        self._names = BoundedValues(names.MAX_MODEL_NAMES, "model_name_cardinality_cap", registry)
        self._versions: dict[str, BoundedValues] = {}
        self._variants: dict[str, BoundedValues] = {}
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")

    def attributes(self, name: str, version: str, variant: str | None) -> dict[str, str]:
        """The metric attributes of a monitor ``(name, version, variant)``, capped."""
        capped_name = self._names.get(name)
        with self._lock:
            versions = self._versions.get(capped_name)
            if versions is None:  # at most MAX_MODEL_NAMES + 1 keys
                versions = self._versions[capped_name] = BoundedValues(
                    names.MAX_MODEL_VERSIONS, "model_version_cardinality_cap", self._registry)
                self._variants[capped_name] = BoundedValues(
                    names.MAX_MODEL_VARIANTS, "model_variant_cardinality_cap", self._registry)
            variants = self._variants[capped_name]
        attrs = {names.MODEL_NAME: capped_name, names.MODEL_VERSION: versions.get(version)}
        if variant:
            attrs[names.MODEL_VARIANT] = variants.get(variant)
        return attrs


_IDENTITY: weakref.WeakKeyDictionary[selftelemetry.SelfTelemetry, IdentityCaps] = weakref.WeakKeyDictionary()
_IDENTITY_LOCK = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_IDENTITY_LOCK")


def identity_caps(registry: selftelemetry.SelfTelemetry) -> IdentityCaps:
    """The identity caps of ``registry`` (one per registry, so two test captures never share caps)."""
    with _IDENTITY_LOCK:
        caps = _IDENTITY.get(registry)
        if caps is None:
            caps = _IDENTITY[registry] = IdentityCaps(registry)
        return caps


class GenAICaps:
    """Caps on one monitor's GenAI metric attributes (spans keep the real values)."""

    def __init__(self, registry: selftelemetry.SelfTelemetry) -> None:
        self._by_key = {
            names.GENAI_OPERATION_NAME: BoundedValues(names.MAX_GENAI_OPERATIONS, "genai_operation_cardinality_cap",
                                                      registry),
            names.GENAI_REQUEST_MODEL: BoundedValues(names.MAX_GENAI_MODELS, "genai_request_model_cardinality_cap",
                                                     registry),
            names.GENAI_PROVIDER_NAME: BoundedValues(names.MAX_GENAI_PROVIDERS, "genai_provider_cardinality_cap",
                                                     registry),
        }
        self._error_types = BoundedValues(names.MAX_ERROR_TYPES, "error_type_cardinality_cap", registry,
                                          overflow=names.ERROR_TYPE_OVERFLOW)

    def metric_attributes(self, attrs: dict[str, Any]) -> dict[str, Any]:
        out = dict(attrs)
        for key, values in self._by_key.items():
            if key in out:
                out[key] = values.get(out[key])
        return out

    def error_type(self, error_type: str) -> str:
        return self._error_types.get(error_type)


_GENAI: weakref.WeakKeyDictionary[Any, GenAICaps] = weakref.WeakKeyDictionary()


def genai_caps(ctx: Any, registry: selftelemetry.SelfTelemetry) -> GenAICaps:
    """The GenAI caps of one model context (made on its first generation)."""
    caps = _GENAI.get(ctx)
    if caps is None:
        with _IDENTITY_LOCK:
            caps = _GENAI.get(ctx)
            if caps is None:
                caps = _GENAI[ctx] = GenAICaps(registry)
    return caps
