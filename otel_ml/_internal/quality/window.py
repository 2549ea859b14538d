"""A ring of tumbling sub-windows holding mergeable outcome counts.

Each sub-window keeps sums that add across sub-windows without loss: confusion counts by
(predicted code, actual code), score histograms of positives and negatives (ROC AUC), and for
regression n, sum |e|, sum e² and sum |e| / max(|y|, eps). A window is the sum of its live
sub-windows, so quality over the last ``window_s`` costs ``sub_windows`` merges, not a replay.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_EPS = float(np.finfo(np.float64).eps)


class SubWindow:
    __slots__ = ("confusion", "epoch", "neg", "pos", "reg")

    def __init__(self, score_bins: int) -> None:
        self.epoch = -(2**62)
        self.confusion: dict[int, int] = {}  # pair code (predicted * n_codes + actual) -> count
        self.pos: npt.NDArray[np.int64] = np.zeros(score_bins, dtype=np.int64)
        self.neg: npt.NDArray[np.int64] = np.zeros(score_bins, dtype=np.int64)
        self.reg = [0.0, 0.0, 0.0, 0.0]  # n, sum |e|, sum e², sum |e| / max(|y|, eps)

    def reset(self, epoch: int) -> None:
        self.epoch = epoch
        self.confusion.clear()
        self.pos.fill(0)
        self.neg.fill(0)
        self.reg[:] = [0.0, 0.0, 0.0, 0.0]

    def add_pairs(self, pairs: list[tuple[int, int]]) -> None:
        confusion = self.confusion
        for key, n in pairs:
            confusion[key] = confusion.get(key, 0) + n

    def add_scores(self, bins: npt.NDArray[np.int64], positive: npt.NDArray[np.bool_]) -> None:
        """Histogram rows by score bin (``bins`` is -1 where the prediction had no score)."""
        scored = bins >= 0
        if not scored.any():
            return
        size = len(self.pos)
        self.pos += np.bincount(bins[scored & positive], minlength=size)
        self.neg += np.bincount(bins[scored & ~positive], minlength=size)

    def add_one(self, pair: int, score_bin: int, positive: bool) -> None:
        self.confusion[pair] = self.confusion.get(pair, 0) + 1
        if score_bin >= 0:
            (self.pos if positive else self.neg)[score_bin] += 1

    def add_one_error(self, err: float, actual: float) -> None:
        r = self.reg
        r[0] += 1
        r[1] += err
        r[2] += err * err  # Python floats overflow to inf quietly
        r[3] += err / max(abs(actual), _EPS)

    def add_errors(self, err: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]) -> None:
        r = self.reg
        r[0] += len(err)
        with np.errstate(over="ignore", invalid="ignore"):  # huge errors give inf, not a warning
            r[1] += float(err.sum())
            r[2] += float(np.dot(err, err))
            # MAPE as sklearn.metrics.mean_absolute_percentage_error: |y| floored at machine epsilon.
            r[3] += float((err / np.maximum(np.abs(actual), _EPS)).sum())


class OutcomeWindow:
    def __init__(self, sub_windows: int, score_bins: int) -> None:
        self.score_bins = score_bins
        self._subs = [SubWindow(score_bins) for _ in range(sub_windows)]

    def sub(self, epoch: int) -> SubWindow | None:
        """The sub-window for ``epoch``, or None when a later one already took its place."""
        s = self._subs[epoch % len(self._subs)]
        if s.epoch == epoch:
            return s
        if s.epoch > epoch:
            return None
        s.reset(epoch)
        return s

    def live(self, now_epoch: int) -> list[SubWindow]:
        n = len(self._subs)
        return [s for s in self._subs if now_epoch - n < s.epoch <= now_epoch]

    def merged(self, now_epoch: int) -> tuple[dict[int, int], npt.NDArray[np.int64], npt.NDArray[np.int64],
                                              list[float]]:
        confusion: dict[int, int] = {}
        pos = np.zeros(self.score_bins, dtype=np.int64)
        neg = np.zeros(self.score_bins, dtype=np.int64)
        reg = [0.0, 0.0, 0.0, 0.0]
        for s in self.live(now_epoch):
            for k, v in s.confusion.items():
                confusion[k] = confusion.get(k, 0) + v
            pos += s.pos
            neg += s.neg
            reg = [a + b for a, b in zip(reg, s.reg, strict=True)]
        return confusion, pos, neg, reg
