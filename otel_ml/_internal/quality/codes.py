"""Bounded table of class labels as small int codes.

Pending predictions and window counts hold a label as its code (a number in a numpy column)
instead of the label object, so a million pending predictions of a 3-class model share 3 label
objects. Labels compare as dict keys do (``1 == 1.0 == True`` is one class, as ``==`` in the
scoring always was). At most ``max_classes`` labels get codes; every later one shares the
overflow code, reported as :data:`names.OVERFLOW_VALUE`, so counts stay bounded when a caller
passes ids or free text where classes belong.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from otel_ml._internal import names

BAD = -1  # a value that cannot be a class: None, NaN, unhashable
NEW = -2  # a usable label without a code yet (from :meth:`ClassCodes.lookup_many`)


class ClassCodes:
    def __init__(self, max_classes: int, reserved: Sequence[Hashable] = ()) -> None:
        self.max_classes = max_classes
        self.overflow = max_classes
        self._codes: dict[object, int] = {}
        self._labels: list[object] = []
        for label in reserved:
            self.encode(label)

    @property
    def size(self) -> int:
        """Number of distinct codes, the overflow code included."""
        return self.max_classes + 1

    def encode(self, value: object) -> int:
        """The code of ``value``, giving it one if there is room."""
        code = self._lookup(value)
        if code != NEW:
            return code
        code = len(self._labels)
        self._codes[value] = code
        self._labels.append(value)
        return code

    def encode_many(self, values: list[Any]) -> npt.NDArray[np.int64]:
        codes = self.lookup_many(values)
        new = np.flatnonzero(codes == NEW).tolist()
        if new:
            fresh: dict[Any, int] = {}
            for i in new:
                v = values[i]
                code = fresh.get(v)
                if code is None:
                    code = fresh[v] = self.encode(v)
                codes[i] = code
        return codes

    def lookup(self, value: object) -> int:
        """The code of ``value`` without giving it one (:data:`NEW` if it has none; :data:`BAD`)."""
        return self._lookup(value)

    def lookup_many(self, values: list[Any]) -> npt.NDArray[np.int64]:
        """Codes without giving new labels one (:data:`NEW` for those; :data:`BAD` if unusable).

        Lets a caller validate labels first and hand out codes only to the ones it keeps, so
        labels of rows that are dropped cannot use up the table.
        """
        try:
            found: list[int | None] = list(map(self._codes.get, values))
        except TypeError:  # an unhashable value somewhere: take the per-value path
            return np.fromiter(map(self._lookup, values), dtype=np.int64, count=len(values))
        # A label seen before is the common case; None marks new or unusable values, which are
        # looked at once per distinct value (a batch of a new class repeats it many times).
        if None in found:
            seen: dict[Any, int] = {}
            for i, c in enumerate(found):
                if c is None:
                    v = values[i]
                    code = seen.get(v)
                    if code is None:
                        code = seen[v] = self._lookup(v)
                    found[i] = code
        return np.fromiter(found, dtype=np.int64, count=len(values))

    def decode(self, code: int) -> object:
        return self._labels[code] if 0 <= code < len(self._labels) else names.OVERFLOW_VALUE

    def _lookup(self, value: object) -> int:
        try:
            code = self._codes.get(value)
        except TypeError:  # unhashable
            return BAD
        if code is not None:
            return code
        if not usable(value):
            return BAD
        return self.overflow if len(self._labels) >= self.max_classes else NEW


def usable(value: object) -> bool:
    """Whether a hashable ``value`` can be a class label (not None, not NaN-like)."""
    if value is None:
        return False
    try:
        # NaN (float, numpy) is never equal to itself and would get a new code each time.
        return bool(value == value)
    except Exception:  # pandas.NA and friends refuse to be truth-tested
        return False
