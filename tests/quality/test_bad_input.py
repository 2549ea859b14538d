"""What the tracker cannot use is counted (on its own registry) and never raised; bad constructor
arguments fail at once, naming the argument; the tracker imports nothing that imports it back."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from otel_ml._internal.quality import OutcomeTracker
from otel_ml._internal.selftelemetry import INTERNAL_ERROR, SelfTelemetry


def _counts(tel: SelfTelemetry) -> dict[str, int]:
    out: dict[str, int] = {}
    for (reason, signal), n in tel.snapshot().items():
        assert signal == "outcomes"
        out[reason] = out.get(reason, 0) + n
    return out


def test_mismatched_lengths_keep_nothing(tel: SelfTelemetry) -> None:
    """Columns of different lengths: no row kept or joined, the longest length counted."""
    t = OutcomeTracker(selftelemetry=tel)
    t.remember_many(["a", "b", "c"], [1, 0])
    t.remember_many(["a", "b"], [1, 0], scores=[0.5])
    t.remember_many(np.array(["a", "b"]), np.array([1, 0]), confidences=np.array([0.5, 0.5, 0.5, 0.5]))
    assert t.pending == 0
    t.remember_many(["a", "b"], [1, 0])
    t.record_many(["a", "b"], [1])
    assert t.pending == 2 and t.evaluate().n == 0
    assert _counts(tel) == {"prediction_ids_length_mismatch": 3 + 2 + 4 + 2}
    assert tel.count(INTERNAL_ERROR) == 0


def test_duplicate_ids_in_a_batch_keep_the_first(tel: SelfTelemetry) -> None:
    """Repeated ids within one remember_many: the first row is kept, the others counted."""
    t = OutcomeTracker(selftelemetry=tel)
    t.remember_many(["a", "b", "a", "c", "a"], [1, 0, 0, 1, 0])
    assert t.pending == 3
    t.record_many(["a", "b", "c"], [1, 0, 1])
    r = t.evaluate()
    assert (r.n, r.accuracy) == (3, 1.0)  # "a" joined its first prediction, 1
    assert _counts(tel) == {"duplicate_prediction_id": 2}
    assert tel.count(INTERNAL_ERROR) == 0


def test_unhashable_ids_are_counted(tel: SelfTelemetry) -> None:
    """Unhashable ids: skipped when remembered, unknown when recorded; counted either way."""
    t = OutcomeTracker(selftelemetry=tel)
    t.remember_many([["x"], "y", {"z": 1}], [1, 1, 1])  # type: ignore[list-item]
    t.remember(["x"], 1)  # type: ignore[arg-type]
    assert t.pending == 1
    t.record_many([["x"], "y"], [1, 1])  # type: ignore[list-item]
    t.record({"z"}, 1)  # type: ignore[arg-type]  # (the store is empty by now)
    assert t.unmatched == {"unknown": 2, "expired": 0}
    assert t.evaluate().n == 1
    assert _counts(tel) == {"unhashable_prediction_id": 2 + 1 + 1 + 1}
    assert tel.count(INTERNAL_ERROR) == 0


def test_unhashable_id_with_only_tombstones_left(tel: SelfTelemetry) -> None:
    """An unhashable id looked up when only expired ids remain is unknown and counted, not an error."""
    now = [0.0]
    t = OutcomeTracker(ttl_s=1.0, clock=lambda: now[0], selftelemetry=tel)
    t.remember("a", 1)
    now[0] = 5.0
    t.record_many([["x"], "a"], [1, 1])  # type: ignore[list-item]
    assert t.unmatched == {"unknown": 1, "expired": 1}
    assert _counts(tel) == {"unhashable_prediction_id": 1}
    assert tel.count(INTERNAL_ERROR) == 0


def test_missing_labels_are_counted_and_keep_their_prediction(tel: SelfTelemetry) -> None:
    """None and NaN labels are counted as outcome_bad_value; the prediction waits for a usable label."""
    t = OutcomeTracker(selftelemetry=tel)
    t.remember_many(["a", "b", "c"], [1, 0, 1])
    t.record_many(["a", "b", "c"], [None, float("nan"), 1])
    t.record("a", np.float64("nan"))
    assert t.pending == 2 and t.evaluate().n == 1
    t.record_many(["a", "b"], [1, 1])
    r = t.evaluate()
    assert r.n == 3 and r.accuracy == pytest.approx(2 / 3)
    assert t.unmatched == {"unknown": 0, "expired": 0}
    assert _counts(tel) == {"outcome_bad_value": 3}
    assert tel.count(INTERNAL_ERROR) == 0


def test_unusable_predictions_and_scores_are_counted(tel: SelfTelemetry) -> None:
    """None/NaN classes are not kept; a score or confidence that is not a number is kept as missing."""
    t = OutcomeTracker(selftelemetry=tel)
    t.remember("a", None)
    t.remember("b", float("nan"), score=0.3)
    t.remember("c", 1, score="high", confidence=object())  # type: ignore[arg-type]
    t.remember_many(["d", "e", "f"], [None, 0, 1], scores=[0.9, None, "x"],  # type: ignore[list-item]
                    confidences=[0.5, 0.5, None])
    assert t.pending == 3  # c, e, f
    t.record_many(["a", "b", "c", "e", "f"], [1, 1, 1, 0, 1])
    assert t.unmatched == {"unknown": 2, "expired": 0}
    r = t.evaluate()
    assert (r.n, r.accuracy, r.roc_auc) == (3, 1.0, None)  # no row kept a usable score
    assert _counts(tel) == {"outcome_bad_prediction": 3, "outcome_bad_score": 2, "outcome_bad_confidence": 1}
    assert tel.count(INTERNAL_ERROR) == 0


def test_regression_values_must_be_finite(tel: SelfTelemetry) -> None:
    """Regression: non-finite or non-numeric predictions and targets are counted, finite ones scored."""
    t = OutcomeTracker("regression", selftelemetry=tel)
    t.remember_many([1, 2, 3, 4], [1.0, math.inf, "abc", 4.0])
    t.remember(5, None)
    t.record_many([1, 4], [float("-inf"), 6.0])
    t.record(1, "3")  # a numeric string is a number, as float() says
    r = t.evaluate()
    assert r.n == 2 and r.mae == pytest.approx((2.0 + 2.0) / 2)
    assert _counts(tel) == {"outcome_bad_prediction": 3, "outcome_bad_value": 1}
    assert tel.count(INTERNAL_ERROR) == 0


@pytest.mark.parametrize("bad", [5, None, "abc", b"ab", {"a": 1}, np.zeros((2, 2)), np.float64(1.0)])
def test_batches_that_are_not_columns_are_counted(tel: SelfTelemetry, bad: Any) -> None:
    """A batch argument that is not a 1-D sequence is counted as outcome_bad_input."""
    t = OutcomeTracker(selftelemetry=tel)
    t.remember_many(bad, [1, 2])
    no_column = bad if bad is not None else 5  # scores=None means "no scores", which is fine
    t.remember_many(["a", "b"], [1, 0], scores=no_column)  # type: ignore[arg-type]
    t.record_many(["a"], bad)
    assert t.pending == 0
    assert _counts(tel) == {"outcome_bad_input": 3}
    assert tel.count(INTERNAL_ERROR) == 0


def test_overflowing_values_do_not_warn(tel: SelfTelemetry) -> None:
    """Huge scores and regression errors neither warn (warnings may be errors) nor fail."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = OutcomeTracker(selftelemetry=tel)
        t.remember_many(["a", "b"], [1, 0], scores=[1e300, -1e300], confidences=[1e300, 0.5])
        t.remember("c", 1, score=1e300, confidence=-1e300)
        t.record_many(["a", "b", "c"], [1, 0, 0])
        assert t.evaluate().roc_auc is not None
        r = OutcomeTracker("regression", selftelemetry=tel)
        r.remember_many([1, 2], [1e308, -1e308])
        r.record_many([1, 2], [-1e308, 1e308])
        assert r.evaluate().mae == math.inf
    assert tel.count(INTERNAL_ERROR) == 0


@pytest.mark.parametrize(("kwargs", "error", "arg"), [
    ({"task": "ranking"}, ValueError, "task"),
    ({"task": 1}, TypeError, "task"),
    ({"max_pending": 0}, ValueError, "max_pending"),
    ({"max_pending": 1.5}, TypeError, "max_pending"),
    ({"max_pending": True}, TypeError, "max_pending"),
    ({"ttl_s": 0}, ValueError, "ttl_s"),
    ({"ttl_s": math.inf}, ValueError, "ttl_s"),
    ({"ttl_s": "1h"}, TypeError, "ttl_s"),
    ({"window_s": -1.0}, ValueError, "window_s"),
    ({"sub_windows": 0}, ValueError, "sub_windows"),
    ({"score_bins": 1}, ValueError, "score_bins"),
    ({"max_classes": 1}, ValueError, "max_classes"),
    ({"positive_label": [1]}, TypeError, "positive_label"),
    ({"positive_label": None}, ValueError, "positive_label"),
    ({"positive_label": math.nan}, ValueError, "positive_label"),
    ({"window_by": "arrival"}, ValueError, "window_by"),
    ({"clock": 5.0}, TypeError, "clock"),
    ({"selftelemetry": object()}, TypeError, "selftelemetry"),
])
def test_bad_arguments_fail_at_once(kwargs: dict[str, Any], error: type[Exception], arg: str) -> None:
    """Each wrong constructor argument raises TypeError or ValueError naming it."""
    with pytest.raises(error, match=arg):
        OutcomeTracker(**kwargs)


def test_counts_go_to_the_given_registry() -> None:
    """Two trackers with their own registries do not count into each other."""
    a, b = SelfTelemetry(), SelfTelemetry()
    OutcomeTracker(selftelemetry=a).remember_many(["x", "x"], [1, 1])
    OutcomeTracker(selftelemetry=b).remember(["x"], 1)  # type: ignore[arg-type]
    assert _counts(a) == {"duplicate_prediction_id": 1}
    assert _counts(b) == {"unhashable_prediction_id": 1}


def test_unhashable_id_mid_batch_leaves_the_store_consistent(tel: SelfTelemetry) -> None:
    """Ids before and after an unhashable one in record_many join once; the store stays usable."""
    t = OutcomeTracker(max_pending=4, selftelemetry=tel)
    t.remember_many(["a", "b", "c"], [1, 1, 0])
    t.record_many(["a", ["x"], "b"], [1, 1, 0])  # type: ignore[list-item]
    assert t.pending == 1 and t.unmatched == {"unknown": 1, "expired": 0}
    t.remember_many(["d", "e", "f", "g", "h"], [1, 1, 1, 1, 1])  # evicts through the holes a and b left
    assert t.pending == 4 and t.evicted == 2
    r = t.evaluate()
    assert (r.n, r.accuracy) == (2, 0.5)
    assert _counts(tel) == {"unhashable_prediction_id": 1, "outcome_store_full": 2}
    assert tel.count(INTERNAL_ERROR) == 0
