"""Reading a caller's lazy iterable (a range, a generator) up to a bound, so that something like
``range(10**12)`` handed to otel_ml costs a bounded amount of memory instead of the host's."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

MAX_ITERABLE_ROWS = 1_000_000
"""Rows read from one iterable that is not a list, tuple or array; past it the input is refused."""


def read_bounded(values: Iterable[Any]) -> list[Any] | None:
    """The items of ``values``, or None when it has more than :data:`MAX_ITERABLE_ROWS` (only
    that many plus one are ever read). What iterating raises propagates: callers decide what to count."""
    out = list(itertools.islice(values, MAX_ITERABLE_ROWS + 1))
    return out if len(out) <= MAX_ITERABLE_ROWS else None
