"""A user's ``clock=`` that raises or returns junk is counted as clock_error, never an otel_ml bug.

CI's fuzz stage found ``ModelMonitor(..., clock=type)``: accepted (it is callable), then every keyed
prediction and outcome called ``type()`` inside the outcome tracker and counted ``internal_error``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from otel_ml import DriftTracker, OutcomeTracker, ReferenceProfile
from otel_ml._internal.clock import CLOCK_ERROR, GuardedClock, guarded
from otel_ml._internal.selftelemetry import INTERNAL_ERROR, SelfTelemetry
from otel_ml.testing import TelemetryCapture


def _raises() -> float:
    raise OSError("the clock's source went away")


BROKEN: dict[str, Callable[[], Any]] = {
    "type": type,  # callable, so accepted; type() raises TypeError
    "raises": _raises,
    "str": lambda: "5",
    "none": lambda: None,
    "bool": lambda: True,
    "nan": lambda: math.nan,
    "inf": lambda: -math.inf,
    "past float range": lambda: 10**400,
    "complex": lambda: 1j,
}


@pytest.mark.parametrize("clock", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_clock_is_counted_and_the_monitor_keeps_working(cap: TelemetryCapture,
                                                                 clock: Callable[[], Any]) -> None:
    """Strict capture (a caught bug re-raises): drift and quality still work, on time.monotonic."""
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=500)})
    monitor = cap.monitor("clocked", version="1", reference=profile, clock=clock)
    with monitor.inference(prediction_id="a", features={"x": rng.normal(size=1)}) as inf:
        inf.record(predictions=[1], confidence=[0.9])
    monitor.record_outcome("a", 1)
    assert monitor.quality().n == 1
    assert monitor.quality().accuracy == 1.0
    assert monitor.drift()["x"].n == 1
    cap.metrics()  # the observable callbacks evaluate both windows on the clock too
    assert cap.dropped(INTERNAL_ERROR) == 0
    assert cap.dropped(CLOCK_ERROR, "metrics") >= 3
    assert cap.counter("otel_ml.dropped", **{"otel_ml.reason": CLOCK_ERROR}) >= 3


class Script:
    """Returns (or raises) each scripted reading in turn."""

    def __init__(self, *readings: Any) -> None:
        self._readings: Iterator[Any] = iter(readings)

    def __call__(self) -> Any:
        r = next(self._readings)
        if isinstance(r, BaseException):
            raise r
        return r


def test_bad_readings_repeat_the_last_good_one() -> None:
    """Time stands still over bad readings instead of jumping to another clock's scale."""
    tel = SelfTelemetry()
    clock = guarded(Script(0.0, 10, RuntimeError("x"), "11", math.nan, 10**400, np.float32(20.5), np.int64(30)), tel)
    assert [clock() for _ in range(8)] == [0.0, 10.0, 10.0, 10.0, 10.0, 10.0, 20.5, 30.0]
    assert tel.count(CLOCK_ERROR) == 4
    assert tel.count(INTERNAL_ERROR) == 0


def test_before_any_good_reading_monotonic_stands_in() -> None:
    tel = SelfTelemetry()
    before = time.monotonic()
    reading = guarded(type, tel)()
    assert before <= reading <= time.monotonic()
    assert tel.count(CLOCK_ERROR) == 1


def test_stdlib_clocks_are_not_wrapped() -> None:
    """The default clock costs nothing extra on the hot path; a guarded clock is not guarded twice."""
    tel = SelfTelemetry()
    assert guarded(time.monotonic, tel) is time.monotonic
    wrapped = guarded(lambda: 1.0, tel)
    assert isinstance(wrapped, GuardedClock)
    assert guarded(wrapped, tel) is wrapped


def test_a_failing_clock_does_not_expire_pending_predictions() -> None:
    """Last good reading, not monotonic: a prediction made at t=0 with a 5 s TTL still joins."""
    tel = SelfTelemetry()
    tracker = OutcomeTracker(ttl_s=5.0, clock=Script(0.0, OSError("gone"), OSError("gone"), OSError("gone")),
                             selftelemetry=tel)
    tracker.remember("a", 1)
    tracker.record("a", 1)
    assert tracker.unmatched == {"unknown": 0, "expired": 0}
    assert tracker.evaluate().n == 1
    assert tel.count(CLOCK_ERROR) >= 1
    assert tel.count(INTERNAL_ERROR) == 0


def test_drift_tracker_windows_survive_a_failing_clock() -> None:
    tel = SelfTelemetry()
    rng = np.random.default_rng(1)
    profile = ReferenceProfile.from_data({"x": rng.normal(size=1000)})
    readings = iter([0.0, 1.0])

    def flaky() -> float:
        return next(readings)  # StopIteration from the third reading on

    tracker = DriftTracker(profile, clock=flaky, selftelemetry=tel)
    tracker.update({"x": rng.normal(size=200)})
    tracker.update({"x": rng.normal(size=200)})
    tracker.update({"x": rng.normal(size=200)})
    assert tracker.evaluate()["x"].n == 600
    assert tel.count(CLOCK_ERROR) >= 1
    assert tel.count(INTERNAL_ERROR) == 0
