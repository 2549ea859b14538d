"""Turning values from data into bounded, well-formed label values."""

from __future__ import annotations

import math
import threading
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
