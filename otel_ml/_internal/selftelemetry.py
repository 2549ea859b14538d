"""What otel_ml dropped or could not do, counted and logged once.

Nothing otel_ml does during inference may raise into the caller. Every place that swallows a
problem calls :meth:`SelfTelemetry.dropped` instead, which increments a counter (exported as
``otel_ml.dropped`` with ``otel_ml.reason`` and ``otel_ml.signal``) and logs the first
occurrence of each reason at WARNING, so the problem is visible without flooding the log.

Counters live in a :class:`SelfTelemetry` registry, not in module globals, so that two sets of
providers in one process - a user's test capture beside another, or beside production - do not
count into each other (prometheus/client_python's lesson: a fresh registry per test). Each SDK
``MeterProvider`` exports the registry bound to it (:func:`bind`); one that has none exports
:data:`DEFAULT`, as does code that runs outside any model (``configure()``, the log handler).

Strict mode (``OTEL_ML_STRICT=true``, or ``SelfTelemetry(strict=True)`` as ``otel_ml.testing``'s
capture uses) is for development: every guard that catches an exception otel_ml did not anticipate
reports it through :meth:`SelfTelemetry.guard`, which counts it and then re-raises it to the caller
instead of swallowing it. Invalid input that otel_ml recognises (NaN or out-of-range confidences,
unknown labels, wrong shapes, unhashable ids) is checked explicitly, not caught, so it stays counted
under its own reason and never raises, in strict mode too: it is what production traffic looks like.
"""

from __future__ import annotations

import logging
import threading
import weakref

from otel_ml._internal import env, forksafe

_logger = logging.getLogger("otel_ml")

# Reasons are a closed, code-defined set (never data), so the counter's cardinality is bounded.
_MAX_REASONS = 64

# An internal error is a bug in otel_ml caught before it reached the caller; tests assert none.
INTERNAL_ERROR = "internal_error"


class SelfTelemetry:
    """One registry of drop counts by (reason, signal), with log-once memory."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        """Re-raise what :meth:`guard` catches (also on for every registry with ``OTEL_ML_STRICT``)."""
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")
        self._counts: dict[tuple[str, str], int] = {}
        self._logged: set[str] = set()

    def dropped(self, reason: str, signal: str = "metrics", n: int = 1, detail: object = None) -> None:
        """Count ``n`` items dropped for ``reason`` and log the first time ``reason`` happens."""
        key = (reason, signal)
        with self._lock:
            if key not in self._counts and len(self._counts) >= _MAX_REASONS:
                key = ("other", signal)
            self._counts[key] = self._counts.get(key, 0) + n
            first = reason not in self._logged
            if first:
                self._logged.add(reason)
        if first:
            try:
                _logger.warning(
                    "otel_ml dropped %s %s (reason=%s)%s; further drops are counted in otel_ml.dropped",
                    n,
                    signal,
                    reason,
                    f": {detail!r}"[:300] if detail is not None else "",
                )
            except Exception:
                pass

    def guard(self, exc: BaseException, signal: str = "metrics", reason: str = INTERNAL_ERROR) -> None:
        """A guard caught ``exc``, which otel_ml did not anticipate: count it, re-raise it in strict mode.

        Call it from the ``except`` block of every guard that keeps otel_ml's failures from the
        caller; ``reason`` defaults to ``internal_error`` (tests assert none are counted).
        """
        self.dropped(reason, signal, 1, detail=exc)
        if self.strict or env.flag(env.STRICT):
            raise exc

    def log_once(self, key: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        """Log ``message`` the first time ``key`` is seen by this registry."""
        with self._lock:
            if key in self._logged:
                return
            self._logged.add(key)
        try:
            _logger.log(level, message, *args)
        except Exception:
            pass

    def snapshot(self) -> dict[tuple[str, str], int]:
        """Cumulative drop counts by (reason, signal) since creation (or the last :meth:`reset`)."""
        with self._lock:
            return dict(self._counts)

    def count(self, reason: str | None = None, signal: str | None = None) -> int:
        """Items dropped for ``reason`` (any when None) on ``signal`` (any when None)."""
        with self._lock:
            return sum(n for (r, s), n in self._counts.items()
                       if (reason is None or r == reason) and (signal is None or s == signal))

    def reset(self) -> None:
        """Forget counts and the log-once memory."""
        with self._lock:
            self._counts.clear()
            self._logged.clear()



DEFAULT = SelfTelemetry()
"""The process's registry: what a provider without a registry of its own exports."""

_BOUND: weakref.WeakKeyDictionary[object, SelfTelemetry] = weakref.WeakKeyDictionary()
_BOUND_LOCK = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_BOUND_LOCK")


def bind(provider: object, registry: SelfTelemetry) -> None:
    """Make ``registry`` the one that monitors on ``provider`` count into and that it exports."""
    with _BOUND_LOCK:
        _BOUND[provider] = registry


def for_provider(provider: object | None) -> SelfTelemetry:
    """The registry bound to ``provider``, else :data:`DEFAULT`."""
    if provider is None:
        return DEFAULT
    try:
        return _BOUND.get(provider, DEFAULT)
    except TypeError:  # a provider that cannot be weakly referenced
        return DEFAULT



# Module-level shortcuts for code that runs outside any model (setup, the log handler, CLIs).
def dropped(reason: str, signal: str = "metrics", n: int = 1, detail: object = None) -> None:
    DEFAULT.dropped(reason, signal, n, detail)


def guard(exc: BaseException, signal: str = "metrics", reason: str = INTERNAL_ERROR) -> None:
    DEFAULT.guard(exc, signal, reason)


def log_once(key: str, message: str, *args: object, level: int = logging.WARNING) -> None:
    DEFAULT.log_once(key, message, *args, level=level)
