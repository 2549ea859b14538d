"""What otel_ml dropped or could not do, counted and logged once.

Nothing otel_ml does during inference may raise into the caller. Every place that swallows a
problem calls :func:`dropped` instead, which increments a process-wide counter (exported as
``otel_ml.dropped`` with ``otel_ml.reason`` and ``otel_ml.signal``) and logs the first
occurrence of each reason at WARNING, so the problem is visible without flooding the log.
"""

from __future__ import annotations

import logging
import threading

_logger = logging.getLogger("otel_ml")

# Reasons are a closed, code-defined set (never data), so the counter's cardinality is bounded.
_MAX_REASONS = 64

_lock = threading.Lock()
_counts: dict[tuple[str, str], int] = {}
_logged: set[str] = set()


def dropped(reason: str, signal: str = "metrics", n: int = 1, detail: object = None) -> None:
    """Count ``n`` items dropped for ``reason`` and log the first time ``reason`` happens."""
    key = (reason, signal)
    with _lock:
        if key not in _counts and len(_counts) >= _MAX_REASONS:
            key = ("other", signal)
        _counts[key] = _counts.get(key, 0) + n
        first = reason not in _logged
        if first:
            _logged.add(reason)
    if first:
        try:
            _logger.warning(
                "otel_ml dropped %s %s (reason=%s)%s; further drops are counted in otel_ml.dropped",
                n,
                signal,
                reason,
                f": {detail!r}" if detail is not None else "",
            )
        except Exception:
            pass


def log_once(key: str, message: str, *args: object, level: int = logging.WARNING) -> None:
    """Log ``message`` the first time ``key`` is seen in this process."""
    with _lock:
        if key in _logged:
            return
        _logged.add(key)
    try:
        _logger.log(level, message, *args)
    except Exception:
        pass


def snapshot() -> dict[tuple[str, str], int]:
    """Cumulative drop counts by (reason, signal) since start (or the last :func:`reset`)."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Forget counts and the log-once memory (for tests)."""
    with _lock:
        _counts.clear()
        _logged.clear()
