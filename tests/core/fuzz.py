"""Shared pieces of the fuzz tests (tests/core/test_fuzz_*.py): hostile values and the zero-bug check.

Each fuzz test runs otel_ml in its *default* (non-strict) mode, as production does, and asserts
after every generated case that (a) no exception escaped into the caller and (b) no guard caught
an exception otel_ml did not anticipate: ``internal_error`` and the other catch-all reasons below
stay at zero. Invalid input counted under its own reason (``invalid_confidence``,
``drift_bad_shape``, ...) is what the package is meant to do and is allowed.

``FUZZ_EXAMPLES`` is the number of cases per entry point (10 000; ``OTEL_ML_TEST_FUZZ_EXAMPLES`` overrides
it, e.g. ``100`` for a quick local run or ``100000`` for a long one).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from otel_ml._internal import selftelemetry

FUZZ_EXAMPLES = int(os.environ.get("OTEL_ML_TEST_FUZZ_EXAMPLES", "10000"))
# Every entry point runs the full count, those that read and write files or build the whole CLI
# parser per case (10-30 ms a case on a loaded 2-core machine) included: the fuzz stage of
# scripts/test runs them apart from the main suite (about 6.5 minutes on 2 cores).
PROFILE_FILE_EXAMPLES = FUZZ_EXAMPLES
CLI_URL_EXAMPLES = FUZZ_EXAMPLES
CLI_FILE_EXAMPLES = FUZZ_EXAMPLES

# Reasons counted by guards that catch *any* exception (see SelfTelemetry.guard): a count under
# one of these is an exception otel_ml did not anticipate - a bug found, not a pass.
BUG_REASONS = (selftelemetry.INTERNAL_ERROR, "drift_update_error", "prediction_log_error", "invalid_output",
               "collect_callback_error")


def fuzz_settings(examples: int = FUZZ_EXAMPLES) -> Any:
    # No shrink phase: each value is already small and readable, and shrinking past huge arrays can take
    # many minutes - a failure must stay as cheap as a pass in CI.
    return settings(max_examples=examples, deadline=None, database=None, print_blob=True,
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


def bug_counts(registry: selftelemetry.SelfTelemetry) -> dict[str, int]:
    return {r: n for r in BUG_REASONS if (n := registry.count(r))}


@contextmanager
def no_bug(registry: selftelemetry.SelfTelemetry) -> Iterator[None]:
    """The block lets no exception out (the ``with`` does that) and adds no count under BUG_REASONS."""
    before = bug_counts(registry)
    yield
    after = bug_counts(registry)
    assert after == before, f"otel_ml caught its own bug: {after} (before the case: {before})"


class Weird:
    """A user object that is neither a number nor a string (but does not raise on use)."""

    def __repr__(self) -> str:
        return "Weird()"


_HUGE = np.zeros((20_000, 3))
_HUGE_1D = np.linspace(0.0, 1.0, 50_000)
_RAGGED = np.empty(3, dtype=object)
_RAGGED[:] = [[1.0, 2.0], [3.0], "x"]

# Pre-built hostile values: one draw each (cheap), so most of a case's time goes to otel_ml.
HOSTILE: list[Any] = [
    None, True, False, 0, 1, -1, 2**63, -(2**70), 10**400, 0.0, -0.0, 0.5, 1.0, 1.5, -0.1, 1e308, 5e-324,
    float("nan"), float("inf"), float("-inf"), math.pi, "", " ", "a", "fraud", "ok", "0", "1", "nan", "\x00", "é" * 300,
    "\ud800", b"", b"\xff\xfe", bytearray(b"x"), 1 + 2j, Ellipsis, NotImplemented, object(), Weird(), type,
    print, range(3), range(10**12), slice(1, 2), {}, {"a": 1}, {1: [2]}, {"predictions": [1], "confidence": 2},
    [], [None], [float("nan")], [1, "a", None], [[1, 2], [3]], [[[]]], (), (1,), {1, 2}, frozenset(),
    np.float32("nan"), np.float64("inf"), np.int64(2**62), np.uint64(2**64 - 1), np.bool_(True), np.str_("a"),
    np.bytes_(b"a"), np.datetime64("2020-01-01"), np.timedelta64(1, "s"), np.float16(6e4), np.complex64(1j),
    np.zeros((0,)), np.zeros((0, 3)), np.zeros((2, 0)), np.zeros((1, 1, 1)), np.array(3.0), np.array("x"),
    np.array([[np.nan, np.inf], [-np.inf, 1e308]]), np.array(["a", "b"]), np.array([1, 2], dtype=np.uint8),
    np.array([True, False]), _RAGGED, _HUGE, _HUGE_1D, np.array([1 + 2j]),
    np.array(["2020-01-01"], dtype="datetime64[D]"),
    np.ma.masked_array([1.0, 2.0], mask=[True, False]), np.array([0.2, 0.8]), np.array([[0.1, 0.9], [0.6, 0.4]]),
    np.array([0, 1, 1]), np.array(["ok", "fraud", "other"], dtype=object), np.array([None, 1.0], dtype=object),
    np.arange(20_000) % 7, np.full(1000, "x" * 100), np.array([2**63 - 1], dtype=np.int64),
]
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.sampled_from(HOSTILE), st.integers(), floats, st.text(max_size=6))
arrays = st.one_of(
    st.lists(floats, max_size=6).map(lambda v: np.array(v, dtype=np.float64)),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=2), st.none()), max_size=6)
    .map(lambda v: np.array(v, dtype=object)),
)
junk: st.SearchStrategy[Any] = st.one_of(
    scalars, arrays,
    st.lists(st.one_of(st.sampled_from(HOSTILE), floats, st.integers(-3, 3)), max_size=5),
    st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 3)), st.sampled_from(HOSTILE), max_size=3),
    st.sampled_from(HOSTILE).map(lambda v: iter([v, v])),
)
