"""Quality metrics from mergeable counts, and the typed :class:`QualityReport`.

Classification metrics come from the confusion counts exactly as scikit-learn computes them
from the same labels (labels = union of predicted and actual; ``zero_division=0``). ROC AUC
comes from binned score histograms of positives and negatives: pairs in different bins are
ordered exactly, pairs in the same bin count 1/2 (ties), so

    |AUC_binned - AUC_exact| <= 0.5 * sum_i pos_i * neg_i / (P * N)

which the report carries as ``roc_auc_error_bound`` (with 100 equal-width bins and scores
spread over [0, 1] it is typically < 0.005). Regression: MAE, RMSE, and MAPE as
``sklearn.metrics.mean_absolute_percentage_error`` (|y| floored at machine epsilon).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class QualityReport:
    """Model quality over a window of joined (prediction, ground truth) pairs.

    ``precision``/``recall``/``f1`` are for ``positive_label`` when the window's labels are
    binary (sklearn's ``average="binary"``) and macro averages otherwise; all three averages
    are also given explicitly. Fields that do not apply to the task (or have no data) are None.
    """

    task: str
    n: int
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    precision_macro: float | None = None
    recall_macro: float | None = None
    f1_macro: float | None = None
    precision_micro: float | None = None
    recall_micro: float | None = None
    f1_micro: float | None = None
    precision_weighted: float | None = None
    recall_weighted: float | None = None
    f1_weighted: float | None = None
    roc_auc: float | None = None
    roc_auc_error_bound: float | None = None
    mae: float | None = None
    rmse: float | None = None
    mape: float | None = None
    per_class: Mapping[str, ClassScores] = field(default_factory=dict)
    confusion: Mapping[tuple[str, str], int] = field(default_factory=dict)

    _GAUGE_FIELDS = ("accuracy", "precision", "recall", "f1", "precision_macro", "recall_macro",
                     "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc",
                     "mae", "rmse", "mape")

    def metrics(self) -> dict[str, float]:
        """The scalar metrics that have a value (what ``ml.quality.score`` exports)."""
        out = {k: getattr(self, k) for k in self._GAUGE_FIELDS}
        return {k: float(v) for k, v in out.items() if v is not None}


def _div(a: float, b: float) -> float:
    return a / b if b else 0.0


def classification_report(confusion: Mapping[tuple[Any, Any], int], positive_label: Any,
                          pos_hist: npt.NDArray[np.int64] | None,
                          neg_hist: npt.NDArray[np.int64] | None) -> QualityReport:
    n = sum(confusion.values())
    if n == 0:
        return QualityReport(task="classification", n=0)
    labels = sorted({k[0] for k in confusion} | {k[1] for k in confusion}, key=str)
    tp = {c: 0 for c in labels}
    pred_n = {c: 0 for c in labels}
    true_n = {c: 0 for c in labels}
    for (p, a), k in confusion.items():
        pred_n[p] += k
        true_n[a] += k
        if p == a:
            tp[p] += k
    per: dict[str, ClassScores] = {}
    for c in labels:
        pr = _div(tp[c], pred_n[c])
        rc = _div(tp[c], true_n[c])
        per[str(c)] = ClassScores(pr, rc, _div(2 * pr * rc, pr + rc), true_n[c])
    acc = sum(tp.values()) / n
    vals = list(per.values())
    macro = [sum(getattr(s, m) for s in vals) / len(vals) for m in ("precision", "recall", "f1")]
    weighted = [_div(sum(getattr(s, m) * s.support for s in vals), n) for m in ("precision", "recall", "f1")]
    binary = len(labels) <= 2 and positive_label in labels
    if binary:
        b = per[str(positive_label)]
        main = [b.precision, b.recall, b.f1]
    else:
        main = macro
    auc = bound = None
    if pos_hist is not None and neg_hist is not None:
        auc, bound = binned_auc(pos_hist, neg_hist)
    return QualityReport(
        task="classification", n=n, accuracy=acc,
        precision=main[0], recall=main[1], f1=main[2],
        precision_macro=macro[0], recall_macro=macro[1], f1_macro=macro[2],
        # single-label multiclass: micro precision = micro recall = micro F1 = accuracy
        precision_micro=acc, recall_micro=acc, f1_micro=acc,
        precision_weighted=weighted[0], recall_weighted=weighted[1], f1_weighted=weighted[2],
        roc_auc=auc, roc_auc_error_bound=bound, per_class=per,
        confusion={(str(p), str(a)): k for (p, a), k in confusion.items()},
    )


def binned_auc(pos: npt.NDArray[np.int64], neg: npt.NDArray[np.int64]) -> tuple[float | None, float | None]:
    """(AUC, error bound) from per-bin counts of positives and negatives (bins ascending)."""
    p_total = int(pos.sum())
    n_total = int(neg.sum())
    if p_total == 0 or n_total == 0:
        return None, None
    pos_f = pos.astype(np.float64)
    neg_f = neg.astype(np.float64)
    pos_above = p_total - np.cumsum(pos_f)  # positives in strictly higher bins
    auc = float(np.sum(neg_f * (pos_above + 0.5 * pos_f))) / (p_total * n_total)
    bound = 0.5 * float(np.sum(pos_f * neg_f)) / (p_total * n_total)
    return auc, bound


def regression_report(n: int, sum_abs: float, sum_sq: float, sum_ape: float) -> QualityReport:
    if n == 0:
        return QualityReport(task="regression", n=0)
    return QualityReport(task="regression", n=n, mae=sum_abs / n, rmse=math.sqrt(sum_sq / n),
                         mape=sum_ape / n)
