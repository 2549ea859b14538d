"""A user's ``clock=`` that cannot break the model it times.

``ModelMonitor``, ``DriftTracker`` and ``OutcomeTracker`` take a ``clock`` (seconds) that drives
their windows and the outcome TTL. It is the user's code, called from inside ours on every keyed
prediction, outcome and evaluation. One that raises or returns something that is not a finite real
number (``clock=type``, a clock reading a file that went away, one returning a string or NaN) must
not become otel_ml's own error, or the windows' arithmetic fail further in: each bad reading is
counted as ``clock_error`` (logged once) and replaced by the last good reading, so time stands still
instead of jumping between the user's clock and ours. Before any good reading, ``time.monotonic()``
stands in. The stdlib's own clocks (``time.monotonic``, the default, ``time.perf_counter`` and
``time.time``) are used as they are.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable

from otel_ml._internal.selftelemetry import SelfTelemetry

CLOCK_ERROR = "clock_error"

_TRUSTED = (time.monotonic, time.perf_counter, time.time)
_isfinite = math.isfinite


class GuardedClock:
    """Call ``clock``; on an exception or a reading that is not a finite real, count and reuse."""

    __slots__ = ("_last", "_telemetry", "clock")

    def __init__(self, clock: Callable[[], float], telemetry: SelfTelemetry) -> None:
        self.clock = clock
        self._telemetry = telemetry
        self._last: float | None = None

    def __call__(self) -> float:
        try:
            now = self.clock()
            if type(now) is float and _isfinite(now):  # the usual reading: no ABC check
                self._last = now
                return now
            if isinstance(now, numbers.Real) and not isinstance(now, bool):
                reading = float(now)  # an int past float range raises OverflowError here
                if _isfinite(reading):
                    self._last = reading
                    return reading
            detail: object = f"clock returned {type(now).__name__}"
        except Exception as exc:  # the user's code: counted under its own reason, never internal_error
            detail = exc
        self._telemetry.dropped(CLOCK_ERROR, "metrics", detail=detail)
        last = self._last
        return last if last is not None else time.monotonic()


def guarded(clock: Callable[[], float], telemetry: SelfTelemetry) -> Callable[[], float]:
    """``clock`` as it is when it is one of the stdlib's or already guarded, else a :class:`GuardedClock`."""
    if isinstance(clock, GuardedClock) or any(clock is c for c in _TRUSTED):
        return clock
    return GuardedClock(clock, telemetry)
